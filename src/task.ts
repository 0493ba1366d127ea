/**
 * Task records as the store keeps them and as users read them. Times are epoch milliseconds everywhere
 * (never text), so due-time comparisons and ordering cannot go wrong.
 */
import type { SerializedError } from './errors.ts';
import type { TaskId } from './ids.ts';

export const TaskStates = {
  scheduled: 'scheduled',
  queued: 'queued',
  running: 'running',
  retrying: 'retrying',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  timed_out: 'timed_out',
} as const;

/** Where a task is in its life. `scheduled` waits for its time, `retrying` waits for its backoff. */
export type TaskState = (typeof TaskStates)[keyof typeof TaskStates];

export const TASK_STATES: readonly TaskState[] = Object.freeze(Object.values(TaskStates));
export const FINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['succeeded', 'failed', 'cancelled', 'timed_out']);
/** States a claim may take a task from (once its `runAt` has come). */
export const CLAIMABLE_STATES: readonly TaskState[] = Object.freeze(['queued', 'scheduled', 'retrying']);
/** The dead letters: final states that `retry()` may put back. */
export const DEAD_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['failed', 'timed_out', 'cancelled']);

/** A switch on the interned state string: a few pointer compares, where a Set lookup hashes (hot in every store). */
export function isFinalState(state: TaskState): boolean {
  switch (state) {
    case 'succeeded':
    case 'failed':
    case 'cancelled':
    case 'timed_out':
      return true;
    default:
      return false;
  }
}

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === 'string' && (TASK_STATES as readonly string[]).includes(value);
}

/** A run's progress: a fraction in [0, 1], and the counts when the task gave them. */
export interface Progress {
  fraction: number;
  done?: number;
  total?: number;
}

export type BackoffKind = 'fixed' | 'exponential';

/** How a failed attempt is retried. Resolved: every field present. */
export interface RetryPolicy {
  /** Total attempts, the first included (1 = never retry). */
  attempts: number;
  backoff: BackoffKind;
  /** Delay before the first retry (ms). */
  delayMs: number;
  /** Upper bound of any delay (ms). */
  maxDelayMs: number;
  /** Random spread of each delay, as a fraction (0.2 = ±20 %). */
  jitter: number;
}

/** Per-task overrides given at enqueue time, stored with the task. */
export interface TaskRunOptions {
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** W3C trace context active at enqueue (`traceparent`, `tracestate`), when OpenTelemetry is in use. */
  trace?: Record<string, string>;
}

/** A task as stored. `input`/`result` are the user's JSON values. */
export interface TaskRecord {
  id: TaskId;
  name: string;
  state: TaskState;
  input: unknown;
  result?: unknown;
  error?: SerializedError;
  /** Higher runs first under the `priority` strategy. */
  priority: number;
  /** Chance of being picked under `weighted-random` is proportional to this (> 0). */
  weight: number;
  /** Idempotency key: a second enqueue with the same key returns this task. */
  key?: string;
  /** Attempts started so far (a claim counts one). */
  attempts: number;
  maxAttempts: number;
  progress?: Progress;
  createdAt: number;
  /** When the task may run (first run, or after its backoff). */
  runAt: number;
  /** Start of the latest attempt. */
  startedAt?: number;
  finishedAt?: number;
  updatedAt: number;
  /** Node holding the lease while running. */
  owner?: string;
  leaseUntil?: number;
  /** The schedule that produced the task, if any. */
  scheduleId?: string;
  options?: TaskRunOptions;
  /** Group key (a tenant, a customer): per-group concurrency, rate limits and pausing apply to it. */
  group?: string;
  /** Dedup key (debounce / throttle), scoped to the task name. */
  dedupKey?: string;
  /** The flow parent this task is a child of. */
  parentId?: TaskId;
  /** Set on a flow parent: children not yet final, and what a failed child does to the parent. */
  flow?: FlowState;
  /** Only on records returned by a claim of a flow parent: its children's outcomes (see `FlowPolicy`). */
  children?: FlowChild[];
}

/** What a child that ends failed, timed out or cancelled does to its flow parent. */
export type FlowPolicy = 'fail' | 'continue' | 'ignore';
export const FLOW_POLICIES: readonly FlowPolicy[] = Object.freeze(['fail', 'continue', 'ignore']);

export interface FlowState {
  /** Children not final yet; the parent becomes due when this reaches 0. */
  pending: number;
  policy: FlowPolicy;
}

/** One child of a flow as its parent sees it (`ctx.children`). */
export interface FlowChild {
  id: TaskId;
  name: string;
  state: TaskState;
  result?: unknown;
  error?: SerializedError;
}

/**
 * The `runAt` of a flow parent waiting for its children: it is `scheduled` and never due by time; the store makes
 * it due when its last child ends. (The largest time a Date can hold.)
 */
export const FLOW_WAITING_RUN_AT = 8_640_000_000_000_000;

export type DedupMode = 'throttle' | 'debounce';

/** Dedup of an enqueue against earlier tasks of the same name and key (see src/dedup.ts). */
export interface DedupSpec {
  key: string;
  mode: DedupMode;
  windowMs: number;
}

/** What `enqueue` writes. The caller fills every field; the store adds state, attempts and times. */
export interface NewTask {
  id: TaskId;
  name: string;
  input: unknown;
  priority: number;
  weight: number;
  key?: string;
  maxAttempts: number;
  createdAt: number;
  runAt: number;
  scheduleId?: string;
  options?: TaskRunOptions;
  group?: string;
  dedup?: DedupSpec;
  /** A child of this flow parent. The parent must be enqueued before (or in an earlier position of the same batch). */
  parentId?: TaskId;
  /** A flow parent, `pending` = its number of children: the store keeps it `scheduled` at `FLOW_WAITING_RUN_AT` until they end. */
  flow?: FlowState;
}

/** One entry of a task's history: every state change is one. */
export interface Transition {
  taskId: TaskId;
  from: TaskState | null;
  to: TaskState;
  at: number;
  attempt: number;
  /** Why, in a few words (`lease expired`, `cancelled by user`, `retry in 2000 ms`…). */
  reason?: string;
  error?: SerializedError;
}

export type OutputStream = 'stdout' | 'stderr' | 'log' | 'marker';

/** One captured line. `marker` lines say that older output was dropped. */
export interface OutputLine {
  seq: number;
  stream: OutputStream;
  text: string;
  at: number;
}

/** Timings derived from a record, as the API shows them. */
export interface Timings {
  createdAt: number;
  runAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** From due to start of the latest attempt. */
  waitMs?: number;
  /** From start to finish of the latest attempt. */
  runMs?: number;
}

export function timingsOf(task: TaskRecord): Timings {
  const t: Timings = { createdAt: task.createdAt, runAt: task.runAt };
  if (task.startedAt !== undefined) {
    t.startedAt = task.startedAt;
    t.waitMs = Math.max(0, task.startedAt - Math.min(task.runAt, task.startedAt));
  }
  if (task.finishedAt !== undefined) {
    t.finishedAt = task.finishedAt;
    if (task.startedAt !== undefined) t.runMs = Math.max(0, task.finishedAt - task.startedAt);
  }
  return t;
}
