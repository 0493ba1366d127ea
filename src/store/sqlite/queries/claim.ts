/**
 * claim: walk the due rows of every allowed name in strategy order through the strategy's name-leading partial
 * index (claim-order.ts), then lease them (state → running, attempts + 1: one UPDATE for the rows taken between
 * two fetches) and write their transitions. Runs inside the caller's transaction.
 *
 * Allowed names: the request's `names` (or every name with claimable rows) minus `exclude` and the names whose
 * `perName` cap is 0; none left means no query. A name that reaches its cap during the claim leaves the walk.
 * weighted-random: `names`/`exclude` are passed as JSON arrays (json_each), so one prepared statement serves
 * every claim; one GROUP BY of the due rows per claim gives the class sizes; each pick draws a class
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
import { historySql } from './history-line.ts';
import type { TransitionWriter } from './record-transition.ts';
import { CLAIM_COLUMNS, COMPARE, DUE, DueMerge, type ClaimRow, NAME_FILTER, allowedNames, prepareClaimableNames, prepareDueOfName } from './claim-order.ts';
import { ID_INDEX, roomAfter, rowPiece, statementsByRows, toTaskRecord } from './rows.ts';

const FILTER = NAME_FILTER;

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
  writer: TransitionWriter,
  flow: FlowQueries,
): (request: ClaimRequest) => TaskRecord[] {
  const lease = db.prepare<[string, number, number, number, number, number, string, number]>(
    `UPDATE tasks SET ${LEASE_SET} WHERE rowid = ?`,
  );
  /** The record of a leased row; its transitions are counted (the lease statement appends their lines). */
  const leased = (row: ClaimRow, request: ClaimRequest): TaskRecord => {
    const { now } = request;
    const leaseUntil = now + request.leaseMs;
    const from = row.state as TaskState;
    if (from !== 'queued') writer.counted(from, 'queued');
    const rec = toTaskRecord(row);
    rec.state = 'running';
    rec.attempts = row.attempts + 1;
    rec.owner = request.owner;
    rec.leaseUntil = leaseUntil;
    rec.startedAt = now;
    rec.updatedAt = now;
    delete rec.progress;
    writer.counted('queued', 'running');
    if (rec.flow) rec.children = flow.children(rec.id, rec.flow.policy);
    return rec;
  };
  const take = (row: ClaimRow, request: ClaimRequest): TaskRecord => {
    lease.run(request.owner, request.now + request.leaseMs, request.now, request.now, request.now, request.now, request.owner, row.rid);
    return leased(row, request);
  };
  const leaseMany = prepareLeaseMany(db);
  const gated = prepareGatedClaim(db, strategy, random, take);

  if (strategy === 'weighted-random') {
    // queued tasks from the counts the triggers keep (migrations.ts, ensureQueuedClasses); due waiting ones counted
    const classes = db.prepare<[Params], { name: string; weight: number; n: number }>(
      `SELECT name, weight, SUM(n) AS n FROM (
         SELECT name, weight, n FROM queued_classes WHERE n > 0
         UNION ALL
         SELECT name, weight, COUNT(*) FROM tasks INDEXED BY tasks_waiting
         WHERE state IN ('scheduled', 'retrying') AND run_at <= @now GROUP BY name, weight
       ) WHERE 1 ${FILTER} GROUP BY name, weight`,
    );
    const oldest = db.prepare<[Params & { weight: number }], ClaimRow>(
      `SELECT ${CLAIM_COLUMNS} FROM tasks INDEXED BY tasks_due_weight WHERE ${DUE} AND weight = @weight ${FILTER}
       ORDER BY run_at, id LIMIT 1`,
    );
    return (request) => {
      writer.sync();
      if (needsGate(request)) return gated(request);
      const caps = new Map(Object.entries(request.perName ?? {}));
      const excluded = new Set(request.exclude ?? []);
      for (const [name, cap] of caps) if (!(cap > 0)) excluded.add(name);
      // every listed name excluded: nothing to count or take (the counts would read every due row)
      if (request.names?.every((name) => excluded.has(name))) return [];
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
        if (!c) {
          // counted but none due at this claim's time (a queued task stamped by a node whose clock runs ahead)
          for (const byWeight of counts.values()) byWeight.delete(weight);
          continue;
        }
        out.push(take(c, request));
        const byWeight = counts.get(c.name);
        byWeight?.set(weight, (byWeight.get(weight) ?? 1) - 1);
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

  const select = prepareDueOfName(db, strategy);
  const claimable = prepareClaimableNames(db, strategy);
  const compare = COMPARE[strategy];
  return (request) => {
    writer.sync();
    if (needsGate(request)) return gated(request);
    const out: TaskRecord[] = [];
    if (!(request.limit > 0)) return out;
    const caps = new Map(Object.entries(request.perName ?? {}));
    const excluded = new Set(request.exclude ?? []);
    for (const [name, cap] of caps) if (!(cap > 0)) excluded.add(name);
    const names = allowedNames(request.names, excluded, claimable);
    if (names.length === 0) return out;
    const { now } = request;
    // Taken rows are leased together, by one UPDATE, before the next fetch (they must have left the index by then)
    // and at the end: one statement per claim in the common case instead of one per task.
    const ids: string[] = [];
    const flush = (): void => {
      if (ids.length > 0) leaseMany(ids, request);
      ids.length = 0;
    };
    const fetch = (name: string, limit: number): ClaimRow[] => {
      flush();
      return select({ name, now, limit });
    };
    const merge = new DueMerge(names, fetch, compare, request.limit);
    while (out.length < request.limit) {
      const row = merge.next(request.limit - out.length);
      if (!row) break;
      ids.push(row.id);
      out.push(leased(row, request));
      const cap = caps.get(row.name);
      if (cap !== undefined) {
        caps.set(row.name, cap - 1);
        if (cap - 1 <= 0) merge.drop(row.name);
      }
    }
    flush();
    return out;
  };
}

/**
 * What a lease sets, parameters owner, lease until, now × 4, owner: the row's history gets the `due` line of a task
 * that was scheduled or retrying, then its running line (the same lines `record` would write; SET reads the old
 * row). The row gives up as much of its room (rows.ts, TASK_ROOM) as these take: the owner, two times of up to 8
 * bytes, the running line (up to 20 characters) and a due line (up to 40), so that it does not grow.
 */
const LEASE_SET = `state = 'running', attempts = attempts + 1, owner = ?, lease_until = ?, started_at = ?, updated_at = ?,
  progress = NULL, history = history || CASE WHEN state = 'queued' THEN '' ELSE ${historySql({ sql: 'state' }, 'queued', '?', 'attempts', 'due')} END
    || ${historySql('queued', 'running', '?', 'attempts + 1')},
  room = ${roomAfter(`length(?) + 36 + CASE WHEN state = 'queued' THEN 0 ELSE 40 END`)}`;

/** Rows leased by one UPDATE at most. */
const LEASE_CHUNK = 64;

/**
 * The lease of `n` rows by id. By id through the pinned id index, not by rowid: `rowid IN (…)` cannot be pinned, and
 * with the statistics of a young file (`PRAGMA optimize` at the first close analyzes a table of a few hundred rows
 * or less) the planner scanned the whole table for a lease of 8 or 64 rows instead. Measured on 100,000 tasks:
 * statistics of 3 rows, 64 rows 7.1 ms by rowid → 1.4 ms by id; statistics that fit, 1.33 ms → 1.47 ms (one B-tree
 * descent more per row).
 */
export function leaseManySql(rows: number): string {
  return `UPDATE tasks INDEXED BY ${ID_INDEX} SET ${LEASE_SET} WHERE id IN (${Array.from({ length: rows }, () => '?').join(', ')})`;
}

/**
 * Why: the lease of many rows in one statement (leaseManySql, prepared for power-of-two lengths up to LEASE_CHUNK
 * when first needed: see rowPiece), the same change `take` makes to each row.
 */
function prepareLeaseMany(db: Database.Database): (ids: readonly string[], request: ClaimRequest) => void {
  const statementOf = statementsByRows((n) => db.prepare(leaseManySql(n)));
  return (ids, request) => {
    const { owner, now } = request;
    for (let done = 0; done < ids.length; ) {
      const n = rowPiece(ids.length - done, LEASE_CHUNK);
      statementOf(n).run(owner, now + request.leaseMs, now, now, now, now, owner, ...ids.slice(done, done + n));
      done += n;
    }
  };
}
