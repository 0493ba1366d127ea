/**
 * task.* facts: published on the bus when a task changes, after the change is committed to the store.
 * These are the events users subscribe to with `rt.on(type, fn)`, that SSE streams and metrics count.
 */
import type { SerializedError } from '../../src/errors.ts';
import type { TaskId } from '../../src/ids.ts';
import type { OutputLine, Progress, TaskState } from '../../src/task.ts';

interface TaskFactBase {
  id: TaskId;
  name: string;
  at: number;
}

/** Fired when a task enters the queue (enqueued, due after a delay or backoff, released, requeued). */
export interface TaskQueued extends TaskFactBase { type: 'task.queued'; runAt: number }
/** Fired when a task is enqueued with a delay and waits for its time. */
export interface TaskScheduled extends TaskFactBase { type: 'task.scheduled'; runAt: number }
/** Fired when an attempt starts on a node. */
export interface TaskStarted extends TaskFactBase { type: 'task.started'; attempt: number; owner: string }
/** Fired when running code reports progress. */
export interface TaskProgress extends TaskFactBase { type: 'task.progress'; progress: Progress }
/** Fired for each captured output line, live. */
export interface TaskOutput extends TaskFactBase { type: 'task.output'; line: OutputLine }
/** Fired when an attempt failed and another will run at `runAt`. */
export interface TaskRetrying extends TaskFactBase { type: 'task.retrying'; attempt: number; runAt: number; error: SerializedError }
/** Fired when a task ends with a result. */
export interface TaskSucceeded extends TaskFactBase { type: 'task.succeeded'; attempt: number; result: unknown; durationMs: number }
/** Fired when a task ends failed (no attempts left, or a permanent error): a dead letter. */
export interface TaskFailed extends TaskFactBase { type: 'task.failed'; attempt: number; error: SerializedError }
/**
 * Fired when a task is cancelled (queued or running), as soon as the store has it cancelled. A running task's
 * process or handler is being stopped then: `owner` names the node it was running on, which publishes
 * `task.stopped` once it has.
 */
export interface TaskCancelled extends TaskFactBase { type: 'task.cancelled'; previous: TaskState; reason?: string; owner?: string }
/**
 * Fired by the node that was running a cancelled task once its work has ended (the process exited, the handler
 * settled, or it had not started yet) and every output line it captured is stored.
 */
export interface TaskStopped extends TaskFactBase { type: 'task.stopped' }
/** Fired when the last attempt ran past its timeout. */
export interface TaskTimedOut extends TaskFactBase { type: 'task.timed_out'; attempt: number; error: SerializedError }

export type TaskFact =
  | TaskQueued
  | TaskScheduled
  | TaskStarted
  | TaskProgress
  | TaskOutput
  | TaskRetrying
  | TaskSucceeded
  | TaskFailed
  | TaskCancelled
  | TaskStopped
  | TaskTimedOut;

export type TaskFactType = TaskFact['type'];

export const TASK_FACT_TYPES: readonly TaskFactType[] = Object.freeze([
  'task.queued', 'task.scheduled', 'task.started', 'task.progress', 'task.output', 'task.retrying',
  'task.succeeded', 'task.failed', 'task.cancelled', 'task.stopped', 'task.timed_out',
]);

/** Facts that end a task: a waiter on the task's outcome resolves on one of these. */
export type TaskOutcome = TaskSucceeded | TaskFailed | TaskCancelled | TaskTimedOut;

export function isOutcome(fact: TaskFact): fact is TaskOutcome {
  return fact.type === 'task.succeeded' || fact.type === 'task.failed' || fact.type === 'task.cancelled' || fact.type === 'task.timed_out';
}

export const createTaskQueued = (id: TaskId, name: string, at: number, runAt: number): TaskQueued => ({ type: 'task.queued', id, name, at, runAt });
export const createTaskScheduled = (id: TaskId, name: string, at: number, runAt: number): TaskScheduled => ({ type: 'task.scheduled', id, name, at, runAt });
export const createTaskStarted = (id: TaskId, name: string, at: number, attempt: number, owner: string): TaskStarted => ({ type: 'task.started', id, name, at, attempt, owner });
export const createTaskProgress = (id: TaskId, name: string, at: number, progress: Progress): TaskProgress => ({ type: 'task.progress', id, name, at, progress });
export const createTaskOutput = (id: TaskId, name: string, line: OutputLine): TaskOutput => ({ type: 'task.output', id, name, at: line.at, line });
