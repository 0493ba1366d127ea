/**
 * The gated claim: claims under group concurrency, rate limits and paused groups (claim-gate.ts), in the
 * caller's transaction, exact across nodes.
 *
 * Due rows are selected in strategy order with `FOR UPDATE SKIP LOCKED`, leaving out the gate's excluded names,
 * paused groups and blocked `name \x1f group` pairs. Before the first row of a limited name is admitted, the
 * claim takes a transaction-scoped advisory lock on that name (`pg_try_advisory_xact_lock`) and only then reads
 * its counts (running tasks per group, recent starts in `rate_events`): every node that claims the name does the
 * same, so counts and starts of one name are read and written by one transaction at a time, and nothing is
 * over-admitted across nodes. A lock held by another node is not waited for (no waits, no deadlock between
 * nodes locking names in different orders): the name is left out of this claim and the caller is told to try
 * again shortly (`onHeldBack`).
 *
 * Admitted rows start through the same statement as every claim (claim.ts `startSql`); one start per task of a
 * rate-limited name goes to `rate_events`, and the locked names' events out of their window are deleted, before
 * the commit.
 */
import { ClaimGate } from '../../claim-gate.ts';
import { pickWeightClass, type WeightClass } from '../../pick.ts';
import type { ClaimRequest, Strategy } from '../../store.ts';
import type { TaskRecord } from '../../../task.ts';
import { startedTaskFromRow } from '../../task-row.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';
import { DUE, DUE_BY_ID, cache, startSql, type StartRow } from './claim.ts';
import type { Draws } from './claim-weighted.ts';

/** The first int4 of the per-name claim locks ("trp2"); the second is `hashtext(schema:name)`. */
const NAME_LOCK_CLASS = 0x74727032;

const ORDER: Record<Strategy, string> = {
  fifo: 'run_at ASC, id ASC',
  lifo: 'run_at DESC, id DESC',
  priority: 'priority DESC, run_at ASC, id ASC',
  'weighted-random': 'run_at ASC, id ASC',
};

/** $1 now, then names (or NULL), excluded names, paused groups, blocked pairs. */
const GATED = `${DUE}
  AND ($2::text[] IS NULL OR name = ANY($2::text[])) AND name <> ALL($3::text[])
  AND (grp IS NULL OR grp <> ALL($4::text[])) AND (name || chr(31) || coalesce(grp, '')) <> ALL($5::text[])`;

function cached(key: string, build: () => string): string {
  let sql = cache.get(key);
  if (!sql) cache.set(key, (sql = build()));
  return sql;
}

const candidatesSql = (n: PgNames, strategy: Strategy): string =>
  cached(`${n.schema}|gated|${strategy}`, () => `SELECT id, name, grp FROM ${n.tasks} WHERE ${GATED}
    ORDER BY ${ORDER[strategy]} LIMIT $6 FOR UPDATE SKIP LOCKED`);

const classesSql = (n: PgNames): string =>
  cached(`${n.schema}|gated|classes`, () => `SELECT weight, count(*)::int AS n FROM ${n.tasks} WHERE ${GATED} GROUP BY weight`);

const oldestSql = (n: PgNames): string =>
  cached(`${n.schema}|gated|oldest`, () => `SELECT id, name, grp FROM ${n.tasks} WHERE ${GATED} AND weight = $6
    ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`);

const startIdsSql = (n: PgNames): string =>
  cached(`${n.schema}|gated|start`, () =>
    startSql(n, `c AS (SELECT t.id, t.state AS prev, t.ctid AS tid FROM ${n.tasks} AS t WHERE t.id = ANY($5::text[]) AND ${DUE_BY_ID} LIMIT $2 FOR UPDATE)`, 'id'),
  );

interface Candidate {
  id: string;
  name: string;
  grp: string | null;
}

/** Why: exact per-group and per-window limits for many nodes claiming one schema. */
export async function claimGated(
  client: Queryable,
  n: PgNames,
  strategy: Strategy,
  draws: Draws,
  request: ClaimRequest,
): Promise<TaskRecord[]> {
  const limit = Math.floor(request.limit);
  const out: TaskRecord[] = [];
  if (!(limit > 0)) return out;
  const gate = new ClaimGate(request);
  const now = request.now;
  /** Names this transaction holds the lock of: only their events are pruned (no row-lock waits between nodes). */
  const locked: string[] = [];
  const filters = (): unknown[] => [now, request.names ? [...request.names] : null, [...gate.excludedNames], [...gate.excludedGroups], [...gate.blockedPairs]];

  /** Locks and loads a limited name before its first row is admitted; false when another node holds it. */
  const ready = async (name: string): Promise<boolean> => {
    if (!gate.needsCounts(name)) return true;
    const { rows } = await run<{ ok: boolean }>(client, 'SELECT pg_try_advisory_xact_lock($1::int4, hashtext($2)) AS ok', [NAME_LOCK_CLASS, `${n.schema}:${name}`]);
    if (!rows[0]?.ok) {
      gate.unavailable(name);
      return false;
    }
    locked.push(name);
    const running = new Map<string, number>();
    if (request.groupLimits?.[name] !== undefined) {
      const r = await run<{ grp: string; n: number }>(
        client,
        `SELECT grp, count(*)::int AS n FROM ${n.tasks} WHERE state = 'running' AND name = $1 AND grp IS NOT NULL GROUP BY grp`,
        [name],
      );
      for (const row of r.rows) running.set(row.grp, row.n);
    }
    const recent = new Map<string, { n: number; oldest: number }>();
    const rate = gate.rateOf(name);
    if (rate) {
      const r = await run<{ grp: string; n: number; oldest: number }>(
        client,
        `SELECT grp, count(*)::int AS n, min(at) AS oldest FROM ${n.rateEvents} WHERE name = $1 AND at > $2 GROUP BY grp`,
        [name, now - rate.perMs],
      );
      for (const row of r.rows) recent.set(row.grp, { n: row.n, oldest: row.oldest });
    }
    gate.load(name, { running, recent });
    return true;
  };

  const start = async (ids: string[]): Promise<void> => {
    if (ids.length === 0) return;
    const { rows } = await run<StartRow>(client, startIdsSql(n), [now, ids.length, request.owner, now + request.leaseMs, ids]);
    const position = new Map(ids.map((id, i) => [id, i]));
    out.push(...rows.map((row) => startedTaskFromRow(row, now, request.owner, now + request.leaseMs)).sort((a, b) => position.get(a.id)! - position.get(b.id)!));
  };

  if (strategy === 'weighted-random') {
    let counts: Map<number, number> | undefined;
    while (out.length < limit) {
      counts ??= new Map((await run<{ weight: number; n: number }>(client, classesSql(n), filters())).rows.map((c) => [c.weight, c.n]));
      const classes: WeightClass[] = [...counts].map(([weight, count]) => ({ weight, count })).sort((a, b) => a.weight - b.weight);
      if (!classes.some((c) => c.count > 0)) break;
      const index = pickWeightClass(classes, draws.next());
      if (index < 0) break;
      const weight = classes[index]!.weight;
      const { rows } = await run<Candidate>(client, oldestSql(n), [...filters(), weight]);
      const row = rows[0];
      if (!row) {
        counts.delete(weight);
        continue;
      }
      if ((await ready(row.name)) && gate.admit(row.name, row.grp ?? undefined)) {
        await start([row.id]);
        counts.set(weight, (counts.get(weight) ?? 1) - 1);
      }
      if (gate.takeChanged()) counts = undefined;
    }
  } else {
    for (;;) {
      const want = limit - out.length;
      const { rows } = await run<Candidate>(client, candidatesSql(n, strategy), [...filters(), want]);
      const chosen: string[] = [];
      for (const row of rows) if ((await ready(row.name)) && gate.admit(row.name, row.grp ?? undefined)) chosen.push(row.id);
      await start(chosen);
      if (!gate.takeChanged() || rows.length < want || out.length >= limit) break;
    }
  }

  if (gate.starts.length > 0) {
    await run(client, `INSERT INTO ${n.rateEvents} (name, grp, at) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])`, [
      gate.starts.map((s) => s.name), gate.starts.map((s) => s.group), gate.starts.map((s) => s.at),
    ]);
  }
  const rates = locked.flatMap((name) => {
    const rate = gate.rateOf(name);
    return rate ? [[name, rate] as const] : [];
  });
  if (rates.length > 0) {
    await run(
      client,
      `DELETE FROM ${n.rateEvents} AS e USING unnest($1::text[], $2::bigint[]) AS w(name, upto) WHERE e.name = w.name AND e.at <= w.upto`,
      [rates.map(([name]) => name), rates.map(([, r]) => now - r.perMs)],
    );
  }
  gate.finish(out.length);
  return out;
}
