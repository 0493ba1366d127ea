/**
 * The wire between the thread pool (main thread) and `handler-worker.ts` (worker threads).
 *
 * One Piscina `run()` carries either one job or, when the queue is deep, a batch (an array of jobs): Piscina's
 * dispatch costs ≈31 µs of main-thread time per `run()`, so packing jobs is what lifts throughput. Each job in
 * flight owns a *slot*: two Int32 cells in a SharedArrayBuffer that both sides read and write with Atomics.
 *
 * | cell            | written by | meaning                                                              |
 * |-----------------|------------|----------------------------------------------------------------------|
 * | `slot*2`        | both       | bit flags: STARTED, RUNNING, DONE (worker), ABORTED (main)           |
 * | `slot*2 + 1`    | worker     | the threadId that took the job (the thread to end on a hard stop)    |
 *
 * STARTED: the worker took the job (its handler module may still be loading); RUNNING: the handler was called;
 * DONE: it settled. The flags settle the races without messages: main sets ABORTED and reads the old flags in
 * one `Atomics.or`; the worker sets RUNNING the same way just before calling the handler. Whoever comes second
 * sees the other's bit, so a job aborted before its handler was called is skipped by the worker and rejected by
 * main at once, and a running one gets a message (soft) or has its thread ended (hard).
 *
 * Side traffic (progress, log lines) goes up on a BroadcastChannel that only the main thread listens to; soft
 * aborts go down on another that only workers listen to. A reply says how many side messages its job sent, so
 * main settles the job only after all of them arrived (the two channels are not ordered with each other).
 */
import { serializeError, type SerializedError } from '../errors.ts';
import type { RecycleData } from './recycle.ts';

/** Bits of a slot's flag cell. */
export const SlotFlags = {
  STARTED: 1,
  DONE: 2,
  ABORTED: 4,
  RUNNING: 8,
} as const;

/** Int32 cells per slot: flags, threadId. */
export const CELLS_PER_SLOT = 2;

/** One job as the worker reads it. */
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

/**
 * One Piscina run's message, flat: `[...jobs, ...handlers, ...names, H, N]`, each job JOB_WIDTH cells
 * (slot, seq, handler index, input, id, name index, attempt), then the H distinct handler URLs and the N distinct
 * task names. A flat array of primitives clones in about half the time of an array of job objects, handler URLs
 * and names go once per run, and the writer fills one array with no copying (the counts come last).
 */
export type WireRun = unknown[];
export const JOB_WIDTH = 7;

/** Packs jobs into a WireRun. */
export class RunWriter {
  readonly #cells: unknown[] = [];
  readonly #handlers: string[] = [];
  readonly #names: string[] = [];

  add(slot: number, seq: number, handler: string, input: unknown, id: string, name: string, attempt: number): void {
    let h = this.#handlers.indexOf(handler);
    if (h === -1) h = this.#handlers.push(handler) - 1;
    let n = this.#names.indexOf(name);
    if (n === -1) n = this.#names.push(name) - 1;
    this.#cells.push(slot, seq, h, input, id, n, attempt);
  }

  finish(): WireRun {
    const cells = this.#cells;
    for (const h of this.#handlers) cells.push(h);
    for (const n of this.#names) cells.push(n);
    cells.push(this.#handlers.length, this.#names.length);
    return cells;
  }
}

/** The WireRun of one job, as a RunWriter with one `add` makes it (without the writer and its lists). */
export function singleRun(slot: number, seq: number, handler: string, input: unknown, id: string, name: string, attempt: number): WireRun {
  return [slot, seq, 0, input, id, 0, attempt, handler, name, 1, 1];
}

/** Unpacks a WireRun (worker side). */
export function readRun(wire: WireRun): WireJob[] {
  const end = wire.length - 2;
  const handlerCount = wire[end] as number;
  const nameCount = wire[end + 1] as number;
  const names = end - nameCount;
  const handlers = names - handlerCount;
  const jobs: WireJob[] = [];
  for (let at = 0; at < handlers; at += JOB_WIDTH) {
    jobs.push({
      s: wire[at] as number, q: wire[at + 1] as number, h: wire[handlers + (wire[at + 2] as number)] as string,
      i: wire[at + 3], id: wire[at + 4] as string, n: wire[names + (wire[at + 5] as number)] as string, a: wire[at + 6] as number,
    });
  }
  return jobs;
}

/**
 * A run's replies, flat: two cells per job, `[tag, value]`. The tag's low two bits say what happened
 * (ReplyKinds); the rest is the number of side messages the job sent (`tag >> 2`).
 */
export type WireReplies = unknown[];

/**
 * What a run's reply carries: its WireReplies, or for the usual run of an idle pool (one job that succeeded with
 * no side messages, and a result that is not an array) the bare result. Why: the array is one more object to
 * clone on the worker and to rebuild on the main thread, ≈0.4 µs of every idle run's round trip here.
 */
export type WireReply = WireReplies | unknown;

/** The reply of a run whose replies are `out` (worker side): see {@link WireReply}. */
export function packReply(out: WireReplies): WireReply {
  return out.length === 2 && out[0] === replyTag(ReplyKinds.ok, 0) && !Array.isArray(out[1]) ? out[1] : out;
}

/** True when a reply is a bare result (the run's one job succeeded with no side messages). */
export function isBareReply(reply: WireReply): boolean {
  return !Array.isArray(reply);
}

export const ReplyKinds = {
  /** value: the result. */
  ok: 0,
  /** value: a SerializedError. */
  error: 1,
  /** Not run: aborted before it started. */
  skipped: 2,
  /** Sent ahead on the side channel (a `R` message); main waits for that message. */
  early: 3,
} as const;
export type ReplyKind = (typeof ReplyKinds)[keyof typeof ReplyKinds];

export function replyTag(kind: ReplyKind, sideMessages: number): number {
  return kind | (sideMessages << 2);
}

export function replyKind(tag: number): ReplyKind {
  return (tag & 3) as ReplyKind;
}

export function replySideMessages(tag: number): number {
  return tag >> 2;
}

/** Worker → main, on the `:up` channel. */
export interface UpMessage {
  /** Slot and seq of the job (-1 for `R` and `S`). */
  s: number;
  q: number;
  /**
   * `p` progress, `l` log line; `R` results sent ahead of their run's reply, `v` = `[slot, seq, tag, value]*`;
   * `S` a handler became slow or fast again, `v` = `[href, slow]`.
   */
  k: 'p' | 'l' | 'R' | 'S';
  v: unknown;
}

/** Main → workers, on the `:down` channel: abort job `q` in slot `s` with this reason. */
export interface DownMessage {
  s: number;
  q: number;
  /** The reason, as an error (`e`) or a cloneable value (`v`). */
  r: { e: SerializedError } | { v: unknown };
}

/** Puts an abort reason in a DownMessage: errors as SerializedError (code kept), anything else as is. */
export function encodeReason(reason: unknown): DownMessage['r'] {
  if (reason instanceof Error || (typeof reason === 'object' && reason !== null && 'message' in reason)) {
    return { e: serializeError(reason) };
  }
  return { v: reason };
}

/** What every worker of one pool is started with (Piscina `workerData`). */
export interface WorkerData {
  /** Prefix of the two BroadcastChannel names, unique per pool instance. */
  channel: string;
  /** The slot cells. */
  cells: SharedArrayBuffer;
  /** Worker recycling, when on (see recycle.ts). */
  recycle?: RecycleData;
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
