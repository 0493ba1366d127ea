/** nextRunAt: the earliest time a waiting (scheduled or retrying) task becomes due. */
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a node arms one timer for the next due task instead of polling. */
export async function nextRunAt(db: Queryable, n: PgNames): Promise<number | undefined> {
  const { rows } = await run<{ at: number | null }>(
    db,
    `SELECT min(run_at) AS at FROM ${n.tasks} WHERE state IN ('scheduled', 'retrying')`,
  );
  return rows[0]?.at ?? undefined;
}
