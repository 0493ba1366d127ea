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

/**
 * Takes one request's outcome (see {@link Requester.send}): the reply, or the error that ended the wait (its
 * deadline, the requester's close, a failed send). `context` is what was passed with the request.
 */
export interface ReplyReceiver<R, C = undefined> {
  onReply(reply: R, context: C): void;
  onError(error: unknown, context: C): void;
}

interface Pending<R> {
  receiver: ReplyReceiver<R, unknown>;
  context: unknown;
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
    return new Promise<R>((resolve, reject) => this.send(from, to, build, { onReply: resolve, onError: reject }, undefined, timeoutMs));
  }

  /**
   * As {@link request}, with the outcome handed to `receiver` along with `context` instead of a promise. Why: a
   * caller on a hot path keeps one receiver for all its requests and passes what differs as `context`, so a
   * request costs no promise, no closures and no microtask hop before the reply is read. A receiver that throws
   * does not disturb the replying actor: the error is thrown again in a microtask (an uncaught exception).
   */
  send<C>(from: ActorAddress, to: ActorAddress, build: (replyTo: ActorAddress, context: C) => M, receiver: ReplyReceiver<R, C>, context: C, timeoutMs = 30_000): void {
    if (this.#closed) {
      callReceiver(() => receiver.onError(new TroupeError(ErrorCodes.CLOSED, `The requester \`${this.#base}\` is closed`), context));
      return;
    }
    const id = ++this.#next;
    this.#pending.set(id, { receiver: receiver as ReplyReceiver<R, unknown>, context, deadline: this.#clock.now() + timeoutMs, to });
    this.#armSweep();
    try {
      this.#bus.tell(from, to, build(`${this.#base}#${id}`, context));
    } catch (error) {
      // Answered already (the reply came back within the send, before this failed): one outcome per request.
      if (this.#pending.delete(id)) callReceiver(() => receiver.onError(error, context));
      else rethrowLater(error);
    }
  }

  /** Rejects everything pending and releases the address. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister();
    this.#clock.clearTimeout(this.#sweep);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) callReceiver(() => p.receiver.onError(new TroupeError(ErrorCodes.CLOSED, `No answer from \`${p.to}\`: the requester closed`), p.context));
  }

  #deliver(msg: M, to: ActorAddress): void {
    const id = Number(to.slice(to.indexOf('#') + 1));
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    try {
      p.receiver.onReply(msg as R, p.context);
    } catch (error) {
      rethrowLater(error);
    }
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = this.#clock.setTimeout(() => {
      this.#sweep = undefined;
      const now = this.#clock.now();
      for (const [id, p] of this.#pending) {
        if (p.deadline <= now) {
          this.#pending.delete(id);
          callReceiver(() => p.receiver.onError(new TroupeError(ErrorCodes.ASK_TIMEOUT, `\`${p.to}\` did not answer in time`), p.context));
        }
      }
      if (this.#pending.size > 0) this.#armSweep();
    }, this.#sweepMs);
  }
}

/** A receiver's error must not stop the requester's loop or the replying actor: thrown again in a microtask. */
function callReceiver(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    rethrowLater(error);
  }
}

function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
