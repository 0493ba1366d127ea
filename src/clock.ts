/**
 * Time is injected. Delays, leases, heartbeats, backoff, cron slots and timeouts all read `clock.now()` and
 * arm `clock.setTimeout`, so tests drive time with `ManualClock.advance()` instead of sleeping.
 */

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
 * How long before its due time a precise timer stops sleeping on `setTimeout` and polls instead. A Node timer
 * fires up to ≈1 ms late (whole-millisecond delays from a loop time that may be stale), more on a busy machine;
 * this margin covers that, and bounds the polling to about this long per firing.
 */
export const PRECISE_MARGIN_MS = 3;

/**
 * A timer that fires as soon as `Date.now()` reaches its due time: it sleeps on `setTimeout` until
 * {@link PRECISE_MARGIN_MS} before it, then checks `Date.now()` once per event-loop turn (`setImmediate`, so I/O
 * and other callbacks still run between checks). `Date.now()` counts whole milliseconds and `at` is one, so the
 * callback never runs before `at` and typically runs within tens of microseconds after it.
 */
class PreciseTimer implements TimerHandle {
  #timer: ReturnType<typeof setTimeout> | LongTimer | undefined;
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #unref = false;
  #cleared = false;
  readonly #fn: () => void;
  readonly #at: number;
  constructor(fn: () => void, at: number) {
    this.#fn = fn;
    this.#at = at;
    this.#step();
  }
  #step = (): void => {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#cleared) return;
    const left = this.#at - Date.now();
    if (left <= 0) {
      this.#cleared = true;
      this.#fn();
      return;
    }
    if (left > PRECISE_MARGIN_MS) {
      const ms = left - PRECISE_MARGIN_MS;
      this.#timer = ms > MAX_DELAY ? new LongTimer(this.#step, Date.now() + ms) : setTimeout(this.#step, ms);
      if (this.#unref) this.#timer.unref();
    } else {
      this.#immediate = setImmediate(this.#step);
      if (this.#unref) this.#immediate.unref();
    }
  };
  unref(): this {
    this.#unref = true;
    this.#timer?.unref();
    this.#immediate?.unref();
    return this;
  }
  clear(): void {
    this.#cleared = true;
    if (this.#timer instanceof LongTimer) this.#timer.clear();
    else clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
  }
}

/** The real clock: `Date.now()` and the host's timers; `setTimeoutAt` is a {@link PreciseTimer}. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle =>
    ms > MAX_DELAY ? new LongTimer(fn, Date.now() + ms) : setTimeout(fn, Math.max(0, ms)),
  setTimeoutAt: (fn: () => void, at: number): TimerHandle => new PreciseTimer(fn, at),
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
