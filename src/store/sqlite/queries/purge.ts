/**
 * purge: delete final tasks finished before a time, with their output (a task's history is part of its row). The
 * store runs with `foreign_keys = OFF`, so the ON DELETE CASCADE in the schema is inert and this query deletes the
 * output rows itself, in the same transaction.
 */
import type Database from 'better-sqlite3';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import type { PurgeRequest } from '../../store.ts';
import type { TransitionWriter } from './record-transition.ts';

/** A flow child whose parent has not ended is kept: the parent's run reads its outcome. */
const NOT_AWAITED = `(parent_id IS NULL OR NOT EXISTS (
  SELECT 1 FROM tasks AS p WHERE p.id = tasks.parent_id AND p.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')))`;
const DOOMED = `SELECT id FROM tasks INDEXED BY tasks_finished WHERE finished_at < ? AND state IN (SELECT value FROM json_each(?)) AND ${NOT_AWAITED}`;

/** Why: retention; only final states can ever be purged, and a flow child only once its parent has ended. */
export function preparePurge(db: Database.Database, writer: TransitionWriter): (request: PurgeRequest) => number {
  const output = db.prepare<[number, string]>(`DELETE FROM output WHERE task_id IN (${DOOMED})`);
  const stmt = db.prepare<[number, string], { state: TaskState }>(
    `DELETE FROM tasks INDEXED BY tasks_finished WHERE finished_at < ? AND state IN (SELECT value FROM json_each(?)) AND ${NOT_AWAITED} RETURNING state`,
  );
  return (request) => {
    const states = JSON.stringify((request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s)));
    output.run(request.finishedBefore, states);
    const deleted = stmt.all(request.finishedBefore, states);
    for (const row of deleted) writer.removed(row.state);
    return deleted.length;
  };
}
