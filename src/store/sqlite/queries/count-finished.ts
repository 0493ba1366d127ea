/** countFinished: final tasks that ended in a time window, per final state, read through `tasks_finished`. */
import type Database from 'better-sqlite3';
import type { FinishedCounts } from '../../store.ts';

/**
 * Why: exact throughput for `log-statistics` on a busy store, where scanning task pages would stop early. The range
 * on `tasks_finished` reads only the window's tasks (one row lookup each, for the state).
 */
export function prepareCountFinished(db: Database.Database): (from: number, to: number) => FinishedCounts {
  const stmt = db.prepare<[number, number], { state: keyof FinishedCounts; n: number }>(
    `SELECT state, count(*) AS n FROM tasks INDEXED BY tasks_finished
     WHERE finished_at >= ? AND finished_at <= ? AND state IN ('succeeded', 'failed', 'timed_out', 'cancelled')
     GROUP BY state`,
  );
  return (from, to) => {
    const counts: FinishedCounts = { succeeded: 0, failed: 0, timed_out: 0, cancelled: 0 };
    for (const row of stmt.all(from, to)) counts[row.state] = row.n;
    return counts;
  };
}
