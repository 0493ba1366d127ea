/** nextRunAt: the earliest time a waiting (scheduled or retrying) task becomes due. */
import { FLOW_WAITING_RUN_AT } from '../../../task.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a node arms one timer for the next due task instead of polling. Flow parents wait for children, not a time. */
export async function nextRunAt(db: Queryable, n: PgNames): Promise<number | undefined> {
  const { rows } = await run<{ at: number | null }>(
    db,
    `SELECT min(run_at) AS at FROM ${n.tasks} WHERE state IN ('scheduled', 'retrying') AND run_at < ${FLOW_WAITING_RUN_AT}`,
  );
  return rows[0]?.at ?? undefined;
}
