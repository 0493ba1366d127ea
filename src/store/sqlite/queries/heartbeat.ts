/** heartbeat: extend the leases of one owner's running tasks, all of them or the listed ids. */
import type Database from 'better-sqlite3';

/** Why: a live node keeps its leases; only a silent one loses them. A lease is never shortened. */
export function prepareHeartbeat(db: Database.Database): (owner: string, leaseUntil: number, ids?: readonly string[]) => number {
  const all = db.prepare(`UPDATE tasks SET lease_until = max(coalesce(lease_until, 0), ?) WHERE state = 'running' AND owner = ?`);
  const some = db.prepare(
    `UPDATE tasks SET lease_until = max(coalesce(lease_until, 0), ?) WHERE state = 'running' AND owner = ? AND id IN (SELECT value FROM json_each(?))`,
  );
  return (owner, leaseUntil, ids) =>
    ids ? some.run(leaseUntil, owner, JSON.stringify(ids)).changes : all.run(leaseUntil, owner).changes;
}
