/**
 * What every store must agree on, written once: claim order per strategy, the weighted-random class draw,
 * the store options and their defaults, and the few records a store writes by itself (drop marker,
 * cancellation and lease-expiry errors). Pure functions and one small heap; no I/O.
 *
 * Claim order (a due task is `queued`, or `scheduled`/`retrying` with `runAt <= now`):
 * - fifo: `runAt` ascending, then id ascending (ids are time-ordered).
 * - lifo: `runAt` descending, then id descending.
 * - priority: `priority` descending, then fifo.
 * - weighted-random: draw a weight class with probability ∝ weight × (due tasks of that weight), classes taken
 *   in ascending weight order against one `random()` value; then the fifo-oldest task of that class. Each task's
 *   chance is thus proportional to its weight, and no task waits behind younger ones of its own class.
 */
import { ErrorCodes, invalidOption, type SerializedError } from '../errors.ts';
import { dropMarkerText } from '../output-caps.ts';
import type { OutputLine } from '../task.ts';
import { STRATEGIES, type Strategy, type StoreOptions } from './store.ts';

/** The fields claim order reads. */
export interface OrderKey {
  readonly id: string;
  readonly runAt: number;
  readonly priority: number;
}

export type Compare<T> = (a: T, b: T) => number;

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Oldest first: the fifo order, and the order inside a weighted-random class. */
export function compareByTime(a: OrderKey, b: OrderKey): number {
  return a.runAt - b.runAt || compareIds(a.id, b.id);
}

/** Newest first: the lifo order. */
export function compareByTimeDesc(a: OrderKey, b: OrderKey): number {
  return b.runAt - a.runAt || compareIds(b.id, a.id);
}

/** Highest priority first, fifo within a priority. */
export function compareByPriority(a: OrderKey, b: OrderKey): number {
  return b.priority - a.priority || compareByTime(a, b);
}

/** Why: one definition of "which due task comes first" for every store and every test. */
export function compareForStrategy(strategy: Strategy): Compare<OrderKey> {
  switch (strategy) {
    case 'lifo':
      return compareByTimeDesc;
    case 'priority':
      return compareByPriority;
    default:
      return compareByTime;
  }
}

export interface WeightClass {
  weight: number;
  /** Due tasks of this weight that the claim may take. */
  count: number;
}

/**
 * Why: the exact weighted draw, shared so that stores given the same seed pick the same classes.
 * `classes` must be sorted by ascending weight; `r` is in [0, 1). Returns the chosen index, or -1 if none is due.
 * A class whose weight is not positive is never chosen.
 */
export function pickWeightClass(classes: readonly WeightClass[], r: number): number {
  let total = 0;
  for (const c of classes) if (c.count > 0 && c.weight > 0) total += c.weight * c.count;
  if (!(total > 0)) return -1;
  const target = r * total;
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < classes.length; i++) {
    const c = classes[i]!;
    if (c.count <= 0 || !(c.weight > 0)) continue;
    last = i;
    cumulative += c.weight * c.count;
    if (target < cumulative) return i;
  }
  return last;
}

/** Store options with every default applied. */
export interface ResolvedStoreOptions {
  strategy: Strategy;
  random: () => number;
  maxOutputLines: number;
}

/** Why: validate store options once at construction, with messages that name the option. */
export function resolveStoreOptions(options: StoreOptions = {}): ResolvedStoreOptions {
  const strategy = options.strategy ?? 'fifo';
  if (!STRATEGIES.includes(strategy)) {
    throw invalidOption('store.strategy', `one of ${STRATEGIES.map((s) => `'${s}'`).join(', ')}`, strategy);
  }
  const random = options.random ?? Math.random;
  if (typeof random !== 'function') throw invalidOption('store.random', 'a function returning [0, 1)', random);
  const maxOutputLines = options.maxOutputLines ?? 10_000;
  if (!Number.isSafeInteger(maxOutputLines) || maxOutputLines < 1) {
    throw invalidOption('store.maxOutputLines', 'a positive integer', maxOutputLines);
  }
  return { strategy, random, maxOutputLines };
}

/** Why: the one line that replaces dropped output, identical in every store. Its seq is the newest dropped line's. */
export function createDropMarker(dropped: number, seq: number, at: number): OutputLine {
  return { seq, stream: 'marker', text: dropMarkerText(dropped), at };
}

/** Why: a cancelled task records why, as an error a caller can branch on. */
export function createCancelledError(reason: string | undefined): SerializedError {
  return { name: 'TroupeError', code: ErrorCodes.CANCELLED, message: reason ?? 'cancelled' };
}

/**
 * What a store does with a running task whose lease ran out (its node died or lost the store). The first lost run
 * of a task does not use up its budget: it goes back `queued` with one more attempt allowed (`maxAttempts` + 1), so
 * a task with one attempt still runs again (at least once). A later one counts as an attempt: back `queued`, or
 * `failed` with LEASE_EXPIRED when none is left. One free run, not more: a task that kills its node every time it
 * runs stops. The attempt number still grows with each claim: with the owner, it tells a late result of the lost
 * run (which may still be running on a stalled node) from the new run's, so the late one is refused.
 */
export type LeaseVerdict = 'requeue-extra' | 'requeue' | 'fail';

/** Lost runs of a task that do not use up its attempts. */
export const FREE_LEASE_LOSSES = 1;

/** Why: the one rule every store applies to an expired lease (see LeaseVerdict). */
export function decideExpiredLease(task: { attempts: number; maxAttempts: number; leaseLosses: number }): LeaseVerdict {
  if (task.leaseLosses < FREE_LEASE_LOSSES) return 'requeue-extra';
  return task.attempts >= task.maxAttempts ? 'fail' : 'requeue';
}

/** History reasons of the three verdicts. */
export const LEASE_REASONS: Readonly<Record<LeaseVerdict, string>> = Object.freeze({
  'requeue-extra': 'lease expired (one attempt added)',
  requeue: 'lease expired',
  fail: 'lease expired',
});

/** Why: a task whose last lease ran out with no attempts left ends with this error. */
export function createLeaseExpiredError(attempts: number): SerializedError {
  return {
    name: 'TroupeError',
    code: ErrorCodes.LEASE_EXPIRED,
    message: `lease expired on attempt ${attempts} with no attempts left`,
  };
}

/**
 * A min-heap under a comparator (smallest first), with a fast lane for items pushed in order.
 *
 * Why: tasks mostly arrive in claim order (ids grow with time, priorities are mostly equal), and a binary heap
 * sifts each of them through log₂ n levels on the way out: in a burst of 1000 runs on the memory store, the pops
 * were ≈5 % of the main thread's time. An item not smaller than the last one of the lane joins the lane (an
 * array read from its head, already sorted); any other goes into the binary heap; a pop takes the smaller of the
 * two heads. Items pushed in order thus cost O(1) each way, and any order of pushes still pops in comparator order.
 */
export class Heap<T> {
  readonly #compare: Compare<T>;
  /** The binary heap. */
  #items: T[] = [];
  /**
   * The lane: items in ascending order, in `#lane[#head, #tail)`. Emptied by resetting the indexes, not the
   * array's `length` (a runtime call in V8, as in the mailbox): an idle node empties it on every claim.
   */
  #lane: (T | undefined)[] = [];
  #head = 0;
  #tail = 0;

  constructor(compare: Compare<T>) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length + this.#tail - this.#head;
  }

  peek(): T | undefined {
    return this.#fromLane() ? this.#lane[this.#head] : this.#items[0];
  }

  push(item: T): void {
    const lane = this.#lane;
    const tail = this.#tail;
    if (this.#head === tail || this.#compare(item, lane[tail - 1]!) >= 0) {
      if (tail < lane.length) lane[tail] = item;
      else lane.push(item);
      this.#tail = tail + 1;
      return;
    }
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(items[i]!, items[parent]!) >= 0) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    if (this.#fromLane()) {
      const lane = this.#lane;
      const top = lane[this.#head]!;
      lane[this.#head++] = undefined; // not kept alive by the array
      if (this.#head === this.#tail) {
        this.#head = 0;
        this.#tail = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#tail) {
        this.#lane = lane.slice(this.#head, this.#tail);
        this.#tail -= this.#head;
        this.#head = 0;
      }
      return top;
    }
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  /** Keeps only the items `keep` accepts, then restores heap order (O(n)). */
  filter(keep: (item: T) => boolean): void {
    this.#items = this.#items.filter(keep);
    for (let i = (this.#items.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
    this.#lane = this.#lane.slice(this.#head, this.#tail).filter((item) => keep(item!));
    this.#head = 0;
    this.#tail = this.#lane.length;
  }

  /** Every item, in no particular order. */
  values(): readonly T[] {
    return this.#head === this.#tail ? this.#items : [...this.#items, ...(this.#lane.slice(this.#head, this.#tail) as T[])];
  }

  /** Whether the next item to pop is the lane's head (the smaller head, the lane's on a tie). */
  #fromLane(): boolean {
    if (this.#head === this.#tail) return false;
    return this.#items.length === 0 || this.#compare(this.#lane[this.#head]!, this.#items[0]!) <= 0;
  }

  #siftDown(start: number): void {
    const items = this.#items;
    const n = items.length;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.#compare(items[l]!, items[m]!) < 0) m = l;
      if (r < n && this.#compare(items[r]!, items[m]!) < 0) m = r;
      if (m === i) return;
      [items[i], items[m]] = [items[m]!, items[i]!];
      i = m;
    }
  }
}
