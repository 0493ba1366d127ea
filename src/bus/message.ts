/**
 * The shape every message on the bus has: a discriminated union keyed on `type` (dotted `noun.verb`), and the
 * records the bus wraps around it.
 */
import type { ActorAddress } from '../ids.ts';

/** Base of every message: a `type` literal and its typed payload. */
export interface Message {
  readonly type: string;
}

/** A message on its way: who sent it, to whom (`*` for a published fact), and when. */
export interface Envelope<M extends Message = Message> {
  from: ActorAddress;
  to: ActorAddress;
  msg: M;
  at: number;
}

/** What inspectors see for every message, before it is delivered. */
export interface Inspection<M extends Message = Message> extends Envelope<M> {
  type: '@troupe.message';
  /** true when no actor lives at `to` (the message is dropped and counted). */
  dead?: boolean;
}

/** Address used for published facts (task.succeeded and the like). */
export const BROADCAST: ActorAddress = '*';

/** Maps a message union to nanoevents' listener map: `{ 'task.started': (m) => void, … }`. */
export type ListenerMap<M extends Message> = { [K in M as K['type']]: (msg: K) => void };

/** Narrows a union to the member with the given `type`. */
export type MessageOf<M extends Message, T extends M['type']> = Extract<M, { type: T }>;
