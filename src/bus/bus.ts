/**
 * The typed message bus: the one choke point every actor-to-actor message passes.
 *
 * - `tell(from, to, msg)` delivers to the actor's mailbox (one way).
 * - `publish(from, msg)` emits a fact to topic subscribers (`rt.on('task.succeeded', …)`, SSE, metrics).
 * - `inspect(fn)` sees an `@troupe.message` record for every message before it is delivered; the REPL's `tail`,
 *   the HTTP actor view and test probes all read this one stream. No actor logs its own traffic.
 *
 * Built on nanoevents (an emit is ≈45 ns); inspection records are only built while someone inspects.
 */
import { createNanoEvents, type Emitter, type Unsubscribe } from 'nanoevents';
import type { Clock } from '../clock.ts';
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { ActorAddress } from '../ids.ts';
import { BROADCAST, type Inspection, type ListenerMap, type Message, type MessageOf } from './message.ts';

/** Anything that can take a message: an actor's mailbox, or a one-shot reply slot of `ask`. */
export interface Deliverable<M extends Message> {
  /** `to` is the full address told, e.g. `runtime/req#42` for a target registered at `runtime/req`. */
  deliver(msg: M, from: ActorAddress, to: ActorAddress): void;
}

export class Bus<M extends Message> {
  readonly #clock: Clock;
  readonly #topics: Emitter<ListenerMap<M>> = createNanoEvents<ListenerMap<M>>();
  readonly #inspectors = new Set<(record: Inspection<M>) => void>();
  readonly #targets = new Map<ActorAddress, Deliverable<M>>();
  /** Addresses whose messages are handed on in the sender's call (see `route`). */
  readonly #routers = new Map<ActorAddress, (msg: M, from: ActorAddress) => void>();
  #deadLetters = 0;
  #delivered = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Binds an address to a mailbox. An address is taken by one target at a time. */
  register(address: ActorAddress, target: Deliverable<M>): () => void {
    if (this.#targets.has(address)) {
      throw new TroupeError(ErrorCodes.CONFLICT, `The address \`${address}\` is already registered on the bus`);
    }
    this.#targets.set(address, target);
    return () => {
      if (this.#targets.get(address) !== target) return;
      this.#targets.delete(address);
      // A router stands only on a registered address (a message to a gone one is a dead letter).
      this.#routers.delete(address);
    };
  }

  has(address: ActorAddress): boolean {
    return this.#targets.has(address);
  }

  /** Sends `msg` to the actor at `to`. A message to nobody is counted as a dead letter and dropped. */
  tell(from: ActorAddress, to: ActorAddress, msg: M): void {
    // A router (the orchestrator, which most messages pass) is registered too: it is handed the message at once.
    const router = this.#routers.size > 0 ? this.#routers.get(to) : undefined;
    if (router !== undefined) {
      if (this.#inspectors.size > 0) this.#emitInspection(from, to, msg, false);
      this.#delivered++;
      router(msg, from);
      return;
    }
    // `base#tag` reaches the target registered at `base` (one requester serves many reply addresses).
    let target = this.#targets.get(to);
    if (target === undefined) {
      const hash = to.indexOf('#');
      if (hash > 0) target = this.#targets.get(to.slice(0, hash));
    }
    if (this.#inspectors.size > 0) this.#emitInspection(from, to, msg, target === undefined);
    if (target === undefined) {
      this.#deadLetters++;
      return;
    }
    this.#delivered++;
    target.deliver(msg, from, to);
  }

  /**
   * Makes a registered address a router: a message told to it goes to `router` at once, in the sender's call,
   * instead of waiting in its mailbox for a microtask of its own. For an actor that only passes messages on (the
   * orchestrator): each message then costs one mailbox hop, not two, and the order of what it passes on is the
   * order it was told. Returns the function that ends it (messages then go to the mailbox again).
   */
  route(address: ActorAddress, router: (msg: M, from: ActorAddress) => void): () => void {
    if (!this.#targets.has(address)) throw new TroupeError(ErrorCodes.UNKNOWN_ACTOR, `No target at \`${address}\` to route`);
    this.#routers.set(address, router);
    return () => {
      if (this.#routers.get(address) === router) this.#routers.delete(address);
    };
  }

  /** Emits a fact to every subscriber of its type. */
  publish(from: ActorAddress, msg: M): void {
    if (this.#inspectors.size > 0) this.#emitInspection(from, BROADCAST, msg, false);
    (this.#topics.emit as unknown as (type: string, m: M) => void).call(this.#topics, msg.type, msg);
  }

  /** Subscribes to published facts of one type. */
  subscribe<T extends M['type']>(type: T, listener: (msg: MessageOf<M, T>) => void): Unsubscribe {
    return (this.#topics.on as unknown as (type: string, cb: (m: MessageOf<M, T>) => void) => Unsubscribe).call(this.#topics, type, listener);
  }

  /** true when someone listens to `type` (lets producers skip building facts nobody reads). */
  hasSubscribers(type: M['type']): boolean {
    const list = (this.#topics.events as Record<string, unknown[] | undefined>)[type];
    return list !== undefined && list.length > 0;
  }

  /** Sees every message (told or published) before delivery. */
  inspect(listener: (record: Inspection<M>) => void): Unsubscribe {
    this.#inspectors.add(listener);
    return () => this.#inspectors.delete(listener);
  }

  get stats(): { delivered: number; deadLetters: number; addresses: number; inspectors: number } {
    return { delivered: this.#delivered, deadLetters: this.#deadLetters, addresses: this.#targets.size, inspectors: this.#inspectors.size };
  }

  get clock(): Clock {
    return this.#clock;
  }

  #emitInspection(from: ActorAddress, to: ActorAddress, msg: M, dead: boolean): void {
    const record: Inspection<M> = { type: '@troupe.message', from, to, msg, at: this.#clock.now() };
    if (dead) record.dead = true;
    for (const inspector of this.#inspectors) {
      try {
        inspector(record);
      } catch {
        // An inspector must never break delivery.
      }
    }
  }
}
