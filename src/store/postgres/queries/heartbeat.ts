/** heartbeat: extends the leases of one owner's running tasks (all of them, or the given ids). */
import type { TaskId } from '../../../ids.ts';
import { STATE_BY_ID, run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a node proves it is alive; a lease it stops extending expires and its tasks go back. */
export async function heartbeat(db: Queryable, n: PgNames, owner: string, leaseUntil: number, ids?: readonly TaskId[]): Promise<number> {
  if (ids === undefined) {
    const res = await run(db, `UPDATE ${n.tasks} SET lease_until = $2 WHERE state = 'running' AND owner = $1`, [owner, leaseUntil]);
    return res.rowCount ?? 0;
  }
  if (ids.length === 0) return 0;
  const res = await run(
    db,
    `UPDATE ${n.tasks} AS t SET lease_until = $2 WHERE ${STATE_BY_ID} = 'running' AND t.owner = $1 AND t.id = ANY($3::text[])`,
    [owner, leaseUntil, ids],
  );
  return res.rowCount ?? 0;
}
