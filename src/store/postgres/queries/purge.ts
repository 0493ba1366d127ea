/** purge: deletes final tasks finished before a threshold (their history is in the row) and their output, in one statement. */
import type { PurgeRequest } from '../../store.ts';
import { FINAL_STATES } from '../../../task.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/**
 * Why: retention (`cleanup-runs`); the table of a busy queue would otherwise grow without bound. A flow child whose
 * parent has not ended is kept: the parent's run reads its outcome.
 */
export async function purge(db: Queryable, n: PgNames, request: PurgeRequest): Promise<number> {
  const states = (request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s));
  if (states.length === 0) return 0;
  const { rows } = await run<{ n: number }>(
    db,
    `WITH d AS (
       DELETE FROM ${n.tasks} AS t WHERE state = ANY($1::text[]) AND finished_at < $2
         AND (parent_id IS NULL OR NOT EXISTS (
           SELECT 1 FROM ${n.tasks} AS p WHERE p.id = t.parent_id AND p.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')))
       RETURNING id
     ), dout AS (
       DELETE FROM ${n.output} WHERE task_id IN (SELECT id FROM d)
     )
     SELECT count(*)::int AS n FROM d`,
    [states, request.finishedBefore],
  );
  return rows[0]?.n ?? 0;
}
