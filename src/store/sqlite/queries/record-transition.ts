/**
 * The history entries. Every verb that changes a state records them in the same transaction, and
 * the per-state counts (`task_counts`) follow from the transitions: each call adds to pending deltas, and
 * `flush()` writes them as one UPDATE per changed state at the end of the transaction.
 *
 * A task's history lives in its own row (`tasks.history`, schema version 5): one line per transition (history-line.ts),
 * appended with `||`.
 * The hot verbs (enqueue, claim, success) append their line in the statement that changes the row and only count
 * it here (`counted`); the others `record` it, and `flush()` appends their lines in one UPDATE per 64 tasks.
 */
import type Database from 'better-sqlite3';
import type { TaskState } from '../../../task.ts';
import { historyLine, type TransitionFields } from '../../history-line.ts';
import { ID_INDEX, rowPiece, statementsByRows } from './rows.ts';

export type RecordTransition = (taskId: string, ...fields: TransitionFields) => void;

export interface TransitionWriter {
  record: RecordTransition;
  /** Counts a transition whose history line the caller's own statement appended. */
  counted(from: TaskState | null, to: TaskState): void;
  /** Appends the recorded lines now: a statement that appends lines of its own runs after this, in order. */
  sync(): void;
  /** Counts a task deleted in this transaction. */
  removed(state: TaskState, n?: number): void;
  /** Writes the pending history lines and count changes; call last inside the transaction. */
  flush(): void;
  /** Forgets pending rows and count changes (the transaction rolled back). */
  discard(): void;
}

/** Tasks whose recorded lines one UPDATE appends at most. */
const TASKS_PER_UPDATE = 64;

/**
 * The lines of `n` tasks appended at once (parameters: id, lines; for each task). Pinned to the id index, with the
 * IN list, for the reasons succeedManySql gives.
 */
export function appendHistorySql(n: number): string {
  return `WITH v AS (VALUES ${Array.from({ length: n }, () => '(?, ?)').join(', ')})
     UPDATE tasks INDEXED BY ${ID_INDEX} SET history = history || v.column2 FROM v
     WHERE tasks.id IN (SELECT column1 FROM v) AND tasks.id = v.column1`;
}

/**
 * Why: history and state counts are written from many verbs; this keeps them in one place. Recorded lines wait,
 * joined per task, until `sync()` or `flush()`, and are appended by one UPDATE … FROM (VALUES …) per 64 tasks
 * (power-of-two pieces: see rowPiece). Appending to the row keeps a task's history where its row already is: a
 * history table keyed by task took a B-tree insert per transition at the task's place in its index (for an old
 * task, a page in the middle of the index, often split), and two more pages per commit.
 */
export function prepareTransitionWriter(db: Database.Database): TransitionWriter {
  const appendOf = statementsByRows((n) => db.prepare(appendHistorySql(n)));
  const bump = db.prepare('UPDATE task_counts SET n = n + ? WHERE state = ?');
  const deltas = new Map<TaskState, number>();
  /** Lines recorded and not yet appended, per task, in the order they were recorded. */
  const pending = new Map<string, string>();
  const add = (state: TaskState, n: number): void => {
    deltas.set(state, (deltas.get(state) ?? 0) + n);
  };
  const count = (from: TaskState | null, to: TaskState): void => {
    if (from !== null) add(from, -1);
    add(to, 1);
  };
  const writeLines = (): void => {
    if (pending.size === 0) return;
    const values: unknown[] = [];
    for (const [id, lines] of pending) values.push(id, lines);
    pending.clear();
    const tasks = values.length / 2;
    for (let done = 0; done < tasks; ) {
      const n = rowPiece(tasks - done, TASKS_PER_UPDATE);
      appendOf(n).run(n === tasks ? values : values.slice(done * 2, (done + n) * 2));
      done += n;
    }
  };
  return {
    record(taskId, from, to, at, attempt, reason, error) {
      const line = historyLine(from, to, at, attempt, reason, error);
      const before = pending.get(taskId);
      pending.set(taskId, before === undefined ? line : before + line);
      count(from, to);
    },
    counted: count,
    sync: writeLines,
    removed: (state, n = 1) => add(state, -n),
    flush() {
      writeLines();
      for (const [state, n] of deltas) if (n !== 0) bump.run(n, state);
      deltas.clear();
    },
    discard: () => {
      pending.clear();
      deltas.clear();
    },
  };
}
