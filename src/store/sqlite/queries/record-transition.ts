/**
 * The one INSERT of a history entry. Every verb that changes a state calls it in the same transaction, and
 * the per-state counts (`task_counts`) follow from the transitions: each call adds to pending deltas, and
 * `flush()` writes them as one UPDATE per changed state at the end of the transaction.
 */
import type Database from 'better-sqlite3';
import type { SerializedError } from '../../../errors.ts';
import type { TaskState } from '../../../task.ts';

export type RecordTransition = (
  taskId: string,
  from: TaskState | null,
  to: TaskState,
  at: number,
  attempt: number,
  reason?: string,
  error?: SerializedError,
) => void;

export interface TransitionWriter {
  record: RecordTransition;
  /** Counts a task deleted in this transaction. */
  removed(state: TaskState, n?: number): void;
  /** Writes the pending count changes; call last inside the transaction. */
  flush(): void;
  /** Forgets pending count changes (the transaction rolled back). */
  discard(): void;
}

/** Why: history rows and state counts are written from many verbs; this keeps them in one place. */
export function prepareTransitionWriter(db: Database.Database): TransitionWriter {
  const insert = db.prepare(
    'INSERT INTO transitions (task_id, from_state, to_state, at, attempt, reason, error) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const bump = db.prepare('UPDATE task_counts SET n = n + ? WHERE state = ?');
  const deltas = new Map<TaskState, number>();
  const add = (state: TaskState, n: number): void => {
    deltas.set(state, (deltas.get(state) ?? 0) + n);
  };
  return {
    record(taskId, from, to, at, attempt, reason, error) {
      insert.run(taskId, from, to, at, attempt, reason ?? null, error === undefined ? null : JSON.stringify(error));
      if (from !== null) add(from, -1);
      add(to, 1);
    },
    removed: (state, n = 1) => add(state, -n),
    flush() {
      for (const [state, n] of deltas) if (n !== 0) bump.run(n, state);
      deltas.clear();
    },
    discard: () => deltas.clear(),
  };
}
