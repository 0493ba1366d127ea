/**
 * The orchestrator routes, and does nothing else. Actors and the Runtime facade send every cross-actor message
 * here; the `type` prefix (`scheduler.`, `executor.`, `tracker.`) names the actor that owns it. This is the one
 * place that knows the routing between scheduler, executor and tracker, so swapping or splitting an actor
 * changes this table only. It imports no store and no pool.
 *
 * While it runs it is a router on the bus (`Bus.route`): a message is passed on in its sender's call, so it waits
 * in one mailbox (its target's), not two. Forwarding never throws, so nothing is lost to a crash here.
 */
import type { Actor, ActorContext } from './actor/actor.ts';
import type { Message } from './bus/message.ts';
import type { ActorAddress } from './ids.ts';

/** Message types whose targets are remembered (the protocol has a few dozen; a sender of made-up types cannot grow it further). */
const MAX_TYPES = 256;

export type RoutingTable = Readonly<Record<string, ActorAddress>>;

export class Orchestrator<M extends Message> implements Actor<M> {
  readonly #ctx: ActorContext<M>;
  readonly #routes: RoutingTable;
  /** Target of each message type seen so far (undefined: unroutable). */
  readonly #byType = new Map<string, ActorAddress | undefined>();
  #routed = 0;
  #unroutable = 0;
  #unroute: (() => void) | undefined;

  constructor(ctx: ActorContext<M>, routes: RoutingTable) {
    this.#ctx = ctx;
    this.#routes = routes;
  }

  start(): void {
    this.#unroute = this.#ctx.bus.route(this.#ctx.self, (msg, from) => this.receive(msg, from));
  }

  stop(): void {
    this.#unroute?.();
    this.#unroute = undefined;
  }

  receive(msg: M, from: ActorAddress): void {
    // Message types are few and constant: each one's target is looked up once (a slice of the type and a lookup by
    // the new string were ≈0.1 µs of every message, several per run).
    let to = this.#byType.get(msg.type);
    if (to === undefined && !this.#byType.has(msg.type)) {
      const dot = msg.type.indexOf('.');
      to = dot > 0 && Object.hasOwn(this.#routes, msg.type.slice(0, dot)) ? this.#routes[msg.type.slice(0, dot)] : undefined;
      if (this.#byType.size < MAX_TYPES) this.#byType.set(msg.type, to);
    }
    if (to === undefined) {
      this.#unroutable++;
      return;
    }
    this.#routed++;
    // Forward under the original sender, so inspection shows who really spoke.
    this.#ctx.bus.tell(from, to, msg);
  }

  describe(): Record<string, unknown> {
    return { routed: this.#routed, unroutable: this.#unroutable, routes: { ...this.#routes } };
  }
}
