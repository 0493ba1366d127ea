/**
 * enqueue: one INSERT per task that does nothing on a conflicting id or idempotency key; on a conflict the
 * existing task answers. Runs inside the caller's transaction, so a batch sees its own earlier rows.
 */
import type Database from 'better-sqlite3';
import type { NewTask, TaskState } from '../../../task.ts';
import type { EnqueueResult } from '../../store.ts';
import type { RecordTransition } from './record-transition.ts';
import { toJson } from './rows.ts';

/** Why: idempotent inserts in one statement on the common path. */
export function prepareEnqueue(db: Database.Database, record: RecordTransition): (tasks: readonly NewTask[]) => EnqueueResult[] {
  const insert = db.prepare(
    `INSERT INTO tasks (id, name, state, input, priority, weight, key, max_attempts, created_at, run_at, updated_at, schedule_id, options)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const byKey = db.prepare<[string], { id: string; state: TaskState }>('SELECT id, state FROM tasks WHERE key = ?');
  const byId = db.prepare<[string], { id: string; state: TaskState }>('SELECT id, state FROM tasks WHERE id = ?');
  return (tasks) =>
    tasks.map((t) => {
      const state: TaskState = t.runAt > t.createdAt ? 'scheduled' : 'queued';
      const info = insert.run(
        t.id,
        t.name,
        state,
        toJson(t.input),
        t.priority,
        t.weight,
        t.key ?? null,
        t.maxAttempts,
        t.createdAt,
        t.runAt,
        t.createdAt,
        t.scheduleId ?? null,
        toJson(t.options),
      );
      if (info.changes === 1) {
        record(t.id, null, state, t.createdAt, 0);
        return { id: t.id, created: true, state };
      }
      const existing = (t.key !== undefined ? byKey.get(t.key) : undefined) ?? byId.get(t.id)!;
      return { id: existing.id, created: false, state: existing.state };
    });
}
