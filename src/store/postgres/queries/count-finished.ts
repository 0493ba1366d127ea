/** countFinished: final tasks that ended in a time window, per final state, read through `tasks_finished`. */
import type { FinishedCounts } from '../../store.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: exact throughput for `log-statistics` on a busy store, where scanning task pages would stop early. */
export async function countFinished(db: Queryable, n: PgNames, from: number, to: number): Promise<FinishedCounts> {
  const { rows } = await run<{ state: keyof FinishedCounts; n: number }>(
    db,
    `SELECT state, count(*)::int AS n FROM ${n.tasks}
     WHERE finished_at >= $1 AND finished_at <= $2 AND state IN ('succeeded', 'failed', 'timed_out', 'cancelled')
     GROUP BY state`,
    [from, to],
  );
  const counts: FinishedCounts = { succeeded: 0, failed: 0, timed_out: 0, cancelled: 0 };
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}
