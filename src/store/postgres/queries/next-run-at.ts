/** nextRunAt: the earliest time a waiting (scheduled or retrying) task becomes due. */
import { FLOW_WAITING_RUN_AT } from '../../../task.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a node arms one timer for the next due task instead of polling. Flow parents wait for children, not a time. */
export async function nextRunAt(db: Queryable, n: PgNames, after = -1): Promise<number | undefined> {
  // Times are epoch milliseconds (≥ 0): -1 leaves no waiting task out.
  const { rows } = await run<{ at: number | null }>(
    db,
    `SELECT min(run_at) AS at FROM ${n.tasks} WHERE state IN ('scheduled', 'retrying') AND run_at > $1 AND run_at < ${FLOW_WAITING_RUN_AT}`,
    [after],
  );
  return rows[0]?.at ?? undefined;
}
