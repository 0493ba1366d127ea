/**
 * Rows to records. jsonb columns are selected as text (see `TASK_COLUMNS`) so that a JSON `null` result stays
 * `null` while a missing one stays absent; BIGINT columns arrive as numbers (the pool's int8 parser). Absent
 * optional fields are left out of the record rather than set to `undefined`.
 */
import type { SerializedError } from '../../errors.ts';
import type { ScheduleRecord } from '../store.ts';
import type { FlowPolicy, OutputLine, OutputStream, Progress, TaskRecord, TaskRunOptions, TaskState, Transition } from '../../task.ts';
import { fromJson } from './sql.ts';

/** The task columns every query returns, with `t.` as the table alias. */
export const TASK_COLUMNS = [
  't.id', 't.name', 't.state', 't.input::text AS input', 't.result::text AS result', 't.error::text AS error',
  't.priority', 't.weight', 't.key', 't.attempts', 't.max_attempts', 't.progress::text AS progress', 't.created_at',
  't.run_at', 't.started_at', 't.finished_at', 't.updated_at', 't.owner', 't.lease_until', 't.schedule_id',
  't.options::text AS options', 't.grp', 't.dedup_key', 't.parent_id', 't.flow_pending', 't.flow_policy',
].join(', ');

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

/** Why: one mapping from a row to the record users read, shared by every query that returns tasks. */
export function rowToTask(row: TaskRow): TaskRecord {
  const task: TaskRecord = {
    id: row.id,
    name: row.name,
    state: row.state as TaskState,
    input: fromJson(row.input),
    priority: row.priority,
    weight: row.weight,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    createdAt: row.created_at,
    runAt: row.run_at,
    updatedAt: row.updated_at,
  };
  if (row.result !== null) task.result = fromJson(row.result);
  if (row.error !== null) task.error = fromJson(row.error) as SerializedError;
  if (row.key !== null) task.key = row.key;
  if (row.progress !== null) task.progress = fromJson(row.progress) as Progress;
  if (row.started_at !== null) task.startedAt = row.started_at;
  if (row.finished_at !== null) task.finishedAt = row.finished_at;
  if (row.owner !== null) task.owner = row.owner;
  if (row.lease_until !== null) task.leaseUntil = row.lease_until;
  if (row.schedule_id !== null) task.scheduleId = row.schedule_id;
  if (row.options !== null) task.options = fromJson(row.options) as TaskRunOptions;
  if (row.grp !== null) task.group = row.grp;
  if (row.dedup_key !== null) task.dedupKey = row.dedup_key;
  if (row.parent_id !== null) task.parentId = row.parent_id;
  if (row.flow_pending !== null) task.flow = { pending: row.flow_pending, policy: row.flow_policy as FlowPolicy };
  return task;
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

export const TRANSITION_COLUMNS = 'task_id, from_state, to_state, at, attempt, reason, error::text AS error';

/** Why: history entries read back exactly as they were written. */
export function rowToTransition(row: TransitionRow): Transition {
  const t: Transition = {
    taskId: row.task_id,
    from: row.from_state as TaskState | null,
    to: row.to_state as TaskState,
    at: row.at,
    attempt: row.attempt,
  };
  if (row.reason !== null) t.reason = row.reason;
  if (row.error !== null) t.error = fromJson(row.error) as SerializedError;
  return t;
}

export interface OutputRow {
  seq: number;
  stream: string;
  text: string;
  at: number;
}

/** Why: captured lines read back in the shape the capture wrote them. */
export function rowToOutput(row: OutputRow): OutputLine {
  return { seq: row.seq, stream: row.stream as OutputStream, text: row.text, at: row.at };
}

export interface ScheduleRow {
  id: string;
  task: string;
  cron: string | null;
  every_ms: number | null;
  timezone: string | null;
  input: string | null;
  overlap: string;
  paused: boolean;
  last_slot: number | null;
  created_at: number;
}

export const SCHEDULE_COLUMNS = 'id, task, cron, every_ms, timezone, input::text AS input, overlap, paused, last_slot, created_at';

/** Why: stored schedules read back with only the fields they were saved with. */
export function rowToSchedule(row: ScheduleRow): ScheduleRecord {
  const s: ScheduleRecord = {
    id: row.id,
    task: row.task,
    input: fromJson(row.input),
    overlap: row.overlap as ScheduleRecord['overlap'],
    paused: row.paused,
    createdAt: row.created_at,
  };
  if (row.cron !== null) s.cron = row.cron;
  if (row.every_ms !== null) s.everyMs = row.every_ms;
  if (row.timezone !== null) s.timezone = row.timezone;
  if (row.last_slot !== null) s.lastSlot = row.last_slot;
  return s;
}
