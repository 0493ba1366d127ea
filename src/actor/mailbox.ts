/**
 * A per-actor FIFO mailbox. Messages are processed one at a time, in order; a burst is drained in one microtask.
 * If `receive` returns a promise, the next message waits for it. A crash pauses the mailbox until the
 * supervisor restarts the actor (the message that crashed is dropped and counted).
 *
 * Every message of a run passes through here, so the queue is cheap to empty and refill: its arrays keep their
 * slots and a tail index marks the end (setting an array's `length` is a runtime call in V8, ≈800 instructions),
 * and the drain is scheduled through `soon` (soon.ts).
 */
import type { Message } from '../bus/message.ts';
import type { ActorAddress } from '../ids.ts';
import { soon } from '../soon.ts';

export interface MailboxHandler<M extends Message> {
  receive(msg: M, from: ActorAddress): void | Promise<void>;
  crash(error: unknown, msg: M): void;
}

export class Mailbox<M extends Message> {
  #queue: (M | undefined)[] = [];
  #senders: ActorAddress[] = [];
  #head = 0;
  /** One past the last queued message; slots from here on are free for reuse. */
  #tail = 0;
  /** The drain, bound once. */
  readonly #drainSoon = (): void => this.#drain();
  #handler: MailboxHandler<M> | undefined;
  #scheduled = false;
  #busy = false;
  #paused = true;
  #processed = 0;
  #dropped = 0;

  /**
   * Attaches the actor and starts delivering. A handler attached in place of another (a restart) does not wait
   * for, or inherit the crash of, a `receive` of the replaced one that is still in flight.
   */
  start(handler: MailboxHandler<M>): void {
    if (this.#handler !== handler) {
      this.#handler = handler;
      this.#busy = false;
    }
    this.#paused = false;
    this.#schedule();
  }

  /** Stops delivering (messages stay queued). */
  pause(): void {
    this.#paused = true;
  }

  /** Drops every queued message. */
  clear(): number {
    const n = this.size;
    this.#queue = [];
    this.#senders = [];
    this.#head = 0;
    this.#tail = 0;
    this.#dropped += n;
    return n;
  }

  deliver(msg: M, from: ActorAddress): void {
    const at = this.#tail++;
    if (at < this.#queue.length) {
      this.#queue[at] = msg;
      this.#senders[at] = from;
    } else {
      this.#queue.push(msg);
      this.#senders.push(from);
    }
    this.#schedule();
  }

  get size(): number {
    return this.#tail - this.#head;
  }

  get stats(): { queued: number; processed: number; dropped: number } {
    return { queued: this.size, processed: this.#processed, dropped: this.#dropped };
  }

  #schedule(): void {
    if (this.#scheduled || this.#busy || this.#paused) return;
    this.#scheduled = true;
    soon(this.#drainSoon);
  }

  #drain(): void {
    this.#scheduled = false;
    while (!this.#paused && !this.#busy && this.#head < this.#tail) {
      const msg = this.#queue[this.#head]!;
      const from = this.#senders[this.#head]!;
      this.#queue[this.#head] = undefined;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#tail) {
        this.#queue = this.#queue.slice(this.#head, this.#tail);
        this.#senders = this.#senders.slice(this.#head, this.#tail);
        this.#tail -= this.#head;
        this.#head = 0;
      }
      const handler = this.#handler!;
      let result: void | Promise<void>;
      try {
        result = handler.receive(msg, from);
      } catch (error) {
        this.#fail(handler, error, msg);
        return;
      }
      this.#processed++;
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        this.#busy = true;
        (result as Promise<void>).then(
          () => {
            if (this.#handler !== handler) return;
            this.#busy = false;
            this.#schedule();
          },
          (error: unknown) => {
            if (this.#handler !== handler) return;
            this.#busy = false;
            this.#fail(handler, error, msg);
          },
        );
        return;
      }
    }
    if (this.#head === this.#tail && this.#head > 0) {
      this.#head = 0;
      this.#tail = 0;
    }
  }

  #fail(handler: MailboxHandler<M>, error: unknown, msg: M): void {
    this.#paused = true;
    this.#dropped++;
    handler.crash(error, msg);
  }
}
