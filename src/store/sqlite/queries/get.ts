/** get and history: one task by id, and its transitions in the order they were written. */
import type Database from 'better-sqlite3';
import type { TaskRecord, Transition } from '../../../task.ts';
import { TASK_COLUMNS, toTaskRecord, toTransition, type TaskRow, type TransitionRow } from './rows.ts';

/** Why: the two point reads every inspector (API, REPL, handle) makes. */
export function prepareGet(db: Database.Database): { get(id: string): TaskRecord | undefined; history(id: string): Transition[] } {
  const get = db.prepare<[string], TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ?`);
  const history = db.prepare<[string], TransitionRow>(
    'SELECT task_id, from_state, to_state, at, attempt, reason, error FROM transitions WHERE task_id = ? ORDER BY seq',
  );
  return {
    get(id) {
      const row = get.get(id);
      return row ? toTaskRecord(row) : undefined;
    },
    history: (id) => history.all(id).map(toTransition),
  };
}
