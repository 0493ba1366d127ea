/**
 * counts: tasks per state (kept in `task_counts`), the number of tasks due to run, and when the longest-waiting one
 * became due (its `run_at`).
 */
import type Database from 'better-sqlite3';
import { TASK_STATES, type TaskState } from '../../../task.ts';
import type { QueueCounts } from '../../store.ts';

/** The scheduled and retrying tasks whose `run_at` has come (bound: now). */
export const DUE_WAITING_SQL = `SELECT count(*) AS n FROM tasks INDEXED BY tasks_waiting WHERE state IN ('scheduled', 'retrying') AND run_at <= ?`;

/** The earliest `run_at` that has come of a task that may be claimed, read through the claim index `dueIndex` (bound: now). */
export function oldestDueSql(dueIndex: string): string {
  return `SELECT MIN(run_at) AS at FROM tasks INDEXED BY ${dueIndex} WHERE state IN ('queued', 'scheduled', 'retrying') AND run_at <= ?`;
}

/**
 * Why: the numbers health checks and metrics read, without scanning the tasks. The due waiting tasks are a range
 * of `tasks_waiting` (a waiting flow parent's `run_at` is never reached); the oldest due time is read from the
 * strategy's claim index, which holds `run_at` (an index-only read of the due entries, not of their rows).
 */
export function prepareCounts(db: Database.Database, dueIndex: string): (now: number) => QueueCounts {
  const byState = db.prepare<[], { state: TaskState; n: number }>('SELECT state, n FROM task_counts');
  const dueWaiting = db.prepare<[number], { n: number }>(DUE_WAITING_SQL);
  const oldestDue = db.prepare<[number], { at: number | null }>(oldestDueSql(dueIndex));
  return (now) => {
    const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const row of byState.all()) counts[row.state] = row.n;
    const due = counts.queued + (dueWaiting.get(now)?.n ?? 0);
    const at = oldestDue.get(now)?.at ?? null;
    return at === null ? { byState: counts, due } : { byState: counts, due, oldestDueAt: at };
  };
}
