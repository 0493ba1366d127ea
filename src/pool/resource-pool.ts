/**
 * A pool for the user's own resources (database connections, browsers, API clients).
 *
 * Rules:
 * - `max` is never exceeded: resources that exist, are being validated or are being created all count.
 * - `min` are kept warm: created at start, and made again after discards and failed validations; a warm-up
 *   `create()` that fails is reported to `onError` and tried again after 1 s (doubling up to 30 s).
 * - Waiters are served first come, first served. Idle resources are lent last-in first-out, so that the ones
 *   not needed sit idle and age out: after `idleMs` idle, a resource is destroyed if the pool is above `min`.
 * - `validate` runs on every borrow of an idle resource; one that fails (false or throws) is destroyed and
 *   another one is found or made. A new resource is lent without validation.
 * - A `create()` that throws rejects the acquirer at the head of the line with that error, and frees the slot.
 * - `acquire` gives up after `acquireTimeoutMs` with POOL_EXHAUSTED, or when its signal aborts (its reason).
 * - `close()` refuses new acquires and rejects waiters with CLOSED, destroys idle resources at once and borrowed
 *   ones as they are released (all of them at once with `force`), and resolves when all are destroyed.
 *
 * Time comes from the injected Clock, so tests drive eviction and timeouts with `ManualClock`.
 */
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import { ErrorCodes, TroupeError, invalidOption } from '../errors.ts';
import { parseDuration } from '../units.ts';

export interface ResourcePoolOptions<T> {
  /** Makes a resource. */
  create(): Promise<T> | T;
  /** Frees a resource for good. @default nothing */
  destroy?(resource: T): Promise<void> | void;
  /** Says whether an idle resource is still usable, before each borrow. @default every resource is valid */
  validate?(resource: T): Promise<boolean> | boolean;
  /** Resources kept warm. @default 0 */
  min?: number;
  /** Most resources at once. */
  max: number;
  /** An idle resource above `min` is destroyed after this long (ms or `'30s'`). @default 30_000 */
  idleMs?: number | string;
  /** How long `acquire` waits before POOL_EXHAUSTED (ms or `'5s'`; `Infinity` waits for ever). @default 30_000 */
  acquireTimeoutMs?: number | string;
  /** @default systemClock */
  clock?: Clock;
  /** Told about failures no caller receives: destroy() or validate() throwing, a warm-up create() failing. */
  onError?(error: unknown): void;
}

export type ResourcePoolStatus = 'idle' | 'running' | 'stopping' | 'stopped';

export interface ResourcePool<T> {
  /** Borrows a resource: an idle one (validated), a new one, or the next one released. */
  acquire(options?: { signal?: AbortSignal }): Promise<T>;
  /** Gives a borrowed resource back. */
  release(resource: T): void;
  /** Gives a borrowed resource back as broken: it is destroyed, not lent again. */
  discard(resource: T): void;
  /** Borrows, runs `fn`, and releases whatever happens. */
  use<R>(fn: (resource: T) => Promise<R> | R): Promise<R>;
  /** Resources that exist or are being made (never above `max`). */
  readonly size: number;
  /** Idle resources ready to lend. */
  readonly available: number;
  /** Acquirers waiting. */
  readonly pending: number;
  /** Borrowed resources. */
  readonly borrowed: number;
  /** `idle`: nothing borrowed, nobody waiting; `running`: in use. */
  readonly status: ResourcePoolStatus;
  /** Resolves when nothing is borrowed, nobody waits and nothing is being made. */
  drain(): Promise<void>;
  /** Closes the pool (see the rules above). Idempotent: the same promise. */
  close(options?: { force?: boolean }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Resolved<T> {
  create: () => Promise<T> | T;
  destroy: ((r: T) => Promise<void> | void) | undefined;
  validate: ((r: T) => Promise<boolean> | boolean) | undefined;
  min: number;
  max: number;
  idleMs: number;
  acquireTimeoutMs: number;
  clock: Clock;
  onError: ((error: unknown) => void) | undefined;
}

const WARM_UP_RETRY_MS = 1000;
const WARM_UP_RETRY_MAX_MS = 30_000;

const KNOWN_OPTIONS = new Set(['create', 'destroy', 'validate', 'min', 'max', 'idleMs', 'acquireTimeoutMs', 'clock', 'onError']);

function optionalFunction(value: unknown, path: string): void {
  if (value !== undefined && typeof value !== 'function') throw invalidOption(path, 'a function', value);
}

function validateOptions<T>(raw: ResourcePoolOptions<T>): Resolved<T> {
  if (typeof raw !== 'object' || raw === null) throw invalidOption('options', 'an object', raw);
  const o = Object.assign(Object.create(null) as Record<string, unknown>, raw);
  for (const key of Object.keys(o)) if (!KNOWN_OPTIONS.has(key)) throw invalidOption(key, 'a known option of createResourcePool', o[key]);
  if (typeof o.create !== 'function') throw invalidOption('create', 'a function', o.create);
  optionalFunction(o.destroy, 'destroy');
  optionalFunction(o.validate, 'validate');
  optionalFunction(o.onError, 'onError');
  if (!Number.isSafeInteger(o.max) || (o.max as number) < 1) throw invalidOption('max', 'a positive integer', o.max);
  const max = o.max as number;
  const min = o.min ?? 0;
  if (!Number.isSafeInteger(min) || (min as number) < 0) throw invalidOption('min', 'a non-negative integer', o.min);
  if ((min as number) > max) throw invalidOption('min', `at most \`max\` (${max})`, o.min);
  const idleMs = parseDuration(o.idleMs ?? 30_000, 'idleMs');
  const acquireTimeoutMs = o.acquireTimeoutMs === Infinity ? Infinity : parseDuration(o.acquireTimeoutMs ?? 30_000, 'acquireTimeoutMs', { positive: true });
  const clock = (o.clock ?? systemClock) as Clock;
  if (typeof clock !== 'object' || typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw invalidOption('clock', 'a Clock', o.clock);
  }
  const bound = <F>(fn: unknown) => (typeof fn === 'function' ? (fn.bind(raw) as F) : undefined);
  return {
    create: bound<Resolved<T>['create']>(o.create)!,
    destroy: bound<Resolved<T>['destroy']>(o.destroy),
    validate: bound<Resolved<T>['validate']>(o.validate),
    min: min as number, max, idleMs, acquireTimeoutMs, clock,
    onError: bound<Resolved<T>['onError']>(o.onError),
  };
}

interface Waiter<T> {
  resolve(r: T): void;
  reject(e: unknown): void;
  timer: TimerHandle | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

class Pool<T> implements ResourcePool<T> {
  readonly #o: Resolved<T>;
  /** Idle resources, oldest first; lent from the end. */
  readonly #idle: { r: T; since: number }[] = [];
  readonly #borrowed = new Set<T>();
  /** Borrowed when a forced close destroyed them: their release is ignored. */
  readonly #retired = new Set<T>();
  readonly #waiters: Waiter<T>[] = [];
  readonly #destroying = new Set<Promise<void>>();
  readonly #drainers: (() => void)[] = [];
  #creating = 0;
  #validating = 0;
  #evictTimer: TimerHandle | undefined;
  #warmUpTimer: TimerHandle | undefined;
  #warmUpDelayMs = WARM_UP_RETRY_MS;
  #state: 'open' | 'stopping' | 'stopped' = 'open';
  #closing: Promise<void> | undefined;
  #settled: (() => void) | undefined;

  constructor(options: Resolved<T>) {
    this.#o = options;
    this.#ensureMin();
  }

  get size(): number {
    return this.#idle.length + this.#borrowed.size + this.#creating + this.#validating;
  }

  get available(): number {
    return this.#idle.length;
  }

  get pending(): number {
    return this.#waiters.length;
  }

  get borrowed(): number {
    return this.#borrowed.size;
  }

  get status(): ResourcePoolStatus {
    if (this.#state !== 'open') return this.#state;
    return this.#borrowed.size > 0 || this.#waiters.length > 0 ? 'running' : 'idle';
  }

  acquire(options: { signal?: AbortSignal } = {}): Promise<T> {
    const { signal } = options;
    if (this.#state !== 'open') return Promise.reject(new TroupeError(ErrorCodes.CLOSED, 'The resource pool is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      if (this.#o.acquireTimeoutMs !== Infinity) {
        waiter.timer = this.#o.clock.setTimeout(() => {
          this.#dropWaiter(waiter, new TroupeError(ErrorCodes.POOL_EXHAUSTED, `No resource within ${this.#o.acquireTimeoutMs} ms (max ${this.#o.max})`, {
            details: { max: this.#o.max, size: this.size, pending: this.#waiters.length },
          }));
        }, this.#o.acquireTimeoutMs);
        waiter.timer.unref?.();
      }
      if (signal) {
        waiter.onAbort = () => this.#dropWaiter(waiter, signal.reason);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#dispatch();
    });
  }

  release(resource: T): void {
    if (this.#retired.delete(resource)) return;
    if (!this.#borrowed.delete(resource)) {
      throw new TroupeError(ErrorCodes.CONFLICT, 'This resource is not borrowed from this pool (released twice?)');
    }
    if (this.#state !== 'open') {
      this.#destroy(resource);
      this.#checkSettled();
      return;
    }
    this.#idle.push({ r: resource, since: this.#o.clock.now() });
    this.#dispatch();
    this.#armEviction();
    this.#checkDrained();
  }

  discard(resource: T): void {
    if (this.#retired.delete(resource)) return;
    if (!this.#borrowed.delete(resource)) {
      throw new TroupeError(ErrorCodes.CONFLICT, 'This resource is not borrowed from this pool (released twice?)');
    }
    this.#destroy(resource);
    this.#ensureMin();
    this.#dispatch();
    this.#checkDrained();
    this.#checkSettled();
  }

  async use<R>(fn: (resource: T) => Promise<R> | R): Promise<R> {
    const resource = await this.acquire();
    try {
      return await fn(resource);
    } finally {
      this.release(resource);
    }
  }

  drain(): Promise<void> {
    if (this.#isDrained()) return Promise.resolve();
    return new Promise((resolve) => this.#drainers.push(resolve));
  }

  close(options: { force?: boolean } = {}): Promise<void> {
    if (options.force === true && this.#state === 'stopping') this.#retireBorrowed();
    this.#closing ??= this.#close(options.force === true);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(force: boolean): Promise<void> {
    this.#state = 'stopping';
    this.#o.clock.clearTimeout(this.#evictTimer);
    this.#evictTimer = undefined;
    this.#o.clock.clearTimeout(this.#warmUpTimer);
    this.#warmUpTimer = undefined;
    for (const w of this.#waiters.splice(0)) this.#settleWaiter(w, new TroupeError(ErrorCodes.CLOSED, 'The resource pool was closed while waiting'));
    for (const { r } of this.#idle.splice(0)) this.#destroy(r);
    if (force) this.#retireBorrowed();
    this.#checkDrained();
    if (!this.#isSettled()) await new Promise<void>((resolve) => (this.#settled = resolve));
    while (this.#destroying.size > 0) await Promise.all(this.#destroying);
    this.#state = 'stopped';
  }

  #retireBorrowed(): void {
    for (const r of this.#borrowed) {
      this.#retired.add(r);
      this.#destroy(r);
    }
    this.#borrowed.clear();
    this.#checkSettled();
  }

  #isSettled(): boolean {
    return this.#borrowed.size === 0 && this.#creating === 0 && this.#validating === 0;
  }

  #checkSettled(): void {
    if (this.#settled !== undefined && this.#isSettled()) {
      const settled = this.#settled;
      this.#settled = undefined;
      settled();
    }
  }

  #isDrained(): boolean {
    return this.#borrowed.size === 0 && this.#waiters.length === 0 && this.#creating === 0 && this.#validating === 0;
  }

  #checkDrained(): void {
    if (this.#drainers.length > 0 && this.#isDrained()) for (const resolve of this.#drainers.splice(0)) resolve();
  }

  #report(error: unknown): void {
    try {
      this.#o.onError?.(error);
    } catch {
      // A throwing error hook must not break the pool.
    }
  }

  /** Serves waiters from idle resources (validated) or new ones, while something can be done. */
  #dispatch(): void {
    while (this.#state === 'open' && this.#waiters.length > this.#creating + this.#validating) {
      const idle = this.#idle.pop();
      if (idle !== undefined) {
        if (this.#o.validate) this.#validateThenOffer(idle.r);
        else this.#offer(idle.r);
      } else if (this.size < this.#o.max) {
        this.#create(true);
      } else {
        break;
      }
    }
    this.#armEviction();
  }

  /** Gives a ready resource to the first waiter, or puts it with the idle ones. */
  #offer(resource: T): void {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      this.#idle.push({ r: resource, since: this.#o.clock.now() });
      this.#armEviction();
      this.#checkDrained();
      return;
    }
    this.#borrowed.add(resource);
    this.#settleWaiter(waiter, undefined, true, resource);
  }

  #validateThenOffer(resource: T): void {
    this.#validating++;
    let check: Promise<boolean>;
    try {
      check = Promise.resolve(this.#o.validate!(resource));
    } catch (error) {
      check = Promise.reject(error);
    }
    check.then(
      (ok) => ok === true,
      (error: unknown) => {
        this.#report(error);
        return false;
      },
    ).then((ok) => {
      this.#validating--;
      if (this.#state !== 'open') this.#destroy(resource);
      else if (ok) this.#offer(resource);
      else {
        this.#destroy(resource);
        this.#ensureMin();
      }
      this.#dispatch();
      this.#checkDrained();
      this.#checkSettled();
    });
  }

  /** Makes one resource; `forWaiter` says a waiter is owed it (a failure then rejects the first waiter). */
  #create(forWaiter: boolean): void {
    this.#creating++;
    let made: Promise<T>;
    try {
      made = Promise.resolve(this.#o.create());
    } catch (error) {
      made = Promise.reject(error);
    }
    made.then(
      (resource) => {
        this.#creating--;
        this.#warmUpDelayMs = WARM_UP_RETRY_MS;
        if (this.#state !== 'open') this.#destroy(resource);
        else this.#offer(resource);
        this.#dispatch();
        this.#checkSettled();
      },
      (error: unknown) => {
        this.#creating--;
        const waiter = forWaiter ? this.#waiters.shift() : undefined;
        if (waiter) this.#settleWaiter(waiter, error);
        else {
          this.#report(error);
          this.#retryWarmUp();
        }
        this.#dispatch();
        this.#checkDrained();
        this.#checkSettled();
      },
    );
  }

  #ensureMin(): void {
    while (this.#state === 'open' && this.size < this.#o.min) this.#create(false);
  }

  /** A warm-up create() failed: try again later (1 s, doubling up to 30 s), not in a hot loop. */
  #retryWarmUp(): void {
    if (this.#warmUpTimer !== undefined || this.#state !== 'open') return;
    const delay = this.#warmUpDelayMs;
    this.#warmUpDelayMs = Math.min(WARM_UP_RETRY_MAX_MS, delay * 2);
    this.#warmUpTimer = this.#o.clock.setTimeout(() => {
      this.#warmUpTimer = undefined;
      this.#ensureMin();
    }, delay);
    this.#warmUpTimer.unref?.();
  }

  #destroy(resource: T): void {
    if (!this.#o.destroy) return;
    let done: Promise<void>;
    try {
      done = Promise.resolve(this.#o.destroy(resource));
    } catch (error) {
      done = Promise.reject(error);
    }
    const tracked: Promise<void> = done.catch((error: unknown) => this.#report(error)).finally(() => this.#destroying.delete(tracked));
    this.#destroying.add(tracked);
  }

  #dropWaiter(waiter: Waiter<T>, reason: unknown): void {
    const at = this.#waiters.indexOf(waiter);
    if (at === -1) return;
    this.#waiters.splice(at, 1);
    this.#settleWaiter(waiter, reason);
    this.#checkDrained();
  }

  /** Settles a waiter once: rejects with `error`, or resolves with `resource` when `ok`. */
  #settleWaiter(waiter: Waiter<T>, error: unknown, ok = false, resource?: T): void {
    this.#o.clock.clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort);
    if (ok) waiter.resolve(resource as T);
    else waiter.reject(error);
  }

  /** Arms one timer for the oldest idle resource above `min`. */
  #armEviction(): void {
    if (this.#evictTimer !== undefined || this.#state !== 'open') return;
    if (this.#idle.length === 0 || this.size <= this.#o.min || this.#o.idleMs === Infinity) return;
    const due = this.#idle[0]!.since + this.#o.idleMs;
    this.#evictTimer = this.#o.clock.setTimeout(() => {
      this.#evictTimer = undefined;
      this.#evict();
    }, Math.max(0, due - this.#o.clock.now()));
    this.#evictTimer.unref?.();
  }

  #evict(): void {
    const now = this.#o.clock.now();
    while (this.#idle.length > 0 && this.size > this.#o.min && now - this.#idle[0]!.since >= this.#o.idleMs) {
      this.#destroy(this.#idle.shift()!.r);
    }
    this.#armEviction();
  }
}

/** Creates a pool of user resources with min/max, idle eviction, validation on borrow and acquire timeouts. */
export function createResourcePool<T>(options: ResourcePoolOptions<T>): ResourcePool<T> {
  return new Pool<T>(validateOptions(options));
}
