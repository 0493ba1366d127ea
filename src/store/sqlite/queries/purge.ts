/**
 * purge: delete final tasks finished before a time, with their output (a task's history is part of its row). The
 * store runs with `foreign_keys = OFF`, so the ON DELETE CASCADE in the schema is inert and this query deletes the
 * output rows itself, in the same transaction.
 *
 * One call deletes at most `limit` tasks (the oldest finished first), so that the store can purge a large backlog
 * in short transactions and give the event loop back between them: better-sqlite3 is synchronous, and deleting
 * 100,000 tasks in one statement held the main thread for 0.7 s (timers, heartbeats and HTTP all waited).
 */
import type Database from 'better-sqlite3';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import type { PurgeRequest } from '../../store.ts';
import type { TransitionWriter } from './record-transition.ts';
import { ID_INDEX } from './rows.ts';

/** A flow child whose parent has not ended is kept: the parent's run reads its outcome. */
const NOT_AWAITED = `(parent_id IS NULL OR NOT EXISTS (
  SELECT 1 FROM tasks AS p WHERE p.id = tasks.parent_id AND p.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')))`;
const DOOMED = `SELECT id FROM tasks INDEXED BY tasks_finished WHERE finished_at < ? AND state IN (SELECT value FROM json_each(?)) AND ${NOT_AWAITED} ORDER BY finished_at LIMIT ?`;

/** Tasks one purge transaction deletes at most (about 7 ms of the main thread here). */
export const PURGE_BATCH = 1000;

/** Why: retention; only final states can ever be purged, and a flow child only once its parent has ended. */
export function preparePurge(db: Database.Database, writer: TransitionWriter): (request: PurgeRequest, limit: number) => number {
  const doomed = db.prepare<[number, string, number], string>(DOOMED).pluck();
  const output = db.prepare<[string]>(`DELETE FROM output WHERE task_id IN (SELECT value FROM json_each(?))`);
  const stmt = db.prepare<[string], { state: TaskState }>(`DELETE FROM tasks INDEXED BY ${ID_INDEX} WHERE id IN (SELECT value FROM json_each(?)) RETURNING state`);
  return (request, limit) => {
    const states = JSON.stringify((request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s)));
    const ids = doomed.all(request.finishedBefore, states, limit);
    if (ids.length === 0) return 0;
    const list = JSON.stringify(ids);
    output.run(list);
    const deleted = stmt.all(list);
    for (const row of deleted) writer.removed(row.state);
    return deleted.length;
  };
}
