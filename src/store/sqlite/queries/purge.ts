/** purge: delete final tasks finished before a time; history and output go with them (ON DELETE CASCADE). */
import type Database from 'better-sqlite3';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import type { PurgeRequest } from '../../store.ts';
import type { TransitionWriter } from './record-transition.ts';

/** Why: retention; only final states can ever be purged. */
export function preparePurge(db: Database.Database, writer: TransitionWriter): (request: PurgeRequest) => number {
  const stmt = db.prepare<[string, number], { state: TaskState }>(
    'DELETE FROM tasks WHERE state IN (SELECT value FROM json_each(?)) AND finished_at < ? RETURNING state',
  );
  return (request) => {
    const states = (request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s));
    const deleted = stmt.all(JSON.stringify(states), request.finishedBefore);
    for (const row of deleted) writer.removed(row.state);
    return deleted.length;
  };
}
