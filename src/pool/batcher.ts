/**
 * The wire between the thread pool (main thread) and `handler-worker.ts` (worker threads).
 *
 * One Piscina `run()` carries either one job or, when the queue is deep, a batch (an array of jobs): Piscina's
 * dispatch costs ≈31 µs of main-thread time per `run()`, so packing jobs is what lifts throughput. Each job in
 * flight owns a *slot*: two Int32 cells in a SharedArrayBuffer that both sides read and write with Atomics.
 *
 * | cell            | written by | meaning                                                              |
 * |-----------------|------------|----------------------------------------------------------------------|
 * | `slot*2`        | both       | bit flags: STARTED, DONE (worker), ABORTED (main)                     |
 * | `slot*2 + 1`    | worker     | the threadId that started the job (the thread to end on a hard stop) |
 *
 * The flags settle the races without messages: main sets ABORTED and reads the old flags in one `Atomics.or`;
 * the worker sets STARTED the same way. Whoever comes second sees the other's bit, so a job aborted before it
 * started is skipped by the worker and rejected by main at once, and a started one gets a message or a hard stop.
 *
 * Side traffic (progress, log lines) goes up on a BroadcastChannel that only the main thread listens to; soft
 * aborts go down on another that only workers listen to. A reply says how many side messages its job sent, so
 * main settles the job only after all of them arrived (the two channels are not ordered with each other).
 */
import type { SerializedError } from '../errors.ts';

/** Bits of a slot's flag cell. */
export const SlotFlags = {
  STARTED: 1,
  DONE: 2,
  ABORTED: 4,
} as const;

/** Int32 cells per slot: flags, threadId. */
export const CELLS_PER_SLOT = 2;

/** One job as sent to a worker. Short keys: this object is structured-cloned once per job. */
export interface WireJob {
  /** Slot index. */
  s: number;
  /** Pool-wide sequence number of the job (tells a reused slot from the job that held it before). */
  q: number;
  /** Handler module, a file URL href. */
  h: string;
  /** Input. */
  i: unknown;
  id: string;
  /** Task name. */
  n: string;
  /** Attempt, 1-based. */
  a: number;
}

/** What the worker sends back for one job. */
export type WireReply =
  | { r: unknown; m?: number; e?: undefined; x?: undefined }
  | { e: SerializedError; m?: number; r?: undefined; x?: undefined }
  /** Skipped: the job was aborted before it started. */
  | { x: 1; r?: undefined; e?: undefined; m?: undefined };

/** Worker → main, on the `:up` channel. */
export interface UpMessage {
  s: number;
  q: number;
  /** `p` progress, `l` log line. */
  k: 'p' | 'l';
  v: unknown;
}

/** Main → workers, on the `:down` channel: abort job `q` in slot `s` with this reason. */
export interface DownMessage {
  s: number;
  q: number;
  /** The reason, as an error (`e`) or a cloneable value (`v`). */
  r: { e: SerializedError } | { v: unknown };
}

/** What every worker of one pool is started with (Piscina `workerData`). */
export interface WorkerData {
  /** Prefix of the two BroadcastChannel names, unique per pool instance. */
  channel: string;
  /** The slot cells. */
  cells: SharedArrayBuffer;
}

/** Names of the two side channels of a pool. */
export function channelNames(prefix: string): { up: string; down: string } {
  return { up: `${prefix}:up`, down: `${prefix}:down` };
}

/**
 * Slots for jobs in flight: a fixed set of cells shared with the workers, handed out from a free list.
 * The set is sized for the most jobs that can be in flight (runs in flight × batch size).
 */
export class SlotTable {
  readonly cells: Int32Array;
  #free: number[];

  constructor(capacity: number) {
    this.cells = new Int32Array(new SharedArrayBuffer(capacity * CELLS_PER_SLOT * Int32Array.BYTES_PER_ELEMENT));
    this.#free = Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
  }

  /** Free slots left. */
  get available(): number {
    return this.#free.length;
  }

  /** Takes a slot and clears its cells; undefined when none is left. */
  alloc(): number | undefined {
    const slot = this.#free.pop();
    if (slot !== undefined) {
      Atomics.store(this.cells, slot * CELLS_PER_SLOT, 0);
      Atomics.store(this.cells, slot * CELLS_PER_SLOT + 1, 0);
    }
    return slot;
  }

  release(slot: number): void {
    this.#free.push(slot);
  }

  /** The slot's flags (see SlotFlags). */
  flags(slot: number): number {
    return Atomics.load(this.cells, slot * CELLS_PER_SLOT);
  }

  /** Sets ABORTED and returns the flags from before. */
  markAborted(slot: number): number {
    return Atomics.or(this.cells, slot * CELLS_PER_SLOT, SlotFlags.ABORTED);
  }

  /** The threadId that started the job in this slot (0 if none did). */
  threadOf(slot: number): number {
    return Atomics.load(this.cells, slot * CELLS_PER_SLOT + 1);
  }
}

/** How many jobs go in the next run: the waiting jobs spread over the free runs, at most `maxBatch`. */
export function resolveBatchSize(waiting: number, freeRuns: number, maxBatch: number): number {
  if (waiting <= 0 || freeRuns <= 0) return 0;
  return Math.min(maxBatch, Math.max(1, Math.ceil(waiting / freeRuns)));
}
