/** executor.* messages: running claimed tasks within the capacity limits. */
import type { ActorAddress, TaskId } from '../../src/ids.ts';
import type { TaskRecord } from '../../src/task.ts';

/**
 * Claimed tasks to start now, or to hold in the buffer until a slot frees (the answer to a `scheduler.demand`).
 * `offered`: claimed by an enqueue with the scheduler's standing offer; the outstanding demand then stands, less
 * these tasks, where the rule of `demandAfterOffer` keeps it (the scheduler applies the same rule).
 * `startAt`: claimed ahead of a schedule slot; each task takes its slot at once and its code starts when the clock
 * reads `startAt` (the scheduler's precise timer), not before.
 */
export interface ExecutorDispatch { type: 'executor.dispatch'; tasks: TaskRecord[]; offered?: boolean; startAt?: number }
/** Ends a running task: `cancel` by a user, `shutdown` at close (the task is given back, not failed). */
export interface ExecutorAbort { type: 'executor.abort'; id: TaskId; reason: 'cancel' | 'shutdown' }
/** Stops asking for work; answered when nothing runs any more. */
export interface ExecutorDrain { type: 'executor.drain'; replyTo: ActorAddress }
/** Ends every running task with `shutdown` (after a drain deadline). */
export interface ExecutorAbortAll { type: 'executor.abort-all'; reason: 'shutdown' }
/** Re-checks capacity (a limit changed, a name was resumed). */
export interface ExecutorPoke { type: 'executor.poke' }
/**
 * The names and groups whose claiming is paused (whole sets, sent by the scheduler when they change): claimed
 * tasks of theirs waiting in the executor's buffer are given back to the queue instead of starting.
 */
export interface ExecutorPaused { type: 'executor.paused'; names: string[]; groups: string[] }

/**
 * Asks which claimed tasks this node holds: running, holding a slot until their schedule slot, buffered, or being
 * checked after a cancel came before them. Answered with `tracker.leases` (sent by the tracker at each heartbeat
 * and before each recovery sweep, while any run or wait here).
 */
export interface ExecutorLeases { type: 'executor.leases' }

export type ExecutorMessage = ExecutorDispatch | ExecutorAbort | ExecutorDrain | ExecutorAbortAll | ExecutorPoke | ExecutorPaused | ExecutorLeases;

export const createExecutorDispatch = (tasks: TaskRecord[], offered = false, startAt?: number): ExecutorDispatch => {
  const m: ExecutorDispatch = offered ? { type: 'executor.dispatch', tasks, offered } : { type: 'executor.dispatch', tasks };
  if (startAt !== undefined) m.startAt = startAt;
  return m;
};
export const createExecutorAbort = (id: TaskId, reason: 'cancel' | 'shutdown'): ExecutorAbort => ({ type: 'executor.abort', id, reason });
export const createExecutorLeases = (): ExecutorLeases => ({ type: 'executor.leases' });
export const createExecutorPaused = (names: string[], groups: string[]): ExecutorPaused => ({ type: 'executor.paused', names, groups });
