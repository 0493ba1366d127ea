/**
 * The history entries. Every verb that changes a state records them in the same transaction, and
 * the per-state counts (`task_counts`) follow from the transitions: each call adds to pending deltas, and
 * `flush()` writes them as one UPDATE per changed state at the end of the transaction.
 */
import type Database from 'better-sqlite3';
import type { SerializedError } from '../../../errors.ts';
import type { TaskState } from '../../../task.ts';
import { rowPiece, statementsByRows } from './rows.ts';

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
  /** Writes the pending history rows and count changes; call last inside the transaction. */
  flush(): void;
  /** Forgets pending rows and count changes (the transaction rolled back). */
  discard(): void;
}

/** History rows written by one INSERT at most (7 parameters each, far below SQLite's limit of 32,766). */
const ROWS_PER_INSERT = 64;
const COLUMNS_PER_ROW = 7;

/**
 * Why: history rows and state counts are written from many verbs; this keeps them in one place. Rows wait in a
 * flat array until `flush()` and go in as multi-row INSERTs (at most 64 rows, in power-of-two pieces: see rowPiece;
 * the statement call, not the row, was the cost). Nothing reads `transitions` inside a write transaction, and
 * every row's task exists before its transition is recorded, so writing them last changes no result.
 */
export function prepareTransitionWriter(db: Database.Database): TransitionWriter {
  const insertOf = statementsByRows((_n, values) =>
    db.prepare(`INSERT INTO transitions (task_id, from_state, to_state, at, attempt, reason, error) VALUES ${values('(?, ?, ?, ?, ?, ?, ?)')}`),
  );
  const bump = db.prepare('UPDATE task_counts SET n = n + ? WHERE state = ?');
  const deltas = new Map<TaskState, number>();
  /** Pending rows, `COLUMNS_PER_ROW` values each, in the order they were recorded (their seq order). */
  let pending: unknown[] = [];
  const add = (state: TaskState, n: number): void => {
    deltas.set(state, (deltas.get(state) ?? 0) + n);
  };
  const writeRows = (): void => {
    const values = pending;
    if (values.length === 0) return;
    pending = [];
    const rows = values.length / COLUMNS_PER_ROW;
    for (let done = 0; done < rows; ) {
      const n = rowPiece(rows - done, ROWS_PER_INSERT);
      insertOf(n).run(n === rows ? values : values.slice(done * COLUMNS_PER_ROW, (done + n) * COLUMNS_PER_ROW));
      done += n;
    }
  };
  return {
    record(taskId, from, to, at, attempt, reason, error) {
      pending.push(taskId, from, to, at, attempt, reason ?? null, error === undefined ? null : JSON.stringify(error));
      if (from !== null) add(from, -1);
      add(to, 1);
    },
    removed: (state, n = 1) => add(state, -n),
    flush() {
      writeRows();
      for (const [state, n] of deltas) if (n !== 0) bump.run(n, state);
      deltas.clear();
    },
    discard: () => {
      pending = [];
      deltas.clear();
    },
  };
}
