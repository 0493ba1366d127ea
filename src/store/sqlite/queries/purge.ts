/** purge: delete final tasks finished before a time; history and output go with them (ON DELETE CASCADE). */
import type Database from 'better-sqlite3';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import type { PurgeRequest } from '../../store.ts';
import type { TransitionWriter } from './record-transition.ts';

/** Why: retention; only final states can ever be purged. */
export function preparePurge(db: Database.Database, writer: TransitionWriter): (request: PurgeRequest) => number {
  const stmt = db.prepare<[number, string], { state: TaskState }>(
    'DELETE FROM tasks INDEXED BY tasks_finished WHERE finished_at < ? AND state IN (SELECT value FROM json_each(?)) RETURNING state',
  );
  return (request) => {
    const states = (request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s));
    const deleted = stmt.all(request.finishedBefore, JSON.stringify(states));
    for (const row of deleted) writer.removed(row.state);
    return deleted.length;
  };
}
