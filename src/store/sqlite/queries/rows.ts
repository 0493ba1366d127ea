/**
 * Row shapes and their mapping to records. NULL columns become absent fields, so a record read back from
 * SQLite equals the one the memory store keeps.
 */
export {
  type TaskRow,
  type TransitionRow,
  type OutputRow,
  type ScheduleRow,
  taskFromRow as toTaskRecord,
  transitionFromRow as toTransition,
  outputFromRow as toOutputLine,
  scheduleFromRow as toScheduleRecord,
} from '../../task-row.ts';

/** The columns a task query selects (everything but the output bookkeeping). */
export const TASK_COLUMNS = `id, name, state, input, result, error, priority, weight, key, attempts, max_attempts, progress,
  created_at, run_at, started_at, finished_at, updated_at, owner, lease_until, schedule_id, options,
  grp, dedup_key, parent_id, flow_pending, flow_policy`;

/** Why: JSON text for a user value; `undefined` is stored as NULL. */
export function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}
