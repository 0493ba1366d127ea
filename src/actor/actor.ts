/**
 * The actor contract. An actor has an address, receives one message at a time from its mailbox, and is owned by
 * a supervisor that restarts it when it crashes. Its lifecycle is a single status value.
 */
import type { Bus } from '../bus/bus.ts';
import type { Message } from '../bus/message.ts';
import type { Clock } from '../clock.ts';
import type { ActorAddress } from '../ids.ts';

export const ActorStatus = {
  idle: 'idle',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
} as const;
export type ActorStatus = (typeof ActorStatus)[keyof typeof ActorStatus];

/** What an actor gets from its supervisor. */
export interface ActorContext<M extends Message> {
  readonly self: ActorAddress;
  readonly bus: Bus<M>;
  readonly clock: Clock;
  /**
   * How many times the supervisor restarted this actor before this start (0 at the first). Why: a restarted actor
   * starts with none of its predecessor's state, and some must ask for what it left (the tracker, which tasks the
   * process still holds).
   */
  readonly restarts: number;
  /** Sends a message to another actor. */
  tell(to: ActorAddress, msg: M): void;
  /** Publishes a fact to subscribers. */
  publish(msg: M): void;
  /** Reports a crash that happened outside `receive` (in async work the actor started). */
  fail(error: unknown): void;
}

export interface Actor<M extends Message> {
  /** Handles one message. A throw (or a rejected promise) is a crash the supervisor handles. */
  receive(msg: M, from: ActorAddress): void | Promise<void>;
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
  /** Extra facts for the supervision tree (counts, limits). */
  describe?(): Record<string, unknown>;
  /** Children this actor owns outside the supervisor (the executor's task actors). */
  children?(): TreeNode[];
}

export type RestartType = 'permanent' | 'transient' | 'temporary';

/** How a supervisor starts (and restarts) one child. */
export interface ChildSpec<M extends Message> {
  address: ActorAddress;
  create(context: ActorContext<M>): Actor<M>;
  /** permanent: always restarted; transient: restarted after a crash only; temporary: never. @default 'permanent' */
  restart?: RestartType;
  kind?: 'actor' | 'supervisor';
}

/** A read-only node of the supervision tree, for the REPL `tree` and `GET /api/actors`. */
export interface TreeNode {
  address: ActorAddress;
  kind: 'supervisor' | 'actor' | 'task';
  status: ActorStatus | string;
  restarts: number;
  strategy?: string;
  mailbox?: number;
  info?: Record<string, unknown>;
  children?: TreeNode[];
}
