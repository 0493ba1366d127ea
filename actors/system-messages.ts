/** actor.* and runtime.* facts: the supervision tree and the runtime's own life. */
import type { SerializedError } from '../src/errors.ts';
import type { ActorAddress } from '../src/ids.ts';

/** Fired when an actor crashed (before its supervisor decides). */
export interface ActorCrashed { type: 'actor.crashed'; address: ActorAddress; error: SerializedError; at: number }
/** Fired when a supervisor restarted an actor. */
export interface ActorRestarted { type: 'actor.restarted'; address: ActorAddress; restarts: number; at: number }
/** Fired when a supervisor gave up on an actor and escalated. */
export interface ActorEscalated { type: 'actor.escalated'; address: ActorAddress; error: SerializedError; at: number }
/** Fired when the runtime's status changes. */
export interface RuntimeStatusChanged { type: 'runtime.status'; status: 'running' | 'stopping' | 'stopped' | 'failed'; at: number }
/** Fired when intake is paused or resumed (by an operator or by resource-aware admission). */
export interface RuntimeIntake { type: 'runtime.intake'; paused: boolean; reason: string; at: number }

export type SystemFact = ActorCrashed | ActorRestarted | ActorEscalated | RuntimeStatusChanged | RuntimeIntake;
