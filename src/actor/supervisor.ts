/**
 * The supervision tree. A supervisor starts its children from their specs, restarts a crashed child
 * (`one-for-one`: that child; `one-for-all`: every child, in start order), and when a child crashes more often than
 * its restart intensity allows, it stops all its children and escalates to its parent — a supervisor above it,
 * or the `onEscalate` callback at the root — as OTP does.
 *
 * A supervisor is itself an actor, so supervisors nest: a child supervisor's escalation is its parent's crash.
 */
import type { Bus } from '../bus/bus.ts';
import type { Message } from '../bus/message.ts';
import type { Clock } from '../clock.ts';
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { ActorAddress } from '../ids.ts';
import { ActorStatus, type Actor, type ActorContext, type ChildSpec, type TreeNode } from './actor.ts';
import { Mailbox } from './mailbox.ts';
import { decideRestart, DEFAULT_INTENSITY, type RestartIntensity } from './restart-policy.ts';

export type SupervisionStrategy = 'one-for-one' | 'one-for-all';

export interface SupervisorOptions {
  address: ActorAddress;
  /** @default 'one-for-one' */
  strategy?: SupervisionStrategy;
  /** @default { maxRestarts: 3, withinMs: 5000 } */
  intensity?: RestartIntensity;
  /** Called at the root when the tree gives up. */
  onEscalate?: (error: TroupeError) => void;
  /** Called for every crash (logging, metrics). */
  onCrash?: (address: ActorAddress, error: unknown) => void;
}

/** Published facts the supervisor emits (kept generic so any message union can carry them). */
export interface SupervisorEvents {
  crashed(address: ActorAddress, error: unknown): void;
  restarted(address: ActorAddress, restarts: number): void;
  escalated(address: ActorAddress, error: TroupeError): void;
}

interface Child<M extends Message> {
  spec: ChildSpec<M>;
  mailbox: Mailbox<M>;
  actor: Actor<M> | undefined;
  status: ActorStatus;
  restarts: number;
  unregister: () => void;
}

export class Supervisor<M extends Message> implements Actor<M> {
  readonly address: ActorAddress;
  readonly #bus: Bus<M>;
  readonly #clock: Clock;
  readonly #strategy: SupervisionStrategy;
  readonly #intensity: RestartIntensity;
  readonly #children = new Map<ActorAddress, Child<M>>();
  readonly #history: number[] = [];
  readonly #listeners: Partial<SupervisorEvents>[] = [];
  #status: ActorStatus = ActorStatus.idle;
  #parentFail: ((error: unknown) => void) | undefined;
  #options: SupervisorOptions;
  #restarting: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | undefined;

  constructor(bus: Bus<M>, clock: Clock, options: SupervisorOptions) {
    this.address = options.address;
    this.#bus = bus;
    this.#clock = clock;
    this.#options = options;
    this.#strategy = options.strategy ?? 'one-for-one';
    this.#intensity = options.intensity ?? DEFAULT_INTENSITY;
  }

  get status(): ActorStatus {
    return this.#status;
  }

  /** Listens to crashes, restarts and escalations (the runtime turns them into bus facts). */
  on(listener: Partial<SupervisorEvents>): () => void {
    this.#listeners.push(listener);
    return () => {
      const index = this.#listeners.indexOf(listener);
      if (index >= 0) this.#listeners.splice(index, 1);
    };
  }

  /** A supervisor used as a child spec of another supervisor. */
  static childSpec<M extends Message>(options: SupervisorOptions, children: ChildSpec<M>[]): ChildSpec<M> {
    return {
      address: options.address,
      kind: 'supervisor',
      create: (context) => {
        const sup = new Supervisor<M>(context.bus, context.clock, options);
        sup.#parentFail = context.fail;
        sup.#pendingSpecs = children;
        return sup;
      },
    };
  }

  #pendingSpecs: ChildSpec<M>[] = [];

  async start(): Promise<void> {
    this.#status = ActorStatus.running;
    for (const spec of this.#pendingSpecs) await this.startChild(spec);
  }

  receive(): void {
    // A supervisor takes no messages of its own; it is driven by its API and its children's crashes.
  }

  /** Starts a child and binds its address on the bus. */
  async startChild(spec: ChildSpec<M>): Promise<void> {
    if (this.#status === ActorStatus.idle) this.#status = ActorStatus.running;
    if (this.#children.has(spec.address)) {
      throw new TroupeError(ErrorCodes.CONFLICT, `A child at \`${spec.address}\` already exists under \`${this.address}\``);
    }
    const mailbox = new Mailbox<M>();
    const unregister = this.#bus.register(spec.address, mailbox);
    const child: Child<M> = { spec, mailbox, actor: undefined, status: ActorStatus.idle, restarts: 0, unregister };
    this.#children.set(spec.address, child);
    try {
      await this.#bring(child);
    } catch (error) {
      unregister();
      this.#children.delete(spec.address);
      throw error;
    }
  }

  /** Stops and removes a child. */
  async stopChild(address: ActorAddress): Promise<boolean> {
    const child = this.#children.get(address);
    if (!child) return false;
    await this.#halt(child);
    child.unregister();
    this.#children.delete(address);
    return true;
  }

  /** Restarts a child by hand (the REPL's `restart <actor>`); does not count against the intensity. */
  async restartChild(address: ActorAddress): Promise<void> {
    const child = this.#children.get(address);
    if (!child) {
      for (const c of this.#children.values()) {
        if (c.actor instanceof Supervisor && c.actor.#find(address)) return c.actor.restartChild(address);
      }
      throw new TroupeError(ErrorCodes.UNKNOWN_ACTOR, `No actor at \`${address}\` under \`${this.address}\``);
    }
    await this.#halt(child);
    child.restarts++;
    await this.#bring(child);
    this.#emit('restarted', address, child.restarts);
  }

  /** The actor instance currently at `address` (tests and the runtime's wiring use it). */
  actorAt(address: ActorAddress): Actor<M> | undefined {
    const child = this.#find(address);
    return child?.actor;
  }

  /** Stops every child in reverse start order. Idempotent: every call returns the same promise. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stopChildren();
    return this.#stopped;
  }

  async #stopChildren(): Promise<void> {
    this.#status = ActorStatus.stopping;
    for (const child of [...this.#children.values()].reverse()) {
      await this.#halt(child);
      child.unregister();
    }
    this.#children.clear();
    this.#status = ActorStatus.stopped;
  }

  /** Read-only snapshot of this subtree. */
  snapshot(): TreeNode {
    return {
      address: this.address,
      kind: 'supervisor',
      status: this.#status,
      restarts: this.#history.length,
      strategy: this.#strategy,
      children: [...this.#children.values()].map((child) => this.#describe(child)),
    };
  }

  children(): TreeNode[] {
    return this.snapshot().children ?? [];
  }

  #describe(child: Child<M>): TreeNode {
    if (child.actor instanceof Supervisor) {
      const node = child.actor.snapshot();
      node.restarts = child.restarts;
      return node;
    }
    const node: TreeNode = {
      address: child.spec.address,
      kind: child.spec.kind ?? 'actor',
      status: child.status,
      restarts: child.restarts,
      mailbox: child.mailbox.size,
    };
    const info = child.actor?.describe?.();
    if (info) node.info = info;
    const kids = child.actor?.children?.();
    if (kids && kids.length > 0) node.children = kids;
    return node;
  }

  #find(address: ActorAddress): Child<M> | undefined {
    const direct = this.#children.get(address);
    if (direct) return direct;
    for (const child of this.#children.values()) {
      if (child.actor instanceof Supervisor) {
        const found = child.actor.#find(address);
        if (found) return found;
      }
    }
    return undefined;
  }

  async #bring(child: Child<M>): Promise<void> {
    const context: ActorContext<M> = {
      self: child.spec.address,
      bus: this.#bus,
      clock: this.#clock,
      restarts: child.restarts,
      tell: (to, msg) => this.#bus.tell(child.spec.address, to, msg),
      publish: (msg) => this.#bus.publish(child.spec.address, msg),
      fail: (error) => this.#onCrash(child, actor, error),
    };
    const actor = child.spec.create(context);
    child.actor = actor;
    child.status = ActorStatus.running;
    await actor.start?.();
    child.mailbox.start({
      receive: (msg, from) => actor.receive(msg, from),
      crash: (error) => this.#onCrash(child, actor, error),
    });
  }

  async #halt(child: Child<M>): Promise<void> {
    child.mailbox.pause();
    const actor = child.actor;
    if (!actor || child.status === ActorStatus.stopped) return;
    child.status = ActorStatus.stopping;
    // Cleared first, so that a concurrent halt (a restart racing a stop) does not stop the same instance twice.
    child.actor = undefined;
    try {
      await actor.stop?.();
    } catch (error) {
      this.#options.onCrash?.(child.spec.address, error);
    }
    child.status = ActorStatus.stopped;
  }

  #onCrash(child: Child<M>, actor: Actor<M>, error: unknown): void {
    // A crash report from an instance that was already replaced, or that already crashed or is being stopped, is stale.
    if (child.actor !== actor || child.status !== ActorStatus.running || this.#status !== ActorStatus.running) return;
    child.mailbox.pause();
    // Not `stopped`: the crashed instance still gets stop() (its timers and subscriptions) before a replacement starts.
    child.status = ActorStatus.stopping;
    this.#options.onCrash?.(child.spec.address, error);
    this.#emit('crashed', child.spec.address, error);
    const restart = child.spec.restart ?? 'permanent';
    if (restart === 'temporary') {
      void this.stopChild(child.spec.address);
      return;
    }
    if (decideRestart(this.#history, this.#clock.now(), this.#intensity) === 'escalate') {
      this.#escalate(child.spec.address, error);
      return;
    }
    this.#restarting = this.#restarting.then(() => this.#restartAfterCrash(child)).catch((e) => this.#escalate(child.spec.address, e));
  }

  async #restartAfterCrash(child: Child<M>): Promise<void> {
    if (this.#status !== ActorStatus.running) return;
    const victims = this.#strategy === 'one-for-all' ? [...this.#children.values()] : [child];
    for (const victim of [...victims].reverse()) await this.#halt(victim);
    for (const victim of victims) {
      victim.restarts++;
      await this.#bring(victim);
      this.#emit('restarted', victim.spec.address, victim.restarts);
    }
  }

  #escalate(address: ActorAddress, cause: unknown): void {
    const error = new TroupeError(
      ErrorCodes.ESCALATED,
      `\`${address}\` crashed more than ${this.#intensity.maxRestarts} times in ${this.#intensity.withinMs} ms; \`${this.address}\` gives up`,
      { cause },
    );
    this.#emit('escalated', address, error);
    void this.stop().finally(() => {
      if (this.#parentFail) this.#parentFail(error);
      else this.#options.onEscalate?.(error);
    });
  }

  #emit<K extends keyof SupervisorEvents>(event: K, ...args: Parameters<SupervisorEvents[K]>): void {
    for (const listener of this.#listeners) {
      try {
        (listener[event] as ((...a: Parameters<SupervisorEvents[K]>) => void) | undefined)?.(...args);
      } catch {
        // Listeners cannot break supervision.
      }
    }
  }
}
