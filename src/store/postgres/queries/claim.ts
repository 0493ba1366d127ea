/**
 * claim: lease due tasks in strategy order, in one statement.
 *
 *   WITH c AS (SELECT id, ctid AS tid … ORDER BY <strategy> LIMIT $n FOR UPDATE SKIP LOCKED)
 *   UPDATE tasks … FROM c WHERE t.ctid = c.tid RETURNING …   the transitions appended to each row's history
 *                                                           (history-line.ts)
 *
 * The update finds the picked rows by their `ctid` (a TID scan, whatever the statistics say), not by id. Why: the
 * id join ran as a nested loop of primary-key lookups, each with the redundant `t.id = ANY(ARRAY(SELECT id FROM
 * c))` that had to keep the plan off a scan of the table: B-tree array keys are sorted again on every rescan, so
 * 64 lookups sorted the 64 ids 64 times. A row's `ctid` is stable while this statement holds its lock. One case
 * differs from the id join: when a row was changed by a transaction that committed after this statement's
 * snapshot but before its lock, and is still due, the lock is taken on the new version, which the update's
 * snapshot cannot see; that row is then left `queued` for the next claim (its lock ends with the statement), as
 * a row locked by another node is. Measured (`bench/pg-phases.ts`, claims of 64 from 20,000 queued, four
 * alternating pairs of two rounds): server CPU per task, median 51 → 43 µs.
 *
 * `SKIP LOCKED` lets many nodes claim at once without waiting on (or double-taking) each other's rows.
 *
 * With a name list (every node passes the names it has registered), the claim is one locked sub-select per
 * allowed name (a LATERAL over `unnest(names, caps)`), each an ordered scan of the strategy's name-leading index
 * (migrations.ts, `tasks_due_name_*`) stopping at `least(cap, $n)`; the union is cut back to `$n` in strategy
 * order, and rows locked but not taken are released when the statement (its transaction) ends. Why: a single
 * scan filtered by `name = ANY(…)` is planned from default estimates on a table not yet analysed (every fresh
 * schema) as a bitmap AND of two indexes, a heap scan of every due row and a sort: 3–50 ms per claim at 10,000
 * due rows instead of well under 1 ms. Excluded names and names capped at 0 are dropped from the list here.
 *
 * Without a name list, one ordered scan of the strategy's index; per-name caps then add one locked sub-select
 * per capped name, as above.
 *
 * The claim's transaction does not wait for the WAL flush (`claimTail`).
 *
 * A `scheduled`/`retrying` task that is claimed first records `→ queued` (reason `due`), then `queued → running`,
 * exactly as the other stores do.
 *
 * weighted-random lives in claim-weighted.ts.
 */
import type { ClaimRequest, Strategy } from '../../store.ts';
import type { TaskRecord } from '../../../task.ts';
import { lineSql } from '../history-line.ts';
import { TASK_COLUMNS } from '../rows.ts';
import { startedTaskFromRow, type StartedRow } from '../../task-row.ts';
import { STATE_BY_ID, run, type PgNames, type Queryable } from '../sql.ts';

/**
 * Due: `queued`, or `scheduled`/`retrying` whose time has come (pick.ts). Written so that the planner walks the
 * strategy's partial index (predicate: the three claimable states) in order and filters, stopping at the limit.
 */
export function dueSql(now: string): string {
  return `state IN ('queued', 'scheduled', 'retrying') AND (state = 'queued' OR run_at <= ${now})`;
}

/** `dueSql` with the claims' time parameter, `$1`. */
export const DUE = dueSql('$1');

/** `DUE` as a test of rows found by id (`id = ANY(…)`), which must not bring in a claim index (sql.ts `STATE_BY_ID`). */
export const DUE_BY_ID = `${STATE_BY_ID} IN ('queued', 'scheduled', 'retrying') AND (${STATE_BY_ID} = 'queued' OR t.run_at <= $1)`;

const ORDER: Record<Strategy, string> = {
  fifo: 'run_at ASC, id ASC',
  lifo: 'run_at DESC, id DESC',
  priority: 'priority DESC, run_at ASC, id ASC',
  'weighted-random': 'run_at ASC, id ASC',
};

/**
 * The strategy orders inside each per-name scan, written as the name-leading indexes' expressions
 * (`(run_at + 0)`, `(-priority)`, migrations.ts) so that only those indexes yield them. Why: with plain columns
 * the strategy's global index gives the same order, and once statistics exist the planner may walk it filtering
 * by name: every due row of the other names, for each name that has none.
 */
const BY_NAME: Record<Exclude<Strategy, 'weighted-random'>, string> = {
  fifo: '(run_at + 0) ASC, id ASC',
  lifo: '(run_at + 0) DESC, id DESC',
  priority: '(-priority) ASC, run_at ASC, id ASC',
};

export interface Filters {
  names: boolean;
  exclude: boolean;
}

/** Parameters: $1 now, $2 limit, $3 owner, $4 lease until, then names, exclude, capped names, caps as present. */
export function filterSql(f: Filters, firstParam: number): { where: string; next: number } {
  let p = firstParam;
  let where = DUE;
  if (f.names) where += ` AND name = ANY($${p++}::text[])`;
  if (f.exclude) where += ` AND name <> ALL($${p++}::text[])`;
  return { where, next: p };
}

/**
 * The statement that starts every task in `c` (a CTE the caller writes, with `id`, `prev` and the locked row's
 * `ctid AS tid`), appends the
 * transitions to each row's history, and ends with `tail` (by default: the started rows in claim order).
 */
export function startSql(n: PgNames, pick: string, order: string, tail = `SELECT * FROM u ORDER BY ${order}`): string {
  return `
    WITH ${pick},
    u AS (
      UPDATE ${n.tasks} AS t
      SET state = 'running', attempts = t.attempts + 1, owner = $3, lease_until = $4, started_at = $1,
          updated_at = $1, progress = NULL,
          history = t.history
            || CASE WHEN c.prev = 'queued' THEN '' ELSE ${lineSql({ from: { sql: 'c.prev' }, to: 'queued', at: '$1', attempt: 't.attempts', reason: 'due' })} END
            || ${lineSql({ from: 'queued', to: 'running', at: '$1', attempt: 't.attempts + 1' })}
      FROM c WHERE t.ctid = c.tid AND t.ctid = ANY(ARRAY(SELECT tid FROM c))
      RETURNING ${STARTED_COLUMNS}, c.prev
    )
    ${tail}`;
}

/**
 * The tail of the one-statement claims: the started rows in claim order, with `synchronous_commit` off for the
 * claim's own (implicit) transaction only. Why: a claim is the one write whose loss on a server crash costs
 * nothing but a rerun: an unflushed claim rolls back to `queued` (the task runs again, as after a lost lease),
 * and any later durable commit (the settle) flushes the WAL before it, claim included. Not waiting for the flush
 * saves a WAL fsync per claim round trip (≈0.5 ms idle, more on a busy disk).
 */
export function claimTail(order: string): string {
  return `SELECT u.* FROM u, (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit ORDER BY ${order}`;
}

/** Statement texts per (schema, shape), built once. */
export const cache = new Map<string, string>();

function orderedClaimSql(n: PgNames, strategy: Strategy, f: Filters, capped: boolean): string {
  const cacheKey = `${n.schema}|${strategy}|${f.names}|${f.exclude}|${capped}`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const order = ORDER[strategy];
  const { where, next } = filterSql(f, 5);
  let pick: string;
  if (!capped) {
    pick = `c AS (
      SELECT id, state AS prev, ctid AS tid FROM ${n.tasks} WHERE ${where}
      ORDER BY ${order} LIMIT $2 FOR UPDATE SKIP LOCKED
    )`;
  } else {
    const capNames = `$${next}::text[]`;
    const caps = `$${next + 1}::int[]`;
    pick = `free AS (
      SELECT id, state AS prev, ctid AS tid, run_at, priority FROM ${n.tasks} WHERE ${where} AND name <> ALL(${capNames})
      ORDER BY ${order} LIMIT $2 FOR UPDATE SKIP LOCKED
    ), capped AS (
      SELECT x.* FROM unnest(${capNames}, ${caps}) AS cap(name, n)
      CROSS JOIN LATERAL (
        SELECT id, state AS prev, ctid AS tid, run_at, priority FROM ${n.tasks} WHERE ${where} AND name = cap.name
        ORDER BY ${order} LIMIT least(cap.n, $2) FOR UPDATE SKIP LOCKED
      ) AS x
    ), c AS (
      SELECT id, prev, tid FROM (SELECT * FROM free UNION ALL SELECT * FROM capped) AS both_sets
      ORDER BY ${order} LIMIT $2
    )`;
  }
  sql = startSql(n, pick, order, claimTail(order));
  cache.set(cacheKey, sql);
  return sql;
}

/** The claim with a name list. Parameters: $1 now, $2 limit, $3 owner, $4 lease until, $5 names, $6 each name's cap. */
export function namedClaimSql(n: PgNames, strategy: Exclude<Strategy, 'weighted-random'>): string {
  const cacheKey = `${n.schema}|${strategy}|named`;
  let sql = cache.get(cacheKey);
  if (sql) return sql;
  const order = ORDER[strategy];
  const pick = `c AS (
      SELECT x.id, x.prev, x.tid FROM unnest($5::text[], $6::int[]) AS allowed(name, cap)
      CROSS JOIN LATERAL (
        SELECT id, state AS prev, ctid AS tid, run_at, priority FROM ${n.tasks} WHERE ${DUE} AND name = allowed.name
        ORDER BY ${BY_NAME[strategy]} LIMIT least(allowed.cap, $2) FOR UPDATE SKIP LOCKED
      ) AS x
      ORDER BY ${order} LIMIT $2
    )`;
  sql = startSql(n, pick, order, claimTail(order));
  cache.set(cacheKey, sql);
  return sql;
}

/** The names a claim may take and each one's cap: `names` minus `exclude`, deduplicated, caps of 0 dropped. */
export function allowedNames(request: ClaimRequest, limit: number): { names: string[]; caps: number[] } {
  const excluded = new Set(request.exclude ?? []);
  const perName = request.perName ?? {};
  const names: string[] = [];
  const caps: number[] = [];
  for (const name of new Set(request.names ?? [])) {
    if (excluded.has(name)) continue;
    const raw = Object.hasOwn(perName, name) ? perName[name]! : limit;
    const cap = Math.min(limit, Math.max(0, Math.floor(raw)));
    if (!(cap > 0)) continue;
    names.push(name);
    caps.push(cap);
  }
  return { names, caps };
}

/**
 * What a start returns of each row: `TASK_COLUMNS` but the ones it set itself (task-row.ts `StartedRow`). Why:
 * parsing the rows a claim returns was ≈22 % of a draining node's main-thread samples, a third of its busy time
 * (pg's `parseRow`, its buffer slices and UTF-8 decoding, field by field); the owner alone is 40–60 characters.
 */
const SET_BY_START = ['state', 'progress', 'started_at', 'updated_at', 'owner', 'lease_until'];
const STARTED_COLUMNS = TASK_COLUMNS.split(', ')
  .filter((c) => !SET_BY_START.some((k) => c === `t.${k}` || c.endsWith(` AS ${k}`)))
  .join(', ');

/** A started row: the task without the columns the start set, plus the state it was claimed from. */
export type StartRow = StartedRow & { prev: string };


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
  const leaseUntil = request.now + request.leaseMs;
  const started = (row: StartRow): TaskRecord => startedTaskFromRow(row, request.now, request.owner, leaseUntil);
  const head: unknown[] = [request.now, limit, request.owner, leaseUntil];
  if (request.names !== undefined) {
    const { names, caps } = allowedNames(request, limit);
    if (names.length === 0) return [];
    const { rows } = await run<StartRow>(db, namedClaimSql(n, strategy), [...head, names, caps]);
    return rows.map(started);
  }
  const f: Filters = { names: false, exclude: request.exclude !== undefined && request.exclude.length > 0 };
  const filterValues: unknown[] = [];
  if (f.exclude) filterValues.push(request.exclude);

  const caps = Object.entries(request.perName ?? {});
  const sql = orderedClaimSql(n, strategy, f, caps.length > 0);
  const values = [...head, ...filterValues];
  if (caps.length > 0) values.push(caps.map(([name]) => name), caps.map(([, cap]) => Math.max(0, Math.floor(cap))));
  const { rows } = await run<StartRow>(db, sql, values);
  return rows.map(started);
}
