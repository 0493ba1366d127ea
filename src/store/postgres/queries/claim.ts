/**
 * claim: lease due tasks in strategy order, in one statement.
 *
 *   WITH c AS (SELECT id … ORDER BY <strategy> LIMIT $n FOR UPDATE SKIP LOCKED)
 *   UPDATE tasks … FROM c RETURNING …      + the transitions, in the same statement
 *
 * The redundant `t.id = ANY(ARRAY(SELECT id FROM c))` keeps the prepared statement's generic plan (which
 * guesses `LIMIT $n` at a tenth of the table) on primary-key lookups instead of a hash join over the table.
 *
 * `SKIP LOCKED` lets many nodes claim at once without waiting on (or double-taking) each other's rows. Per-name
 * caps add one locked sub-select per capped name (a LATERAL over the caps), each limited to its cap; the union
 * is cut back to `$n` in strategy order, and rows locked but not taken are released when the statement ends.
 *
 * A `scheduled`/`retrying` task that is claimed first records `→ queued` (reason `due`), then `queued → running`,
 * exactly as the other stores do.
 *
 * weighted-random draws in JavaScript (see pick.ts), so every store given one seed draws alike. It runs in a
 * short transaction: one statement counts the due tasks per (weight, name) and locks the oldest `limit` of each
 * group that no other node holds (`SKIP LOCKED` in a LATERAL); the draw picks among those; a second statement
 * starts the chosen ones; the commit frees the rest. Locking the candidates matters: without it a weighted node
 * keeps choosing the oldest rows, which a fifo node is taking at that moment, and comes back empty-handed while
 * the queue is full. A group whose available rows are fewer than `limit` counts only those (the others are
 * being claimed elsewhere).
 */
import type { ClaimRequest, Strategy } from '../../store.ts';
import type { TaskRecord } from '../../../task.ts';
import { compareByTime, pickWeightClass, type WeightClass } from '../../pick.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/**
 * Due: `queued`, or `scheduled`/`retrying` whose time has come (pick.ts). Written so that the planner walks the
 * strategy's partial index (predicate: the three claimable states) in order and filters, stopping at the limit.
 */
const DUE = `state IN ('queued', 'scheduled', 'retrying') AND (state = 'queued' OR run_at <= $1)`;

const ORDER: Record<Strategy, string> = {
  fifo: 'run_at ASC, id ASC',
  lifo: 'run_at DESC, id DESC',
  priority: 'priority DESC, run_at ASC, id ASC',
  'weighted-random': 'run_at ASC, id ASC',
};

interface Filters {
  names: boolean;
  exclude: boolean;
}

/** Parameters: $1 now, $2 limit, $3 owner, $4 lease until, then names, exclude, capped names, caps as present. */
function filterSql(f: Filters, firstParam: number): { where: string; next: number } {
  let p = firstParam;
  let where = DUE;
  if (f.names) where += ` AND name = ANY($${p++}::text[])`;
  if (f.exclude) where += ` AND name <> ALL($${p++}::text[])`;
  return { where, next: p };
}

/** The statement that locks `c` (built by the caller) and starts every task in it. */
function startSql(n: PgNames, pick: string, order: string): string {
  return `
    WITH ${pick},
    u AS (
      UPDATE ${n.tasks} AS t
      SET state = 'running', attempts = t.attempts + 1, owner = $3, lease_until = $4, started_at = $1,
          updated_at = $1, progress = NULL
      FROM c WHERE t.id = c.id AND t.id = ANY(ARRAY(SELECT id FROM c))
      RETURNING ${TASK_COLUMNS}, c.prev
    ), tr AS (
      INSERT INTO ${n.transitions} (task_id, from_state, to_state, at, attempt, reason)
      SELECT id, from_state, to_state, $1, attempt, reason FROM (
        SELECT id, prev AS from_state, 'queued' AS to_state, attempts - 1 AS attempt, 'due' AS reason, 0 AS step
        FROM u WHERE prev <> 'queued'
        UNION ALL
        SELECT id, 'queued', 'running', attempts, NULL, 1 FROM u
      ) AS steps ORDER BY id, step
    )
    SELECT * FROM u ORDER BY ${order}`;
}

const cache = new Map<string, string>();

function orderedClaimSql(n: PgNames, strategy: Strategy, f: Filters, capped: boolean): string {
  const cacheKey = `${n.schema}|${strategy}|${f.names}|${f.exclude}|${capped}`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const order = ORDER[strategy];
  const { where, next } = filterSql(f, 5);
  let pick: string;
  if (!capped) {
    pick = `c AS (
      SELECT id, state AS prev FROM ${n.tasks} WHERE ${where}
      ORDER BY ${order} LIMIT $2 FOR UPDATE SKIP LOCKED
    )`;
  } else {
    const capNames = `$${next}::text[]`;
    const caps = `$${next + 1}::int[]`;
    pick = `free AS (
      SELECT id, state AS prev, run_at, priority FROM ${n.tasks} WHERE ${where} AND name <> ALL(${capNames})
      ORDER BY ${order} LIMIT $2 FOR UPDATE SKIP LOCKED
    ), capped AS (
      SELECT x.* FROM unnest(${capNames}, ${caps}) AS cap(name, n)
      CROSS JOIN LATERAL (
        SELECT id, state AS prev, run_at, priority FROM ${n.tasks} WHERE ${where} AND name = cap.name
        ORDER BY ${order} LIMIT least(cap.n, $2) FOR UPDATE SKIP LOCKED
      ) AS x
    ), c AS (
      SELECT id, prev FROM (SELECT * FROM free UNION ALL SELECT * FROM capped) AS both_sets
      ORDER BY ${order} LIMIT $2
    )`;
  }
  sql = startSql(n, pick, order);
  cache.set(cacheKey, sql);
  return sql;
}

function idsClaimSql(n: PgNames): string {
  const cacheKey = `${n.schema}|ids`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const pick = `c AS (
    SELECT id, state AS prev FROM ${n.tasks} WHERE id = ANY($5::text[]) AND ${DUE}
    LIMIT $2 FOR UPDATE SKIP LOCKED
  )`;
  sql = startSql(n, pick, 'id');
  cache.set(cacheKey, sql);
  return sql;
}

function candidatesSql(n: PgNames, f: Filters): string {
  const cacheKey = `${n.schema}|candidates|${f.names}|${f.exclude}`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const { where } = filterSql(f, 3);
  sql = `
    WITH g AS (
      SELECT weight, name, count(*) AS cnt FROM ${n.tasks} WHERE ${where} GROUP BY weight, name
    )
    SELECT x.id, g.name, g.weight, x.run_at, x.priority, g.cnt FROM g
    CROSS JOIN LATERAL (
      SELECT id, run_at, priority FROM ${n.tasks}
      WHERE ${where} AND weight = g.weight AND name = g.name
      ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
    ) AS x
    ORDER BY g.weight, g.name, x.run_at, x.id`;
  cache.set(cacheKey, sql);
  return sql;
}

type StartRow = TaskRow & { prev: string };

/**
 * Why: the lease step of every node's dispatch loop; `SKIP LOCKED` keeps concurrent nodes from colliding.
 * fifo, lifo and priority: one statement. weighted-random: `claimWeighted`, inside a transaction.
 */
export async function claim(
  db: Queryable,
  n: PgNames,
  strategy: Exclude<Strategy, 'weighted-random'>,
  request: ClaimRequest,
): Promise<TaskRecord[]> {
  const limit = Math.floor(request.limit);
  if (!(limit > 0)) return [];
  const f: Filters = { names: request.names !== undefined, exclude: request.exclude !== undefined && request.exclude.length > 0 };
  const head: unknown[] = [request.now, limit, request.owner, request.now + request.leaseMs];
  const filterValues: unknown[] = [];
  if (f.names) filterValues.push(request.names);
  if (f.exclude) filterValues.push(request.exclude);

  const caps = Object.entries(request.perName ?? {});
  const sql = orderedClaimSql(n, strategy, f, caps.length > 0);
  const values = [...head, ...filterValues];
  if (caps.length > 0) values.push(caps.map(([name]) => name), caps.map(([, cap]) => Math.max(0, Math.floor(cap))));
  const { rows } = await run<StartRow>(db, sql, values);
  return rows.map(rowToTask);
}

interface Candidate {
  id: string;
  name: string;
  weight: number;
  run_at: number;
  priority: number;
  cnt: number;
}

/** Why: the weighted-random claim; `client` must be inside a transaction (the candidate locks last until commit). */
export async function claimWeighted(
  client: Queryable,
  n: PgNames,
  random: () => number,
  request: ClaimRequest,
): Promise<TaskRecord[]> {
  const limit = Math.floor(request.limit);
  if (!(limit > 0)) return [];
  const f: Filters = { names: request.names !== undefined, exclude: request.exclude !== undefined && request.exclude.length > 0 };
  const filterValues: unknown[] = [];
  if (f.names) filterValues.push(request.names);
  if (f.exclude) filterValues.push(request.exclude);
  const caps = new Map<string, number>(Object.entries(request.perName ?? {}));
  const { rows } = await run<Candidate>(client, candidatesSql(n, f), [request.now, limit, ...filterValues]);
  // (weight, name) groups: how many are due, and the oldest few in claim order.
  const groups = new Map<number, Map<string, { count: number; queue: Candidate[]; next: number }>>();
  for (const r of rows) {
    const cap = caps.get(r.name);
    if (cap !== undefined && !(cap > 0)) continue;
    let byName = groups.get(r.weight);
    if (!byName) groups.set(r.weight, (byName = new Map()));
    let g = byName.get(r.name);
    if (!g) byName.set(r.name, (g = { count: r.cnt, queue: [], next: 0 }));
    g.queue.push(r);
  }
  // Fewer available than asked for: the rest of the group is held by other nodes.
  for (const byName of groups.values()) for (const g of byName.values()) if (g.queue.length < limit) g.count = g.queue.length;
  const weights = [...groups.keys()].sort((a, b) => a - b);
  const chosen: string[] = [];
  while (chosen.length < limit) {
    const classes: WeightClass[] = weights.map((weight) => {
      let count = 0;
      for (const [name, g] of groups.get(weight)!) if ((caps.get(name) ?? 1) > 0) count += g.count;
      return { weight, count };
    });
    // Nothing left to draw from: stop without spending a random value (the SQLite store does the same).
    if (!classes.some((c) => c.count > 0)) break;
    const index = pickWeightClass(classes, random());
    if (index < 0) break;
    let best: { name: string; g: { count: number; queue: Candidate[]; next: number } } | undefined;
    for (const [name, g] of groups.get(weights[index]!)!) {
      if ((caps.get(name) ?? 1) <= 0 || g.next >= g.queue.length) continue;
      const head = g.queue[g.next]!;
      if (!best || compareByTime(toKey(head), toKey(best.g.queue[best.g.next]!)) < 0) best = { name, g };
    }
    if (!best) break;
    chosen.push(best.g.queue[best.g.next]!.id);
    best.g.next++;
    best.g.count--;
    const cap = caps.get(best.name);
    if (cap !== undefined) caps.set(best.name, cap - 1);
  }
  if (chosen.length === 0) return [];
  const { rows: started } = await run<StartRow>(client, idsClaimSql(n), [
    request.now, limit, request.owner, request.now + request.leaseMs, chosen,
  ]);
  const position = new Map(chosen.map((id, i) => [id, i]));
  return started.map(rowToTask).sort((a, b) => position.get(a.id)! - position.get(b.id)!);
}

function toKey(c: Candidate): { id: string; runAt: number; priority: number } {
  return { id: c.id, runAt: c.run_at, priority: c.priority };
}
