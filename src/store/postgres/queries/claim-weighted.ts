/**
 * claim under weighted-random: draw a weight class with probability ∝ weight × due tasks of that weight, then
 * take its oldest task (pick.ts). The draw uses the store's `random`, consumed exactly as the SQLite store
 * consumes it (one value per draw, none when nothing is due), so stores given one seed pick alike.
 *
 * Two paths:
 * - one task (`limit` 1, the steady state of a busy executor): one statement. The class sums run in SQL over the
 *   ascending weights, with the same float arithmetic as `pickWeightClass`, against one random value passed in;
 *   the oldest unlocked task of the drawn class is started. If nothing was due, the value is kept for the next
 *   draw. If the drawn class is entirely held by other nodes' claims, the caller takes the second path.
 * - many tasks: a short transaction. One statement counts the due tasks per (weight, name) and locks the oldest
 *   `limit` of each group that no other node holds (`SKIP LOCKED` in a LATERAL); the draws pick among those; a
 *   second statement starts the chosen ones; the commit frees the rest. Locking the candidates matters: without
 *   it a weighted node keeps choosing the oldest rows, which a fifo node is taking at that moment, and comes back
 *   empty-handed while the queue is full. A group with fewer available rows than `limit` counts only those.
 */
import type { ClaimRequest } from '../../store.ts';
import type { TaskRecord } from '../../../task.ts';
import { startedTaskFromRow } from '../../task-row.ts';
import { compareByTime, pickWeightClass, type WeightClass } from '../../pick.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';
import { DUE_BY_ID, cache, filterSql, startSql, type Filters, type StartRow } from './claim.ts';

/** The store's random source with one value of look-ahead that can be handed back unused. */
export interface Draws {
  next(): number;
  putBack(value: number): void;
}

/** Why: a draw that turned out not to be needed must not shift the seeded sequence. */
export function createDraws(random: () => number): Draws {
  let spare: number | undefined;
  return {
    next() {
      const value = spare ?? random();
      spare = undefined;
      return value;
    },
    putBack(value) {
      spare = value;
    },
  };
}

function filtersOf(request: ClaimRequest): { f: Filters; values: unknown[] } {
  const exclude = new Set(request.exclude ?? []);
  for (const [name, cap] of Object.entries(request.perName ?? {})) if (!(cap > 0)) exclude.add(name);
  const f: Filters = { names: request.names !== undefined, exclude: exclude.size > 0 };
  const values: unknown[] = [];
  if (f.names) values.push(request.names);
  if (f.exclude) values.push([...exclude]);
  return { f, values };
}

function oneSql(n: PgNames, f: Filters): string {
  const cacheKey = `${n.schema}|weighted-one|${f.names}|${f.exclude}`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const { where, next } = filterSql(f, 5);
  const r = `$${next}::float8`;
  const pick = `g AS (
      SELECT weight, count(*)::float8 AS cnt FROM ${n.tasks} WHERE ${where} GROUP BY weight
    ), cum AS (
      SELECT weight, sum(weight * cnt) OVER (ORDER BY weight ROWS UNBOUNDED PRECEDING) AS running FROM g
    ), total AS (
      SELECT running AS total FROM cum ORDER BY weight DESC LIMIT 1
    ), drawn AS (
      SELECT coalesce(
        (SELECT cum.weight FROM cum WHERE ${r} * total.total < cum.running ORDER BY cum.weight LIMIT 1),
        (SELECT max(weight) FROM cum)
      ) AS weight
      FROM total WHERE total.total > 0
    ), c AS (
      SELECT id, state AS prev, ctid AS tid FROM ${n.tasks}
      WHERE ${where} AND weight = (SELECT weight FROM drawn)
      ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
    )`;
  const tail = `SELECT (SELECT count(*) FROM g) AS classes, (SELECT weight FROM drawn) AS drawn, u.*
    FROM (SELECT 1) AS one LEFT JOIN u ON true`;
  sql = startSql(n, pick, 'run_at, id', tail);
  cache.set(cacheKey, sql);
  return sql;
}

/**
 * Why: a weighted claim of one task in one round trip. Returns undefined when the drawn class was entirely held
 * by other nodes, so the caller should run `claimWeighted` instead.
 */
export async function claimWeightedOne(db: Queryable, n: PgNames, draws: Draws, request: ClaimRequest): Promise<TaskRecord[] | undefined> {
  const { f, values } = filtersOf(request);
  const r = draws.next();
  const { rows } = await run<StartRow & { classes: number; drawn: number | null }>(db, oneSql(n, f), [
    request.now, 1, request.owner, request.now + request.leaseMs, ...values, r,
  ]);
  const row = rows[0]!;
  if (Number(row.classes) === 0) {
    draws.putBack(r);
    return [];
  }
  if (row.id !== null) return [startedTaskFromRow(row, request.now, request.owner, request.now + request.leaseMs)];
  return row.drawn === null ? [] : undefined;
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

function idsClaimSql(n: PgNames): string {
  const cacheKey = `${n.schema}|ids`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const pick = `c AS (
    SELECT t.id, t.state AS prev, t.ctid AS tid FROM ${n.tasks} AS t WHERE t.id = ANY($5::text[]) AND ${DUE_BY_ID}
    LIMIT $2 FOR UPDATE SKIP LOCKED
  )`;
  sql = startSql(n, pick, 'id');
  cache.set(cacheKey, sql);
  return sql;
}

interface Candidate {
  id: string;
  name: string;
  weight: number;
  run_at: number;
  priority: number;
  cnt: number;
}

interface Group {
  count: number;
  queue: Candidate[];
  next: number;
}

/** Why: the weighted claim of many tasks; `client` must be inside a transaction (the candidate locks last until commit). */
export async function claimWeighted(client: Queryable, n: PgNames, draws: Draws, request: ClaimRequest): Promise<TaskRecord[]> {
  const limit = Math.floor(request.limit);
  if (!(limit > 0)) return [];
  const { f, values } = filtersOf(request);
  const caps = new Map<string, number>(Object.entries(request.perName ?? {}));
  const { rows } = await run<Candidate>(client, candidatesSql(n, f), [request.now, limit, ...values]);
  // weight → name → the group's due count and its oldest available rows, in claim order.
  const groups = new Map<number, Map<string, Group>>();
  for (const r of rows) {
    let byName = groups.get(r.weight);
    if (!byName) groups.set(r.weight, (byName = new Map()));
    let g = byName.get(r.name);
    if (!g) byName.set(r.name, (g = { count: r.cnt, queue: [], next: 0 }));
    g.queue.push(r);
  }
  // Fewer available than asked for: the rest of the group is held by other nodes.
  for (const byName of groups.values()) for (const g of byName.values()) if (g.queue.length < limit) g.count = g.queue.length;
  const weights = [...groups.keys()].sort((a, b) => a - b);
  const open = (name: string): boolean => (caps.get(name) ?? 1) > 0;
  const chosen: string[] = [];
  while (chosen.length < limit) {
    const classes: WeightClass[] = weights.map((weight) => {
      let count = 0;
      for (const [name, g] of groups.get(weight)!) if (open(name)) count += g.count;
      return { weight, count };
    });
    // Nothing left to draw from: stop without spending a random value (the SQLite store does the same).
    if (!classes.some((c) => c.count > 0)) break;
    const index = pickWeightClass(classes, draws.next());
    if (index < 0) break;
    let best: { name: string; g: Group } | undefined;
    for (const [name, g] of groups.get(weights[index]!)!) {
      if (!open(name) || g.next >= g.queue.length) continue;
      if (!best || compareByTime(toKey(g.queue[g.next]!), toKey(best.g.queue[best.g.next]!)) < 0) best = { name, g };
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
  return started.map((row) => startedTaskFromRow(row, request.now, request.owner, request.now + request.leaseMs)).sort((a, b) => position.get(a.id)! - position.get(b.id)!);
}

function toKey(c: Candidate): { id: string; runAt: number; priority: number } {
  return { id: c.id, runAt: c.run_at, priority: c.priority };
}
