/** get and history: one task by id, and its transitions in the order they were written (its row's history). */
import type Database from 'better-sqlite3';
import type { TaskRecord, TaskState, Transition } from '../../../task.ts';
import { parseHistory } from '../../history-line.ts';
import { TASK_COLUMNS, toTaskRecord, type TaskRow } from './rows.ts';

/** Why: the two point reads every inspector (API, REPL, handle) makes, and the runtime's read of awaited tasks. */
export function prepareGet(db: Database.Database): {
  get(id: string): TaskRecord | undefined;
  history(id: string): Transition[];
  states(ids: readonly string[]): Map<string, TaskState>;
} {
  const get = db.prepare<[string], TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ?`);
  const history = db.prepare<[string], string>('SELECT history FROM tasks WHERE id = ?').pluck();
  const states = db.prepare<[string], { id: string; state: TaskState }>('SELECT id, state FROM tasks WHERE id IN (SELECT value FROM json_each(?))');
  return {
    states(ids) {
      const found = new Map<string, TaskState>();
      for (const row of states.all(JSON.stringify(ids))) found.set(row.id, row.state);
      return found;
    },
    get(id) {
      const row = get.get(id);
      return row ? toTaskRecord(row) : undefined;
    },
    history(id) {
      const text = history.get(id);
      return text === undefined ? [] : parseHistory(id, text);
    },
  };
}
