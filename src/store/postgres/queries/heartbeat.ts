/**
 * heartbeat: extends the leases of one owner's running tasks (all of them, or the given ids).
 *
 * It must never wait for a row lock while it holds others. One UPDATE of many rows locks them in its plan's order
 * and waits at the first row another transaction holds, keeping the ones it already locked; the tracker's settle
 * (in flight on another connection at the same moment) locks the same owner's rows in its own order. Each then
 * waits for the other, and PostgreSQL aborts one of them after `deadlock_timeout` (a second by default).
 *
 * So it goes in two steps:
 * 1. one statement extends the rows nobody holds (`SKIP LOCKED`): it never waits. The same statement reads (a
 *    plain read, which takes no lock) the rows it skipped whose lease is still behind, so a heartbeat that meets
 *    no locked row costs one round trip;
 * 2. those rows are extended one statement each: a statement that waits holds no other row, so it cannot close a
 *    cycle. A row that left `running` meanwhile is not counted.
 *
 * A lease is only ever lengthened, so a late heartbeat never shortens a newer one.
 */
import type { TaskId } from '../../../ids.ts';
import { STATE_BY_ID, run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a node proves it is alive; a lease it stops extending expires and its tasks go back. */
export async function heartbeat(db: Queryable, n: PgNames, owner: string, leaseUntil: number, ids?: readonly TaskId[]): Promise<number> {
  if (ids !== undefined && ids.length === 0) return 0;
  const params: unknown[] = ids === undefined ? [owner, leaseUntil] : [owner, leaseUntil, ids];
  const mine = `${STATE_BY_ID} = 'running' AND t.owner = $1${ids === undefined ? '' : ' AND t.id = ANY($3::text[])'}`;
  const first = await run<{ extended: string; behind: string[] }>(
    db,
    `WITH mine AS (SELECT t.id, t.lease_until FROM ${n.tasks} AS t WHERE ${mine}),
     free AS (SELECT t.id FROM ${n.tasks} AS t WHERE ${mine} FOR NO KEY UPDATE SKIP LOCKED),
     done AS (UPDATE ${n.tasks} AS t SET lease_until = GREATEST(t.lease_until, $2) FROM free WHERE t.id = free.id RETURNING t.id)
     SELECT (SELECT count(*) FROM done) AS extended,
            ARRAY(SELECT m.id FROM mine AS m WHERE m.lease_until < $2 AND m.id NOT IN (SELECT id FROM done)) AS behind`,
    params,
  );
  const { extended: freed, behind } = first.rows[0]!;
  let extended = Number(freed);
  for (const id of behind) {
    const one = await run(
      db,
      `UPDATE ${n.tasks} AS t SET lease_until = $2 WHERE t.id = $3 AND ${STATE_BY_ID} = 'running' AND t.owner = $1 AND t.lease_until < $2`,
      [owner, leaseUntil, id],
    );
    extended += one.rowCount ?? 0;
  }
  return extended;
}
