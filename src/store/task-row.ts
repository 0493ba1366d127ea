/**
 * The row shapes the SQL stores share, and their one mapping to records. JSON columns arrive as text; NULL
 * columns become absent fields, so a record read back from SQLite or PostgreSQL equals the one the memory store
 * keeps. (SQLite stores `paused` as 0/1, PostgreSQL as a boolean: both map to a boolean.)
 */
import type { SerializedError } from '../errors.ts';
import type { FlowPolicy, OutputLine, OutputStream, Progress, TaskRecord, TaskRunOptions, TaskState, Transition } from '../task.ts';
import type { ScheduleRecord } from './store.ts';

export interface TaskRow {
  id: string;
  name: string;
  state: string;
  input: string | null;
  result: string | null;
  error: string | null;
  priority: number;
  weight: number;
  key: string | null;
  attempts: number;
  max_attempts: number;
  progress: string | null;
  created_at: number;
  run_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  owner: string | null;
  lease_until: number | null;
  schedule_id: string | null;
  options: string | null;
  grp: string | null;
  dedup_key: string | null;
  parent_id: string | null;
  flow_pending: number | null;
  flow_policy: string | null;
}

export interface TransitionRow {
  task_id: string;
  from_state: string | null;
  to_state: string;
  at: number;
  attempt: number;
  reason: string | null;
  error: string | null;
}

export interface OutputRow {
  seq: number;
  stream: string;
  text: string;
  at: number;
}

export interface ScheduleRow {
  id: string;
  task: string;
  cron: string | null;
  every_ms: number | null;
  timezone: string | null;
  input: string | null;
  overlap: string;
  paused: number | boolean;
  last_slot: number | null;
  created_at: number;
}

function fromJson<T>(text: string | null): T | undefined {
  return text === null ? undefined : (JSON.parse(text) as T);
}

/** Why: the one mapping from a tasks row to a TaskRecord, for every SQL store. */
export function taskFromRow(row: TaskRow): TaskRecord {
  return build(row, row.state as TaskState, row.updated_at, row.progress, row.started_at, row.owner, row.lease_until);
}

/** The columns a start sets to values its caller already has (the PostgreSQL claim does not send them back). */
export type StartedRow = Omit<TaskRow, 'state' | 'progress' | 'started_at' | 'updated_at' | 'owner' | 'lease_until'>;

/** What a start in the insert knows of a new task (a `NewTask`, or a store's row made from one). */
export interface NewTaskFields {
  id: string;
  name: string;
  priority: number;
  weight: number;
  key?: string | undefined;
  maxAttempts: number;
  createdAt: number;
  runAt: number;
  scheduleId?: string | undefined;
  group?: string | undefined;
  parentId?: string | undefined;
}

/**
 * Why: the row of a task its own insert started (start-plan.ts), from the task as sent and its JSON columns as the
 * store holds them; a plain task (no dedup, no flow), first attempt.
 */
export function startedRowOfNew(t: NewTaskFields, input: string | null, options: string | null): StartedRow {
  return {
    id: t.id, name: t.name, input, result: null, error: null, priority: t.priority, weight: t.weight, key: t.key ?? null,
    attempts: 1, max_attempts: t.maxAttempts, created_at: t.createdAt, run_at: t.runAt, finished_at: null,
    schedule_id: t.scheduleId ?? null, options, grp: t.group ?? null, dedup_key: null, parent_id: t.parentId ?? null,
    flow_pending: null, flow_policy: null,
  };
}

/** A task a start returned: `running` since `now`, leased to `owner` until `leaseUntil`, no progress yet. */
export function startedTaskFromRow(row: StartedRow, now: number, owner: string, leaseUntil: number): TaskRecord {
  return build(row, 'running', now, null, now, owner, leaseUntil);
}

function build(
  row: StartedRow,
  state: TaskState,
  updatedAt: number,
  progress: string | null,
  startedAt: number | null,
  owner: string | null,
  leaseUntil: number | null,
): TaskRecord {
  const rec: TaskRecord = {
    id: row.id,
    name: row.name,
    state,
    input: fromJson(row.input),
    priority: row.priority,
    weight: row.weight,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    createdAt: row.created_at,
    runAt: row.run_at,
    updatedAt,
  };
  if (row.result !== null) rec.result = fromJson(row.result);
  if (row.error !== null) rec.error = fromJson<SerializedError>(row.error)!;
  if (row.key !== null) rec.key = row.key;
  if (progress !== null) rec.progress = fromJson<Progress>(progress)!;
  if (startedAt !== null) rec.startedAt = startedAt;
  if (row.finished_at !== null) rec.finishedAt = row.finished_at;
  if (owner !== null) rec.owner = owner;
  if (leaseUntil !== null) rec.leaseUntil = leaseUntil;
  if (row.schedule_id !== null) rec.scheduleId = row.schedule_id;
  if (row.options !== null) rec.options = fromJson<TaskRunOptions>(row.options)!;
  if (row.grp !== null) rec.group = row.grp;
  if (row.dedup_key !== null) rec.dedupKey = row.dedup_key;
  if (row.parent_id !== null) rec.parentId = row.parent_id;
  if (row.flow_pending !== null) rec.flow = { pending: row.flow_pending, policy: row.flow_policy as FlowPolicy };
  return rec;
}

/** Why: history entries read back exactly as they were written. */
export function transitionFromRow(row: TransitionRow): Transition {
  const t: Transition = {
    taskId: row.task_id,
    from: row.from_state as TaskState | null,
    to: row.to_state as TaskState,
    at: row.at,
    attempt: row.attempt,
  };
  if (row.reason !== null) t.reason = row.reason;
  if (row.error !== null) t.error = fromJson<SerializedError>(row.error)!;
  return t;
}

/** Why: captured lines read back in the shape the capture wrote them. */
export function outputFromRow(row: OutputRow): OutputLine {
  return { seq: row.seq, stream: row.stream as OutputStream, text: row.text, at: row.at };
}

/** Why: stored schedules read back with only the fields they were saved with. */
export function scheduleFromRow(row: ScheduleRow): ScheduleRecord {
  const s: ScheduleRecord = {
    id: row.id,
    task: row.task,
    input: fromJson(row.input),
    overlap: row.overlap as ScheduleRecord['overlap'],
    paused: row.paused === true || row.paused === 1,
    createdAt: row.created_at,
  };
  if (row.cron !== null) s.cron = row.cron;
  if (row.every_ms !== null) s.everyMs = row.every_ms;
  if (row.timezone !== null) s.timezone = row.timezone;
  if (row.last_slot !== null) s.lastSlot = row.last_slot;
  return s;
}
