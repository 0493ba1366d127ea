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

/** The real clock: `Date.now()` and the host's timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle =>
    ms > MAX_DELAY ? new LongTimer(fn, Date.now() + ms) : setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (handle: TimerHandle | undefined) => {
    if (handle instanceof LongTimer) handle.clear();
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
