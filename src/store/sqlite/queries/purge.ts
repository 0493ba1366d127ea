/**
 * purge: delete final tasks finished before a time, with their history and output. The store runs with
 * `foreign_keys = OFF` (the per-row parent lookup cost every history INSERT), so the ON DELETE CASCADE in the
 * schema is inert and this query deletes the child rows itself, in the same transaction.
 */
import type Database from 'better-sqlite3';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import type { PurgeRequest } from '../../store.ts';
import type { TransitionWriter } from './record-transition.ts';

const DOOMED = 'SELECT id FROM tasks INDEXED BY tasks_finished WHERE finished_at < ? AND state IN (SELECT value FROM json_each(?))';

/**
 * The history of the tasks a purge deletes. transitions_task is pinned: with the statistics of a young file (a few
 * history rows) the planner scanned the whole history once per purge (measured: 80 ms instead of 0.3 ms to purge 100
 * of 300,000 tasks).
 */
export const PURGE_HISTORY_SQL = `DELETE FROM transitions INDEXED BY transitions_task WHERE task_id IN (${DOOMED})`;

/** Why: retention; only final states can ever be purged. */
export function preparePurge(db: Database.Database, writer: TransitionWriter): (request: PurgeRequest) => number {
  const history = db.prepare<[number, string]>(PURGE_HISTORY_SQL);
  const output = db.prepare<[number, string]>(`DELETE FROM output WHERE task_id IN (${DOOMED})`);
  const stmt = db.prepare<[number, string], { state: TaskState }>(
    'DELETE FROM tasks INDEXED BY tasks_finished WHERE finished_at < ? AND state IN (SELECT value FROM json_each(?)) RETURNING state',
  );
  return (request) => {
    const states = JSON.stringify((request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s)));
    history.run(request.finishedBefore, states);
    output.run(request.finishedBefore, states);
    const deleted = stmt.all(request.finishedBefore, states);
    for (const row of deleted) writer.removed(row.state);
    return deleted.length;
  };
}
