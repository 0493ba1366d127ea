/**
 * The timer thread behind precise timers ({@link systemClock}'s `setTimeoutAt`): one small worker thread per
 * process that sleeps in `Atomics.wait` until the earliest armed due time and then posts a message, so the main
 * thread waits for a precise slot asleep in its event loop (woken by the message a fraction of a millisecond ahead)
 * instead of checking the time once per loop turn for the last 3 ms — a busy loop the OS preempts, which made
 * slots late by up to 3 ms.
 *
 * Cost: the thread is a second V8 isolate, ≈8–10 MB of RSS (measured 8.0–8.1 MiB under tsx, 9.2–9.9 MB under
 * plain node), created on the first precise timer (a process that never arms one never pays it), unref'd (it
 * never keeps the process alive), and asleep except at a due time.
 *
 * Protocol, over one SharedArrayBuffer: the main thread writes the earliest due time (epoch ms, −1 for none) and
 * bumps a sequence number, then `Atomics.notify`s; the thread re-reads both whenever it wakes. Just before (or
 * when) `Date.now()` reads the due time the thread posts it once per sequence number, and sleeps until the main
 * thread publishes again. The main thread checks `Date.now()` itself before calling anything back, so a timer never
 * fires early.
 */
import { Worker } from 'node:worker_threads';

/** A timer waiting on the thread. */
export interface ThreadTimer {
  /** Due time, epoch milliseconds. */
  readonly at: number;
  /** `Date.now()` reads `at` or later: fire. Called once, after the timer was taken off the thread. */
  due(): void;
  /**
   * The thread cannot serve it any more (it failed or was ended), or the wall clock was set back while it waited
   * for its tick: wait on the main thread from here on.
   */
  orphaned(): void;
  /** Taken off the thread ahead of its tick: the main thread calls `due` once `Date.now()` reads `at`. */
  ahead(): void;
}

/**
 * The thread's code (plain CommonJS, run with `eval`, so it needs no file next to the compiled module and no
 * loader of the parent). `Date.now()` counts whole milliseconds, so the thread times the tick itself: it sleeps in
 * one wait until about 2 ms ahead, then in {@link STEP_MS} steps until it sees `Date.now()` turn to `at − 1`; the
 * tick to `at` comes 1 ms after that edge (by the monotonic `performance.now()`), and the thread posts
 * {@link LEAD_MS} before it, the time a message takes to wake the main thread. The main thread, woken just ahead
 * of the tick, checks `Date.now()` once per loop turn for that last fraction of a millisecond. If the thread did
 * not see the edge (it woke late), it steps until `Date.now()` reads `at` and posts then.
 */
const STEP_MS = 0.02;
/**
 * How long before the tick to `at` the thread posts: a message takes ≈0.1–0.5 ms to wake an idle main thread here,
 * which then spends the rest of the lead checking `Date.now()` once per loop turn. 80 timers 37 ms apart, three
 * alternating runs per lead (`setTimeoutAt` on the system clock, lateness by a µs clock aligned to `Date.now()`):
 * 0.25 ms read p50 0.08–0.10 ms late, 0.5 ms read p50 0.013–0.016 ms. The cost is that much main-thread polling
 * per precise timer, and only the scheduler's slots use them.
 */
export const LEAD_MS = 0.5;
export const TIMER_THREAD_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const ctrl = new Int32Array(workerData.buffer, 0, 1);
const due = new BigInt64Array(workerData.buffer, 8, 1);
let postedSeq = -1;
// The last Date.now() seen and when (performance.now()); the last tick seen close enough to time it.
let seen = -1, seenHr = 0, edge = -1, edgeHr = 0;
parentPort.postMessage('ready');
for (;;) {
  const seq = Atomics.load(ctrl, 0);
  const at = Number(Atomics.load(due, 0));
  if (at < 0 || seq === postedSeq) { Atomics.wait(ctrl, 0, seq); continue; }
  const now = Date.now();
  const hr = performance.now();
  if (now === seen + 1 && hr - seenHr < 0.2) { edge = now; edgeHr = hr; }
  seen = now; seenHr = hr;
  const left = at - now;
  if (left > 2) { Atomics.wait(ctrl, 0, seq, left - 2); continue; }
  if (left === 1 && edge === now) {
    const wait = edgeHr + 1 - ${LEAD_MS} - hr;
    if (wait > 0) { Atomics.wait(ctrl, 0, seq, wait); if (Atomics.load(ctrl, 0) !== seq) continue; }
  } else if (left > 0) { Atomics.wait(ctrl, 0, seq, ${STEP_MS}); continue; }
  postedSeq = seq;
  parentPort.postMessage(at);
}
`;

export type TimerThreadState = 'starting' | 'online' | 'failed';

export interface TimerThreadOptions {
  /** The thread's code (tests inject broken ones). @default TIMER_THREAD_SOURCE */
  source?: string;
  /**
   * Timers of its own the thread serves once it runs, {@link WARM_STEP_MS} apart, before any caller's timer can
   * be its first: see {@link WARM_TICKS}. Not counted in {@link TimerThread.pending}. @default 0
   */
  warmUp?: number;
}

/**
 * The first timers a new thread served fired late: the second slot of a one-second schedule (the first real timer
 * on the thread; the first one waits on the main thread while the thread starts) was 0.51 · 0.70 · 1.25 · 1.17 ms
 * late in four runs, later slots 0.01–0.74 ms. Both sides run that path cold the first times: the thread's
 * wait-and-step loop, and the main thread's message handling and its last-fraction-of-a-millisecond wait. So the
 * process's shared thread serves this many no-op timers of its own as soon as it runs: that slot's timer then
 * read 0.05–0.51 ms late in twelve runs of thirteen (median 0.24 ms), 1.44 ms in one.
 */
export const WARM_TICKS = 5;
/** Between two warm-up timers: more than the 2 ms the thread sleeps in one wait, so each takes the whole path. */
export const WARM_STEP_MS = 4;

/** The main thread's side: the armed timers in due order and the worker that wakes it for the first one. */
export class TimerThread {
  #state: TimerThreadState = 'starting';
  #worker: Worker | undefined;
  readonly #ctrl: Int32Array;
  readonly #due: BigInt64Array;
  /** Armed timers, by due time (ties in arming order). */
  #timers: ThreadTimer[] = [];
  #published = -1;
  /** Warm-up timers still armed (see {@link WARM_TICKS}). */
  #warming = 0;
  readonly #warmUp: number;
  #started: Promise<TimerThreadState>;
  #settle: (state: TimerThreadState) => void = () => {};

  constructor(options: TimerThreadOptions = {}) {
    const buffer = new SharedArrayBuffer(16);
    this.#ctrl = new Int32Array(buffer, 0, 1);
    this.#due = new BigInt64Array(buffer, 8, 1);
    Atomics.store(this.#due, 0, -1n);
    this.#started = new Promise((resolve) => (this.#settle = resolve));
    this.#warmUp = options.warmUp ?? 0;
    try {
      const worker = new Worker(options.source ?? TIMER_THREAD_SOURCE, { eval: true, workerData: { buffer }, execArgv: [] });
      worker.on('message', (message: number | 'ready') => {
        if (message !== 'ready') this.#onMessage(message);
        else if (this.#state === 'starting') {
          this.#state = 'online';
          this.#warm();
          this.#settle('online');
        }
      });
      worker.on('error', () => this.#fail());
      worker.on('exit', () => this.#fail());
      worker.unref();
      this.#worker = worker;
    } catch {
      this.#fail();
    }
  }

  /** Resolves when the worker runs (`online`) or could not start (`failed`); keeps the process alive until then. */
  started(): Promise<TimerThreadState> {
    const worker = this.#worker;
    if (this.#state === 'starting' && worker) {
      worker.ref();
      void this.#started.then(() => worker.unref());
    }
    return this.#started;
  }

  /** `starting` until the worker's code runs (it says `ready`), `online` while it serves timers, `failed` for good once it could not start or died. */
  get state(): TimerThreadState {
    return this.#state;
  }

  /** Timers armed on the thread (its own warm-up timers left out). */
  get pending(): number {
    return this.#timers.length - this.#warming;
  }

  /** Warm-up timers not served yet (see {@link TimerThreadOptions.warmUp}). */
  get warming(): number {
    return this.#warming;
  }

  /** Arms the warm-up timers, each a no-op (see {@link WARM_TICKS}). */
  #warm(): void {
    const done = (): void => void this.#warming--;
    const start = Date.now();
    for (let i = 1; i <= this.#warmUp; i++) {
      this.#warming++;
      this.add({ at: start + i * WARM_STEP_MS, due: done, orphaned: done, ahead: () => {} });
    }
  }

  /** Arms `timer` (only while {@link state} is `online`; returns false otherwise and does nothing). */
  add(timer: ThreadTimer): boolean {
    if (this.#state !== 'online') return false;
    const timers = this.#timers;
    let lo = 0;
    let hi = timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (timers[mid]!.at <= timer.at) lo = mid + 1;
      else hi = mid;
    }
    timers.splice(lo, 0, timer);
    if (lo === 0) this.#publish(false);
    return true;
  }

  /** Disarms `timer` (no-op if it is not armed). */
  remove(timer: ThreadTimer): void {
    const index = this.#timers.indexOf(timer);
    if (index < 0) return;
    this.#timers.splice(index, 1);
    if (index === 0) this.#publish(false);
  }

  /** Stops the worker; armed timers are orphaned (they fall back to waiting on the main thread). */
  async terminate(): Promise<void> {
    await this.#worker?.terminate();
    this.#fail();
  }

  /** Tells the worker the earliest due time; `always` also when unchanged (after a firing, so it may post again). */
  #publish(always: boolean): void {
    const next = this.#timers[0]?.at ?? -1;
    if (!always && next === this.#published) return;
    this.#published = next;
    Atomics.store(this.#due, 0, BigInt(next));
    Atomics.add(this.#ctrl, 0, 1);
    Atomics.notify(this.#ctrl, 0);
  }

  /** The worker saw `Date.now()` reach `at`: fire what is due by this thread's clock, in due order. */
  #onMessage(at: number): void {
    const now = Date.now();
    let count = 0;
    while (count < this.#timers.length && this.#timers[count]!.at <= now) count++;
    const due = this.#timers.splice(0, count);
    // Woken ahead of the tick (on purpose, see LEAD_MS): those wait the rest on the main thread.
    let early = 0;
    while (early < this.#timers.length && this.#timers[early]!.at <= at) early++;
    const ahead = this.#timers.splice(0, early);
    this.#publish(true);
    for (const timer of due) callBack(() => timer.due());
    for (const timer of ahead) callBack(() => timer.ahead());
    if (ahead.length > 0) this.#waitOut(ahead);
  }

  /**
   * The timers the thread woke the main thread for ahead of their tick wait for it here, together: one read of
   * `Date.now()` per loop turn decides for all of them, so timers due at the same time fire in the order they were
   * armed. (Each polling on its own, a tick between two of their reads let the later one fire first.) The turns go
   * by `setImmediate`, kept ref'd: an unref'd immediate does not stop the event loop from sleeping in its poll
   * phase until the next timer, here the backstop 2 ms later. That holds the process for at most the rest of the
   * millisecond.
   */
  #waitOut(timers: ThreadTimer[]): void {
    const now = Date.now();
    let n = 0;
    while (n < timers.length && timers[n]!.at <= now) n++;
    for (const timer of timers.splice(0, n)) callBack(() => timer.due());
    if (timers.length === 0) return;
    // Not due by the next tick: the wall clock was set back. Each waits on its own again, on a plain timer.
    if (timers[0]!.at - now > 1) for (const timer of timers) callBack(() => timer.orphaned());
    else setImmediate(() => this.#waitOut(timers));
  }

  #fail(): void {
    if (this.#state === 'failed') return;
    this.#state = 'failed';
    this.#settle('failed');
    this.#worker = undefined;
    const orphans = this.#timers;
    this.#timers = [];
    for (const timer of orphans) callBack(() => timer.orphaned());
  }
}

/** Runs one timer's callback; a throw is reported as uncaught (like a throwing `setTimeout` callback) without keeping the others from running. */
function callBack(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

let shared: TimerThread | undefined;

/** The process's timer thread, started on first use (and warmed up); a failed one is not restarted. */
export function sharedTimerThread(): TimerThread {
  shared ??= new TimerThread({ warmUp: WARM_TICKS });
  return shared;
}
