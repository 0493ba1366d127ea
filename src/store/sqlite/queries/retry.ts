/** retry: a dead letter (failed, timed_out, cancelled) goes back to `queued` with a fresh attempt budget. */
import type Database from 'better-sqlite3';
import { DEAD_STATES, type TaskRecord, type TaskState } from '../../../task.ts';
import type { RecordTransition } from './record-transition.ts';
import { TASK_COLUMNS, toTaskRecord, type TaskRow } from './rows.ts';

/** Why: undefined when the task is missing or not a dead letter (nothing changed). */
export function prepareRetry(db: Database.Database, record: RecordTransition): (id: string, at: number) => TaskRecord | undefined {
  const read = db.prepare<[string], { state: TaskState; parent_id: string | null }>('SELECT state, parent_id FROM tasks WHERE id = ?');
  // A flow child not final again is pending again in its parent (src/flow.ts: the count stays true).
  const countBack = db.prepare<[string]>('UPDATE tasks SET flow_pending = flow_pending + 1 WHERE id = ? AND flow_pending IS NOT NULL');
  const requeue = db.prepare<[number, number, string], TaskRow>(
    `UPDATE tasks SET state = 'queued', attempts = 0, run_at = ?, updated_at = ?, result = NULL, error = NULL,
       finished_at = NULL, started_at = NULL, owner = NULL, lease_until = NULL, progress = NULL
     WHERE id = ? RETURNING ${TASK_COLUMNS}`,
  );
  return (id, at) => {
    const row = read.get(id);
    if (!row || !DEAD_STATES.has(row.state)) return undefined;
    const updated = requeue.get(at, at, id)!;
    if (row.parent_id !== null) countBack.run(row.parent_id);
    record(id, row.state, 'queued', at, 0, 'retried');
    return toTaskRecord(updated);
  };
}
