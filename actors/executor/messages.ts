/** executor.* messages: running claimed tasks within the capacity limits. */
import type { ActorAddress, TaskId } from '../../src/ids.ts';
import type { TaskRecord } from '../../src/task.ts';

/** Claimed tasks to start now (the answer to a `scheduler.demand`; may be empty). */
export interface ExecutorDispatch { type: 'executor.dispatch'; tasks: TaskRecord[] }
/** Ends a running task: `cancel` by a user, `shutdown` at close (the task is given back, not failed). */
export interface ExecutorAbort { type: 'executor.abort'; id: TaskId; reason: 'cancel' | 'shutdown' }
/** Stops asking for work; answered when nothing runs any more. */
export interface ExecutorDrain { type: 'executor.drain'; replyTo: ActorAddress }
/** Ends every running task with `shutdown` (after a drain deadline). */
export interface ExecutorAbortAll { type: 'executor.abort-all'; reason: 'shutdown' }
/** Re-checks capacity (a limit changed, a name was resumed). */
export interface ExecutorPoke { type: 'executor.poke' }

export type ExecutorMessage = ExecutorDispatch | ExecutorAbort | ExecutorDrain | ExecutorAbortAll | ExecutorPoke;

export const createExecutorDispatch = (tasks: TaskRecord[]): ExecutorDispatch => ({ type: 'executor.dispatch', tasks });
export const createExecutorAbort = (id: TaskId, reason: 'cancel' | 'shutdown'): ExecutorAbort => ({ type: 'executor.abort', id, reason });
