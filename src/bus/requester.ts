/**
 * Many request/reply exchanges through one bus address: the cheap form of `ask` for hot paths.
 *
 * `ask` registers a reply address and arms a timer per request; a Requester registers `base` once, names each
 * request's reply address `base#<n>`, keeps the pending requests in a map, and checks deadlines with one sweep
 * timer while any request is pending (so a deadline may be passed by up to one sweep interval).
 */
import type { Clock, TimerHandle } from '../clock.ts';
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { ActorAddress } from '../ids.ts';
import type { Bus } from './bus.ts';
import type { Message } from './message.ts';

interface Pending<R> {
  resolve(value: R): void;
  reject(error: unknown): void;
  deadline: number;
  to: ActorAddress;
}

export class Requester<M extends Message, R extends M = M> {
  readonly #bus: Bus<M>;
  readonly #base: ActorAddress;
  readonly #clock: Clock;
  readonly #sweepMs: number;
  readonly #pending = new Map<number, Pending<R>>();
  readonly #unregister: () => void;
  #next = 0;
  #sweep: TimerHandle | undefined;
  #closed = false;

  constructor(bus: Bus<M>, base: ActorAddress, { sweepMs = 250 }: { sweepMs?: number } = {}) {
    this.#bus = bus;
    this.#base = base;
    this.#clock = bus.clock;
    this.#sweepMs = sweepMs;
    this.#unregister = bus.register(base, { deliver: (msg, _from, to) => this.#deliver(msg, to) });
  }

  /** Pending requests. */
  get size(): number {
    return this.#pending.size;
  }

  /** Sends `build(replyTo)` from `from` to `to`; resolves with the reply, or rejects on the deadline. */
  request(from: ActorAddress, to: ActorAddress, build: (replyTo: ActorAddress) => M, timeoutMs = 30_000): Promise<R> {
    if (this.#closed) return Promise.reject(new TroupeError(ErrorCodes.CLOSED, `The requester \`${this.#base}\` is closed`));
    const id = ++this.#next;
    return new Promise<R>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline: this.#clock.now() + timeoutMs, to });
      this.#armSweep();
      try {
        this.#bus.tell(from, to, build(`${this.#base}#${id}`));
      } catch (error) {
        this.#pending.delete(id);
        reject(error);
      }
    });
  }

  /** Rejects everything pending and releases the address. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister();
    this.#clock.clearTimeout(this.#sweep);
    for (const p of this.#pending.values()) p.reject(new TroupeError(ErrorCodes.CLOSED, `No answer from \`${p.to}\`: the requester closed`));
    this.#pending.clear();
  }

  #deliver(msg: M, to: ActorAddress): void {
    const id = Number(to.slice(to.indexOf('#') + 1));
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    p.resolve(msg as R);
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = this.#clock.setTimeout(() => {
      this.#sweep = undefined;
      const now = this.#clock.now();
      for (const [id, p] of this.#pending) {
        if (p.deadline <= now) {
          this.#pending.delete(id);
          p.reject(new TroupeError(ErrorCodes.ASK_TIMEOUT, `\`${p.to}\` did not answer in time`));
        }
      }
      if (this.#pending.size > 0) this.#armSweep();
    }, this.#sweepMs);
  }
}
