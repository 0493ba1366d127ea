/**
 * claim: select due ids in strategy order through the strategy's partial index, then lease each one
 * (state → running, attempts + 1) and write its transitions. Runs inside the caller's transaction.
 *
 * `names`/`exclude` are passed as JSON arrays (json_each), so one prepared statement serves every claim.
 * `perName` caps: rows are taken in order; when a name reaches its cap it joins `exclude` and the remainder is
 * selected again (rows already taken are running by then, so nothing is taken twice and order is kept).
 * weighted-random: one GROUP BY of the due rows per claim gives the class sizes; each pick draws a class
 * (see pick.ts) and takes its oldest row.
 * A request with group or rate limits, or paused groups, goes through claim-gated.ts instead. A claimed flow
 * parent carries its children's outcomes.
 */
import type Database from 'better-sqlite3';
import type { TaskRecord, TaskState } from '../../../task.ts';
import { pickWeightClass, type WeightClass } from '../../pick.ts';
import type { ClaimRequest, Strategy } from '../../store.ts';
import { needsGate } from '../../claim-gate.ts';
import { prepareGatedClaim } from './claim-gated.ts';
import type { FlowQueries } from './flow.ts';
import type { RecordTransition } from './record-transition.ts';
import { DUE, NAME_FILTER, orderedDue } from './claim-order.ts';
import { TASK_COLUMNS, toTaskRecord, type TaskRow } from './rows.ts';

const FILTER = NAME_FILTER;
const ORDERED = orderedDue(FILTER);

interface Params {
  now: number;
  names: string | null;
  exclude: string | null;
}

/** Why: a batch of leases in one statement sequence, in the same order every store uses. */
export function prepareClaim(
  db: Database.Database,
  strategy: Strategy,
  random: () => number,
  record: RecordTransition,
  flow: FlowQueries,
): (request: ClaimRequest) => TaskRecord[] {
  const lease = db.prepare<[string, number, number, number, string]>(
    `UPDATE tasks SET state = 'running', attempts = attempts + 1, owner = ?, lease_until = ?, started_at = ?, updated_at = ?,
       progress = NULL WHERE id = ?`,
  );
  const take = (row: TaskRow, request: ClaimRequest): TaskRecord => {
    const { now } = request;
    const leaseUntil = now + request.leaseMs;
    lease.run(request.owner, leaseUntil, now, now, row.id);
    const from = row.state as TaskState;
    if (from !== 'queued') record(row.id, from, 'queued', now, row.attempts, 'due');
    const rec = toTaskRecord(row);
    rec.state = 'running';
    rec.attempts = row.attempts + 1;
    rec.owner = request.owner;
    rec.leaseUntil = leaseUntil;
    rec.startedAt = now;
    rec.updatedAt = now;
    delete rec.progress;
    record(row.id, 'queued', 'running', now, rec.attempts);
    if (rec.flow) rec.children = flow.children(rec.id, rec.flow.policy);
    return rec;
  };
  const gated = prepareGatedClaim(db, strategy, random, take);

  if (strategy === 'weighted-random') {
    const classes = db.prepare<[Params], { name: string; weight: number; n: number }>(
      `SELECT name, weight, COUNT(*) AS n FROM tasks INDEXED BY tasks_due_weight WHERE ${DUE} ${FILTER} GROUP BY name, weight`,
    );
    const oldest = db.prepare<[Params & { weight: number }], TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks INDEXED BY tasks_due_weight WHERE ${DUE} AND weight = @weight ${FILTER}
       ORDER BY run_at, id LIMIT 1`,
    );
    return (request) => {
      if (needsGate(request)) return gated(request);
      const caps = new Map(Object.entries(request.perName ?? {}));
      const excluded = new Set(request.exclude ?? []);
      for (const [name, cap] of caps) if (!(cap > 0)) excluded.add(name);
      const params = (): Params => ({
        now: request.now,
        names: request.names ? JSON.stringify(request.names) : null,
        exclude: excluded.size > 0 ? JSON.stringify([...excluded]) : null,
      });
      let p = params();
      const counts = new Map<string, Map<number, number>>();
      for (const row of classes.all(p)) {
        let byWeight = counts.get(row.name);
        if (!byWeight) counts.set(row.name, (byWeight = new Map()));
        byWeight.set(row.weight, row.n);
      }
      const out: TaskRecord[] = [];
      while (out.length < request.limit) {
        const totals = new Map<number, number>();
        for (const byWeight of counts.values()) for (const [w, n] of byWeight) if (n > 0) totals.set(w, (totals.get(w) ?? 0) + n);
        if (totals.size === 0) break;
        const list: WeightClass[] = [...totals].map(([weight, count]) => ({ weight, count })).sort((a, b) => a.weight - b.weight);
        const index = pickWeightClass(list, random());
        if (index < 0) break;
        const weight = list[index]!.weight;
        const c = oldest.get({ ...p, weight });
        if (!c) break;
        out.push(take(c, request));
        const byWeight = counts.get(c.name)!;
        byWeight.set(weight, byWeight.get(weight)! - 1);
        const cap = caps.get(c.name);
        if (cap !== undefined) {
          caps.set(c.name, cap - 1);
          if (cap - 1 <= 0) {
            counts.delete(c.name);
            excluded.add(c.name);
            p = params();
          }
        }
      }
      return out;
    };
  }

  const select = db.prepare<[Params & { limit: number }], TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks ${ORDERED[strategy]} LIMIT @limit`);
  return (request) => {
    if (needsGate(request)) return gated(request);
    const out: TaskRecord[] = [];
    if (!(request.limit > 0)) return out;
    const caps = new Map(Object.entries(request.perName ?? {}));
    const excluded = new Set(request.exclude ?? []);
    for (const [name, cap] of caps) if (!(cap > 0)) excluded.add(name);
    const names = request.names ? JSON.stringify(request.names) : null;
    for (;;) {
      const want = request.limit - out.length;
      const rows = select.all({ now: request.now, names, exclude: excluded.size > 0 ? JSON.stringify([...excluded]) : null, limit: want });
      let capped = false;
      for (const c of rows) {
        if (excluded.has(c.name)) continue;
        const cap = caps.get(c.name);
        if (cap !== undefined) {
          caps.set(c.name, cap - 1);
          if (cap - 1 <= 0) {
            excluded.add(c.name);
            capped = true;
          }
        }
        out.push(take(c, request));
      }
      if (!capped || rows.length < want || out.length >= request.limit) return out;
    }
  };
}
