/**
 * Time is injected. Delays, leases, heartbeats, backoff, cron slots and timeouts all read `clock.now()` and
 * arm `clock.setTimeout`, so tests drive time with `ManualClock.advance()` instead of sleeping.
 */
import { sharedTimerThread, type ThreadTimer, type TimerThread } from './timer-thread.ts';

export interface TimerHandle {
  /** Lets the process exit while the timer is pending (no-op on a manual clock). */
  unref?(): unknown;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /**
   * Calls `fn` once `now()` reads `at` or later, as close to `at` as the clock can (optional; without it a caller
   * uses `setTimeout(fn, at - now())`, see {@link setTimeoutAt}). Never early: `now()` inside `fn` is ≥ `at`.
   * Cancelled with `clearTimeout`.
   */
  setTimeoutAt?(fn: () => void, at: number): TimerHandle;
}

/** Calls `fn` once `clock.now()` reaches `at`: the clock's precise timer when it has one, else its plain timer. */
export function setTimeoutAt(clock: Clock, fn: () => void, at: number): TimerHandle {
  if (clock.setTimeoutAt) return clock.setTimeoutAt(fn, at);
  return clock.setTimeout(fn, Math.max(0, at - clock.now()));
}

/** Node turns a delay above 2^31−1 ms into 1 ms; longer waits are chained. */
const MAX_DELAY = 2 ** 31 - 1;

/** A long timer: re-arms itself in steps of at most MAX_DELAY until its due time. */
class LongTimer implements TimerHandle {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unref = false;
  constructor(fn: () => void, due: number) {
    const arm = () => {
      const left = due - Date.now();
      if (left <= MAX_DELAY) this.#timer = setTimeout(fn, Math.max(0, left));
      else this.#timer = setTimeout(arm, MAX_DELAY);
      if (this.#unref) this.#timer.unref();
    };
    arm();
  }
  unref(): this {
    this.#unref = true;
    this.#timer?.unref();
    return this;
  }
  clear(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * How long before its due time a precise timer without the timer thread stops sleeping on `setTimeout` and polls
 * instead. A Node timer fires up to ≈1 ms late (whole-millisecond delays from a loop time that may be stale), more
 * on a busy machine; this margin covers that, and bounds the polling to about this long per firing.
 */
export const PRECISE_MARGIN_MS = 3;

/**
 * How long after its due time a precise timer armed on the timer thread fires by itself if the thread has not
 * woken the main thread by then (a plain `setTimeout`, which also keeps the process alive for a timer that is not
 * unref'd: the thread itself never does).
 */
export const THREAD_BACKSTOP_MS = 2;

/**
 * A timer that fires as soon as `Date.now()` reaches its due time, never before (`Date.now()` counts whole
 * milliseconds and `at` is one). Two ways to wait:
 *
 * - On the process's {@link TimerThread} once it runs: the thread sleeps until the due time and wakes the main
 *   thread with a message; the main thread stays asleep in its event loop until then. A plain timer
 *   {@link THREAD_BACKSTOP_MS} after the due time is the backstop.
 * - Without it (while it starts, or if it could not start or died; armed timers move over at once): `setTimeout`
 *   until {@link PRECISE_MARGIN_MS} before the due time, then a check of `Date.now()` once per event-loop turn
 *   (`setImmediate`, so I/O and other callbacks still run between checks).
 */
class PreciseTimer implements TimerHandle, ThreadTimer {
  #timer: ReturnType<typeof setTimeout> | LongTimer | undefined;
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #unref = false;
  #cleared = false;
  /** Armed on the thread. */
  #onThread = false;
  /** The thread gave it back: wait on the main thread from now on. */
  #orphaned = false;
  readonly #fn: () => void;
  readonly #thread: TimerThread | undefined;
  readonly at: number;
  constructor(fn: () => void, at: number, thread: TimerThread | undefined) {
    this.#fn = fn;
    this.at = at;
    this.#thread = thread;
    this.#step();
  }
  #step = (): void => {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#cleared) return;
    const left = this.at - Date.now();
    if (left <= 0) {
      this.#fire();
      return;
    }
    if (!this.#orphaned && this.#thread?.add(this)) {
      this.#onThread = true;
      this.#arm(this.#backstop, left + THREAD_BACKSTOP_MS);
    } else if (left > PRECISE_MARGIN_MS) {
      this.#arm(this.#step, left - PRECISE_MARGIN_MS);
    } else {
      this.#immediate = setImmediate(this.#step);
      if (this.#unref) this.#immediate.unref();
    }
  };
  #arm(fn: () => void, ms: number): void {
    this.#timer = ms > MAX_DELAY ? new LongTimer(fn, Date.now() + ms) : setTimeout(fn, ms);
    if (this.#unref) this.#timer.unref();
  }
  /** The thread has not called back {@link THREAD_BACKSTOP_MS} after the due time (as Node's timer counts). */
  #backstop = (): void => {
    this.#timer = undefined;
    if (this.#cleared) return;
    const left = this.at - Date.now();
    // Node's timers count from a loop time that may be stale: not yet due by the clock, wait on.
    if (left > 0) this.#arm(this.#backstop, left + THREAD_BACKSTOP_MS);
    else this.#fire();
  };
  #clearTimers(): void {
    if (this.#timer instanceof LongTimer) this.#timer.clear();
    else clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }
  #fire(): void {
    this.#cleared = true;
    if (this.#onThread) this.#thread?.remove(this);
    this.#onThread = false;
    this.#clearTimers();
    this.#fn();
  }
  /** Called by the thread (already disarmed there): due by the main thread's clock. */
  due(): void {
    this.#onThread = false;
    this.#clearTimers();
    this.#step();
  }
  /** Called by the thread (already disarmed there): `due` follows within the millisecond; the backstop can go. */
  ahead(): void {
    this.#onThread = false;
    this.#clearTimers();
  }
  /** Called by the thread (already disarmed there): it cannot serve this timer. */
  orphaned(): void {
    this.#onThread = false;
    this.#orphaned = true;
    this.#clearTimers();
    this.#step();
  }
  unref(): this {
    this.#unref = true;
    this.#timer?.unref();
    this.#immediate?.unref();
    return this;
  }
  clear(): void {
    this.#cleared = true;
    if (this.#onThread) this.#thread?.remove(this);
    this.#onThread = false;
    this.#clearTimers();
  }
}

/**
 * A precise timer (see {@link Clock.setTimeoutAt}) waiting on `thread` (default: the process's shared timer thread,
 * started by the first call; `undefined`: none, the main thread polls). Cancel it with `systemClock.clearTimeout`.
 */
export function preciseTimeoutAt(fn: () => void, at: number, thread: TimerThread | undefined = sharedTimerThread()): TimerHandle {
  return new PreciseTimer(fn, at, thread);
}

/** The real clock: `Date.now()` and the host's timers; `setTimeoutAt` is a precise timer ({@link preciseTimeoutAt}). */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle =>
    ms > MAX_DELAY ? new LongTimer(fn, Date.now() + ms) : setTimeout(fn, Math.max(0, ms)),
  setTimeoutAt: (fn: () => void, at: number): TimerHandle => new PreciseTimer(fn, at, sharedTimerThread()),
  clearTimeout: (handle: TimerHandle | undefined) => {
    if (handle instanceof LongTimer || handle instanceof PreciseTimer) handle.clear();
    else if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
});

interface ManualTimer extends TimerHandle {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. `advance(ms)` fires every timer due up to the new time, in due order,
 * letting promise callbacks run between timers so that work a timer starts can arm the next one.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false, unref: () => timer };
    this.#timers.push(timer);
    return timer;
  }

  /** Fires when the clock is advanced to `at` (at once on the next advance if `at` has passed). */
  setTimeoutAt(fn: () => void, at: number): TimerHandle {
    return this.setTimeout(fn, at - this.#now);
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) (handle as ManualTimer).cancelled = true;
  }

  /** Number of timers still armed. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** The due time of the earliest armed timer, if any. */
  get nextAt(): number | undefined {
    const next = this.#nextTimer();
    return next?.at;
  }

  /** Moves time forward by `ms`, firing due timers in order; awaits microtasks between them. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  /** Moves time to `target` (never backwards), firing due timers in order. */
  async advanceTo(target: number): Promise<void> {
    await flushMicrotasks();
    for (;;) {
      const next = this.#nextTimer();
      if (!next || next.at > target) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      if (next.at > this.#now) this.#now = next.at;
      next.fn();
      await flushMicrotasks();
    }
    if (target > this.#now) this.#now = target;
    await flushMicrotasks();
  }

  /** Sets the time without firing anything (for tests of "what if the clock jumped"). */
  set(time: number): void {
    this.#now = time;
  }

  #nextTimer(): ManualTimer | undefined {
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    let best: ManualTimer | undefined;
    for (const t of this.#timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }
}

/** Lets queued promise callbacks and I/O-free continuations run (a few macrotask turns). */
export async function flushMicrotasks(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
