/**
 * Rows to records. jsonb columns are selected as text (see `TASK_COLUMNS`) so that a JSON `null` result stays
 * `null` while a missing one stays absent; BIGINT columns arrive as numbers (the pool's int8 parser). Absent
 * optional fields are left out of the record rather than set to `undefined`.
 */
export {
  type TaskRow,
  type OutputRow,
  type ScheduleRow,
  taskFromRow as rowToTask,
  outputFromRow as rowToOutput,
  scheduleFromRow as rowToSchedule,
} from '../task-row.ts';

/** The task columns every query returns, with `t.` as the table alias. */
export const TASK_COLUMNS = [
  't.id', 't.name', 't.state', 't.input::text AS input', 't.result::text AS result', 't.error::text AS error',
  't.priority', 't.weight', 't.key', 't.attempts', 't.max_attempts', 't.progress::text AS progress', 't.created_at',
  't.run_at', 't.started_at', 't.finished_at', 't.updated_at', 't.owner', 't.lease_until', 't.schedule_id',
  't.options::text AS options', 't.grp', 't.dedup_key', 't.parent_id', 't.flow_pending', 't.flow_policy',
].join(', ');


export const SCHEDULE_COLUMNS = 'id, task, cron, every_ms, timezone, input::text AS input, overlap, paused, last_slot, created_at';
