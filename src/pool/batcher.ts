/**
 * The wire between the thread pool (main thread) and `handler-worker.ts` (worker threads).
 *
 * One Piscina `run()` carries either one job or, when the queue is deep, a batch (an array of jobs): Piscina's
 * dispatch costs ≈31 µs of main-thread time per `run()`, so packing jobs is what lifts throughput. Each job in
 * flight owns a *slot*: four Int32 cells in a SharedArrayBuffer that both sides read and write with Atomics.
 *
 * | cell            | written by | meaning                                                              |
 * |-----------------|------------|----------------------------------------------------------------------|
 * | `slot*4`        | both       | bit flags: STARTED, RUNNING, DONE (worker), ABORTED (main)           |
 * | `slot*4 + 1`    | worker     | the threadId that took the job (the thread to end on a hard stop)    |
 * | `slot*4 + 2`    | worker     | CPU time the job used, in µs (thread-usage.ts); −1 = not measured    |
 * | `slot*4 + 3`    | worker     | memory of the thread when it settled, in KiB; −1 = not measured      |
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
import type { FlowChild } from '../task.ts';

/** Bits of a slot's flag cell. */
export const SlotFlags = {
  STARTED: 1,
  DONE: 2,
  ABORTED: 4,
  RUNNING: 8,
} as const;

/** Int32 cells per slot: flags, threadId, CPU µs, memory KiB. */
export const CELLS_PER_SLOT = 4;
/** Offsets of a slot's usage cells (written by the worker before DONE; read by main once the job's reply came). */
export const CPU_CELL = 2;
export const MEMORY_CELL = 3;

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
  /** A flow parent's children (`ctx.children`). */
  c?: readonly FlowChild[];
}

/**
 * One Piscina run's message, flat: JOB_WIDTH cells per job (slot, seq, handler, input, id, name, attempt). The
 * handler URL and the task name go as numbers into the pool's {@link StringTable} (a string only when the table
 * is full). A flat array of primitives clones in about half the time of an array of job objects; and a long
 * handler URL in every message cost ≈0.3–0.7 µs of each idle round trip here, cloned on one side and rebuilt and
 * hashed on the other.
 *
 * The attempt cell holds the attempt, or `{ a, c }` for a flow parent: the rare job that carries its children's
 * outcomes pays for them, and every other job stays a row of primitives.
 */
export type WireRun = unknown[];
export const JOB_WIDTH = 7;

/** Packs jobs into a WireRun. */
export class RunWriter {
  readonly #cells: unknown[] = [];
  readonly #strings: StringTable;

  constructor(strings: StringTable) {
    this.#strings = strings;
  }

  add(slot: number, seq: number, handler: string, input: unknown, id: string, name: string, attempt: number, children?: readonly FlowChild[]): void {
    this.#cells.push(slot, seq, this.#strings.ref(handler), input, id, this.#strings.ref(name), attemptCell(attempt, children));
  }

  finish(): WireRun {
    return this.#cells;
  }
}

/** The WireRun of one job, as a RunWriter with one `add` makes it (without the writer). */
export function singleRun(strings: StringTable, slot: number, seq: number, handler: string, input: unknown, id: string, name: string, attempt: number, children?: readonly FlowChild[]): WireRun {
  return [slot, seq, strings.ref(handler), input, id, strings.ref(name), attemptCell(attempt, children)];
}

function attemptCell(attempt: number, children: readonly FlowChild[] | undefined): number | { a: number; c: readonly FlowChild[] } {
  return children === undefined ? attempt : { a: attempt, c: children };
}

/** Unpacks a WireRun (worker side); `strings` reads the table's references. */
export function readRun(wire: WireRun, strings: StringTableReader): WireJob[] {
  const jobs: WireJob[] = [];
  for (let at = 0; at < wire.length; at += JOB_WIDTH) {
    const cell = wire[at + 6] as number | { a: number; c: readonly FlowChild[] };
    const job: WireJob = {
      s: wire[at] as number, q: wire[at + 1] as number, h: strings.read(wire[at + 2] as StringRef),
      i: wire[at + 3], id: wire[at + 4] as string, n: strings.read(wire[at + 5] as StringRef), a: typeof cell === 'number' ? cell : cell.a,
    };
    if (typeof cell !== 'number') job.c = cell.c;
    jobs.push(job);
  }
  return jobs;
}

/** Int32 cells before a StringTable's entries: count, bytes used, most entries. */
const TABLE_HEAD = 3;

function tableBytesAt(maxEntries: number): number {
  return 4 * (TABLE_HEAD + 2 * maxEntries);
}

/** A string on the wire: its number in the pool's StringTable, or the string itself. */
export type StringRef = number | string;

/**
 * Handler URLs and task names, written once into shared memory by the main thread and read by every worker of
 * the pool, so that a job names them by number. Append-only: an entry never changes once its number is in use,
 * so a worker reads without locks (the count is published with Atomics after the bytes are written, and a job
 * that names an entry is posted after that). When the table is full, strings go on the wire as they are.
 *
 * Layout of the SharedArrayBuffer: Int32 `[count, bytesUsed, maxEntries]`, then Int32 `[start, length]` per entry,
 * then the UTF-8 bytes.
 */
export class StringTable {
  readonly buffer: SharedArrayBuffer;
  readonly #head: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #maxEntries: number;
  readonly #ids = new Map<string, number>();

  constructor(maxEntries = 1024, maxBytes = 128 * 1024) {
    this.#maxEntries = maxEntries;
    this.buffer = new SharedArrayBuffer(tableBytesAt(maxEntries) + maxBytes);
    this.#head = new Int32Array(this.buffer, 0, TABLE_HEAD + 2 * maxEntries);
    this.#head[2] = maxEntries;
    this.#bytes = new Uint8Array(this.buffer, tableBytesAt(maxEntries));
  }

  /** The string's number in the table (added if new and there is room), or the string itself. */
  ref(value: string): StringRef {
    const id = this.#ids.get(value);
    if (id !== undefined) return id;
    const count = this.#head[0]!;
    const used = this.#head[1]!;
    if (count >= this.#maxEntries) return value;
    const encoded = Buffer.from(value, 'utf8');
    if (used + encoded.length > this.#bytes.length) return value;
    this.#bytes.set(encoded, used);
    this.#head[TABLE_HEAD + 2 * count] = used;
    this.#head[TABLE_HEAD + 2 * count + 1] = encoded.length;
    this.#head[1] = used + encoded.length;
    // Published last: a reader that sees the count sees the entry.
    Atomics.store(this.#head, 0, count + 1);
    this.#ids.set(value, count);
    return count;
  }
}

/** A worker's view of a {@link StringTable}: each entry is decoded once. */
export class StringTableReader {
  readonly #buffer: SharedArrayBuffer;
  readonly #head: Int32Array;
  readonly #bytesAt: number;
  readonly #decoded: string[] = [];

  constructor(buffer: SharedArrayBuffer) {
    this.#buffer = buffer;
    const maxEntries = new Int32Array(buffer, 0, TABLE_HEAD)[2]!;
    this.#head = new Int32Array(buffer, 0, TABLE_HEAD + 2 * maxEntries);
    this.#bytesAt = tableBytesAt(maxEntries);
  }

  read(ref: StringRef): string {
    if (typeof ref === 'string') return ref;
    const cached = this.#decoded[ref];
    if (cached !== undefined) return cached;
    return this.#decode(ref);
  }

  #decode(id: number): string {
    if (!(id >= 0 && id < Atomics.load(this.#head, 0))) throw new RangeError(`String table entry ${id} is not written`);
    const start = this.#head[TABLE_HEAD + 2 * id]!;
    const length = this.#head[TABLE_HEAD + 2 * id + 1]!;
    const value = Buffer.from(this.#buffer, this.#bytesAt + start, length).toString('utf8');
    this.#decoded[id] = value;
    return value;
  }
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
  /** The pool's StringTable (handler URLs and task names). */
  strings: SharedArrayBuffer;
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
      Atomics.store(this.cells, slot * CELLS_PER_SLOT + CPU_CELL, -1);
      Atomics.store(this.cells, slot * CELLS_PER_SLOT + MEMORY_CELL, -1);
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

  /** The CPU time the job in this slot used, in µs (−1: not measured). */
  cpuMicros(slot: number): number {
    return Atomics.load(this.cells, slot * CELLS_PER_SLOT + CPU_CELL);
  }

  /** The memory its thread held when the job settled, in KiB (−1: not measured). */
  memoryKib(slot: number): number {
    return Atomics.load(this.cells, slot * CELLS_PER_SLOT + MEMORY_CELL);
  }
}

/** How many jobs go in the next run: the waiting jobs spread over the free runs, at most `maxBatch`. */
export function resolveBatchSize(waiting: number, freeRuns: number, maxBatch: number): number {
  if (waiting <= 0 || freeRuns <= 0) return 0;
  return Math.min(maxBatch, Math.max(1, Math.ceil(waiting / freeRuns)));
}
