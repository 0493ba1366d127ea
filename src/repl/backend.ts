/**
 * What the REPL and the CLI need from a runtime, as one small interface with two implementations: over HTTP
 * (attached to a running `troupe serve`) and in-process (an embedded `Runtime` started from a config). Commands
 * are written once against this interface, so the console behaves the same in both modes.
 */
import type { TaskAdvice } from '../advice/recommend.ts';
import type { TreeNode } from '../actor/actor.ts';
import type { SerializedError } from '../errors.ts';
import type { TaskView } from '../runtime.ts';
import type { ScheduleRecord } from '../store/store.ts';
import type { OutputLine, Progress } from '../task.ts';
import type { FollowEnd, ListQuery, SubmitOptions } from './client.ts';

export type { FollowEnd, ListQuery, SubmitOptions } from './client.ts';

/** A registered task name as listings show it. */
export interface TaskTypeInfo {
  name: string;
  kind?: string;
  builtin?: boolean;
  description?: string;
}

/** Health as `GET /api/health?full=1` answers it: at least a status, the full report when available. */
export interface HealthInfo {
  status: string;
  [key: string]: unknown;
}

/** A change of a followed task's state other than its end: a new attempt, or a failed one waiting to retry. */
export interface FollowState {
  state: string;
  attempts?: number;
  /** When a retrying task runs again. */
  runAt?: number;
  error?: SerializedError;
}

export interface FollowOptions {
  /** Stops the follow (not the task): the follow resolves `undefined`. */
  signal?: AbortSignal;
  onLine?: (line: OutputLine) => void;
  onProgress?: (progress: Progress) => void;
  onState?: (state: FollowState) => void;
}

export const MAINTENANCE_TASKS = ['cleanup-runs', 'cleanup-temp-files', 'health-check', 'log-statistics'] as const;
export type MaintenanceName = (typeof MAINTENANCE_TASKS)[number];

export interface Backend {
  /** Where commands go: a URL, or `embedded (<config file>)`. */
  readonly target: string;
  enqueue(name: string, input?: unknown, options?: SubmitOptions): Promise<string>;
  /** The task with its history; NOT_FOUND if there is none. */
  get(id: string): Promise<TaskView>;
  list(query?: ListQuery): Promise<{ tasks: TaskView[]; nextCursor?: string }>;
  cancel(id: string): Promise<boolean>;
  retry(id: string): Promise<void>;
  output(id: string): Promise<OutputLine[]>;
  /** Captured lines first, then live ones, until the task ends (its end) or the signal stops the follow (undefined). */
  follow(id: string, options?: FollowOptions): Promise<FollowEnd | undefined>;
  taskTypes(): Promise<TaskTypeInfo[]>;
  schedules(): Promise<ScheduleRecord[]>;
  /** Pauses, resumes or fires a schedule; `trigger` resolves with the new task's id. */
  schedule(id: string, action: 'pause' | 'resume' | 'trigger'): Promise<string | undefined>;
  /** Pauses or resumes claiming of one task name. */
  queue(name: string, action: 'pause' | 'resume'): Promise<void>;
  /** Enqueues a built-in maintenance task; resolves with its id. */
  maintenance(name: string, input?: unknown): Promise<string>;
  health(): Promise<HealthInfo>;
  /** Recommendations for a registered task from its measured history. */
  advise(name: string): Promise<TaskAdvice>;
  tree(): Promise<TreeNode>;
  restart(address: string): Promise<void>;
  close(): Promise<void>;
}

/** Why: `GET /api/task-types` and `rt.tasks()` may answer a list or an object keyed by name; callers get one shape. */
export function normalizeTaskTypes(raw: unknown): TaskTypeInfo[] {
  const list = Array.isArray(raw)
    ? raw
    : raw && typeof raw === 'object'
      ? (((raw as Record<string, unknown>).taskTypes ?? (raw as Record<string, unknown>).tasks ?? (raw as Record<string, unknown>).types) as unknown)
      : undefined;
  if (Array.isArray(list)) {
    return list
      .map((t) => (typeof t === 'string' ? { name: t } : (t as TaskTypeInfo)))
      .filter((t): t is TaskTypeInfo => typeof t?.name === 'string');
  }
  if (raw && typeof raw === 'object') {
    return Object.entries(raw as Record<string, unknown>).map(([name, v]) => ({ name, ...(v && typeof v === 'object' ? (v as object) : {}) }));
  }
  return [];
}
