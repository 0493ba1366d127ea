/** counts: tasks per state and the creation time of the oldest task waiting to run. */
import type { QueueCounts } from '../../store.ts';
import { TASK_STATES, type TaskState } from '../../../task.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: queue depth and lag for health checks and metrics. */
export async function counts(db: Queryable, n: PgNames, now: number): Promise<QueueCounts> {
  const { rows } = await run<{ state: TaskState; n: number; oldest: number | null }>(
    db,
    `SELECT state, count(*)::int AS n,
            min(created_at) FILTER (WHERE state = 'queued' OR (state IN ('scheduled', 'retrying') AND run_at <= $1)) AS oldest
     FROM ${n.tasks} GROUP BY state`,
    [now],
  );
  const byState = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
  let oldestDueAt: number | undefined;
  for (const r of rows) {
    byState[r.state] = r.n;
    if (r.oldest !== null && (oldestDueAt === undefined || r.oldest < oldestDueAt)) oldestDueAt = r.oldest;
  }
  return oldestDueAt === undefined ? { byState } : { byState, oldestDueAt };
}
