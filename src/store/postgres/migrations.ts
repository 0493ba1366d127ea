/**
 * Ordered schema migrations for the PostgreSQL store, one schema per store.
 *
 * Many nodes may start at once against one database, so `migrate` runs in one transaction that first takes a
 * transaction-scoped advisory lock keyed on the schema name: the first node creates or upgrades the schema, the
 * others wait on the lock and then find nothing left to do. `CREATE SCHEMA IF NOT EXISTS` alone is not safe
 * under concurrency (two sessions can both decide to create it), hence the lock before it.
 *
 * Indexes follow the SQLite store's measurements: every index costs each write of a row (PostgreSQL updates a
 * task non-HOT, so each index gets a new entry), hence partial indexes where a state narrows the rows, and the
 * claim indexes of a strategy (name-leading, priority, weighted-random) only for a store that uses that strategy
 * (`ensureStrategyIndex`, looked up in the catalog first, so opening an existing schema takes no table lock).
 * Switching a big table to another strategy, or opening a schema written before the name-leading indexes, builds
 * the missing index inside the migration transaction, blocking writes meanwhile.
 *
 * Migration 2 (groups, dedup, flows, rate limits) counts a flow child's end in its parent with a row trigger, so
 * every verb that ends a task (settle, cancel, lease recovery, and any written later) does it in its own statement
 * and transaction: the trigger fires only for a child (`parent_id`) entering a final state. A parent failed by its
 * child is itself such a child, so nested flows cascade. The trigger notifies `<schema>_flow` with the change and
 * `<schema>_wake` when a parent became due.
 *
 * A database whose recorded version is newer than the last migration here was written by newer code: opening it
 * fails with STORE_VERSION rather than guessing at a schema this code does not know.
 */
import type { PoolClient } from 'pg';
import { ErrorCodes, TroupeError } from '../../errors.ts';
import type { Strategy } from '../store.ts';
import { lineSql, transitionsViewSql } from './history-line.ts';
import type { PgNames } from './sql.ts';

export interface Migration {
  version: number;
  /** Statements, run in order inside the migration transaction. */
  up: (n: PgNames) => string[];
}

/** The first int4 of the two-key advisory lock; the second is `hashtext(schema)`. Spells "trp1". */
const LOCK_CLASS = 0x74727031;

const CLAIMABLE = `state IN ('queued', 'scheduled', 'retrying')`;
const FINAL = `('succeeded', 'failed', 'timed_out', 'cancelled')`;

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    up: (n) => [
      `CREATE TABLE ${n.tasks} (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL,
        state text NOT NULL,
        input jsonb,
        result jsonb,
        error jsonb,
        priority double precision NOT NULL DEFAULT 0,
        weight double precision NOT NULL DEFAULT 1,
        key text,
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL DEFAULT 1,
        progress jsonb,
        created_at bigint NOT NULL,
        run_at bigint NOT NULL,
        started_at bigint,
        finished_at bigint,
        updated_at bigint NOT NULL,
        owner text,
        lease_until bigint,
        schedule_id text,
        options jsonb,
        output_count integer NOT NULL DEFAULT 0,
        output_dropped integer NOT NULL DEFAULT 0,
        output_last_seq bigint,
        output_marker_seq bigint
      )`,
      `CREATE UNIQUE INDEX tasks_key ON ${n.tasks} (key) WHERE key IS NOT NULL`,
      `CREATE INDEX tasks_due_time ON ${n.tasks} (run_at, id) WHERE ${CLAIMABLE}`,
      `CREATE INDEX tasks_waiting ON ${n.tasks} (run_at) WHERE state IN ('scheduled', 'retrying')`,
      `CREATE INDEX tasks_running ON ${n.tasks} (owner, lease_until) WHERE state = 'running'`,
      `CREATE INDEX tasks_dead ON ${n.tasks} (state, id) WHERE state IN ('failed', 'timed_out', 'cancelled')`,
      `CREATE INDEX tasks_name ON ${n.tasks} (name, id)`,
      `CREATE INDEX tasks_schedule ON ${n.tasks} (schedule_id, id) WHERE schedule_id IS NOT NULL`,
      `CREATE TABLE ${n.transitions} (
        seq bigserial PRIMARY KEY,
        task_id text COLLATE "C" NOT NULL,
        from_state text,
        to_state text NOT NULL,
        at bigint NOT NULL,
        attempt integer NOT NULL,
        reason text,
        error jsonb
      )`,
      `CREATE INDEX transitions_task ON ${n.transitions} (task_id, seq)`,
      `CREATE TABLE ${n.output} (
        task_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        stream text NOT NULL,
        text text NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (task_id, seq)
      )`,
      `CREATE TABLE ${n.schedules} (
        id text COLLATE "C" PRIMARY KEY,
        task text NOT NULL,
        cron text,
        every_ms bigint,
        timezone text,
        input jsonb,
        overlap text NOT NULL,
        paused boolean NOT NULL DEFAULT false,
        last_slot bigint,
        created_at bigint NOT NULL
      )`,
      `CREATE TABLE ${n.meta} (key text PRIMARY KEY, value text NOT NULL)`,
    ],
  },
  {
    version: 2,
    up: (n) => [
      `ALTER TABLE ${n.tasks} ADD COLUMN grp text, ADD COLUMN dedup_key text, ADD COLUMN parent_id text COLLATE "C",
         ADD COLUMN flow_pending integer, ADD COLUMN flow_policy text`,
      `CREATE INDEX tasks_parent ON ${n.tasks} (parent_id, id) WHERE parent_id IS NOT NULL`,
      `CREATE INDEX tasks_dedup ON ${n.tasks} (name, dedup_key, created_at DESC, id DESC) WHERE dedup_key IS NOT NULL`,
      `CREATE INDEX tasks_group ON ${n.tasks} (grp, id) WHERE grp IS NOT NULL`,
      `CREATE TABLE ${n.rateEvents} (name text NOT NULL, grp text NOT NULL, at bigint NOT NULL)`,
      `CREATE INDEX rate_events_name ON ${n.rateEvents} (name, at)`,
      flowFunctionSql(n, 2),
      `CREATE TRIGGER tasks_flow_child_final AFTER UPDATE OF state ON ${n.tasks} FOR EACH ROW
         WHEN (NEW.parent_id IS NOT NULL AND NEW.state IN ${FINAL} AND OLD.state NOT IN ${FINAL})
         EXECUTE FUNCTION ${n.flowFunction}()`,
    ],
  },
  {
    // Why: nothing reads transitions by `seq` alone (history and purge go through `transitions_task`), and the
    // primary key was one more index entry for every transition written (2–3 per task run).
    version: 3,
    up: (n) => [`ALTER TABLE ${n.transitions} DROP CONSTRAINT IF EXISTS transitions_pkey`],
  },
  {
    // Why: a transition is a line appended to the task's row by the statement that changes the row, instead of a
    // row (and an index entry) of its own in `transitions` (history-line.ts has the format and the measurement).
    // Stored transitions move into their tasks' rows in order; the table becomes a view of the lines.
    version: 4,
    up: (n) => [
      `ALTER TABLE ${n.tasks} ADD COLUMN history text NOT NULL DEFAULT ''`,
      `UPDATE ${n.tasks} AS t SET history = h.lines
         FROM (
           SELECT task_id, string_agg(${lineSql({ from: { sql: 'from_state' }, to: { sql: 'to_state' }, at: 'at', attempt: 'attempt', reason: { sql: 'reason' }, error: 'error' })}, '' ORDER BY seq) AS lines
           FROM ${n.transitions} GROUP BY task_id
         ) AS h
         WHERE t.id = h.task_id`,
      `DROP TABLE ${n.transitions}`,
      transitionsViewSql(n.tasks, n.transitions),
      flowFunctionSql(n, 4),
    ],
  },
  {
    // Why: a claim writes a new version of each row it starts, and every index that covers the new version gets
    // an entry; `tasks_name` covered all of them. It serves only the task list filtered by name (list.ts), whose
    // running tasks are few and read through `tasks_running`. bench/pg-phases.ts (claims of 64 from 20,000
    // queued), four alternating pairs of two rounds: the claim's server CPU per task, median 38 → 30 µs.
    version: 5,
    // An index already built that way (by hand, `CREATE INDEX CONCURRENTLY` and a rename) is kept.
    up: (n) => [
      // The predicate is read for this one index only (pg_indexes would deparse every index of the database,
      // some of them perhaps being dropped meanwhile by other sessions).
      `DO $m$ DECLARE ix regclass := to_regclass('"${n.schema}".tasks_name'); BEGIN
        IF ix IS NULL OR NOT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = ix
                                       AND pg_get_expr(indpred, indrelid) = '(state <> ''running''::text)') THEN
          DROP INDEX IF EXISTS "${n.schema}".tasks_name;
          CREATE INDEX tasks_name ON ${n.tasks} (name, id) WHERE state <> 'running';
        END IF;
      END $m$`,
    ],
  },
  {
    // Why: a flow parent no longer waiting (failed by a child, cancelled) kept the count of children it had when it
    // stopped waiting; its children now count it down as src/flow.ts says, so `flow.pending` stays true.
    version: 6,
    up: (n) => [flowFunctionSql(n, 6)],
  },
  {
    // Why: output is kept within bytes as well as lines (queries/output-append.ts), so a task row counts the bytes
    // of the lines it keeps. Rows already stored start at what their lines hold (the marker is not counted), so
    // the byte cap applies to a task that goes on printing (a retry, say) from what it has.
    version: 7,
    up: (n) => [
      `ALTER TABLE ${n.tasks} ADD COLUMN output_bytes bigint NOT NULL DEFAULT 0`,
      `UPDATE ${n.tasks} AS t SET output_bytes = o.bytes
         FROM (SELECT task_id, sum(octet_length(text)) AS bytes FROM ${n.output} WHERE stream <> 'marker' GROUP BY task_id) AS o
         WHERE t.id = o.task_id`,
    ],
  },
  {
    // Why: runs lost to an expired lease, so that the first one adds an attempt instead of using one up
    // (src/store/pick.ts, decideExpiredLease). A default of 0 is a catalog change only: no row is rewritten.
    version: 8,
    up: (n) => [`ALTER TABLE ${n.tasks} ADD COLUMN lease_losses integer NOT NULL DEFAULT 0`],
  },
  {
    // Why: `countFinished` (log-statistics' throughput) and purge (cleanup-runs) select tasks by finish time, and
    // without an index read the whole table: 305,000 tasks, 100,000 of them finished in the last hour, counted in
    // 270–320 ms by a parallel seq scan, 50–80 ms through this index (its generic plan), and a 10-minute window in
    // 6 ms. Partial, as SQLite's `tasks_finished`: a task gets its one entry when it ends, none at enqueue or claim
    // (a plain index would take an entry for each of the three row versions). Every statement that sets
    // `finished_at` also changes `state`, so no update that was HOT stops being HOT.
    version: 9,
    // An index already built by hand under that name (`CREATE INDEX CONCURRENTLY`, on a large table) is kept.
    up: (n) => [`CREATE INDEX IF NOT EXISTS tasks_finished ON ${n.tasks} (finished_at) WHERE finished_at IS NOT NULL`],
  },
  {
    // Why: a node that awaits a task another node runs or may run marks it (`awaitEnd`), and the statement that ends
    // a marked task notifies `<schema>_ended`, so the waiter hears the end at once instead of at its next read (up
    // to 2 s later). No index: setting it changes no indexed column, so it is HOT wherever its page has room, and
    // it keeps no later update of the row from being HOT. Added without a default: no rewrite.
    version: 10,
    up: (n) => [`ALTER TABLE ${n.tasks} ADD COLUMN IF NOT EXISTS awaited boolean`],
  },
]);

/**
 * The flow rules of src/flow.ts (`decideFlowStep`, `createChildFailedError`) in PL/pgSQL. `at` is the child's
 * `updated_at`, which every verb sets to the time of the change. `version`: the schema version whose rules
 * the function follows: before 4 it writes the `transitions` table, from 4 the task's `history` line; from 6 a
 * parent no longer waiting is still counted down (its `flow_pending` stays true).
 */
function flowFunctionSql(n: PgNames, version: 2 | 4 | 6): string {
  const failed =
    version === 2
      ? `UPDATE ${n.tasks} SET state = 'failed', flow_pending = p.flow_pending - 1, error = err, finished_at = NEW.updated_at,
          updated_at = NEW.updated_at WHERE id = p.id;
        INSERT INTO ${n.transitions} (task_id, from_state, to_state, at, attempt, reason, error)
          VALUES (p.id, 'scheduled', 'failed', NEW.updated_at, p.attempts, 'child failed', err);`
      : `UPDATE ${n.tasks} SET state = 'failed', flow_pending = p.flow_pending - 1, error = err, finished_at = NEW.updated_at,
          updated_at = NEW.updated_at,
          history = history || ${lineSql({ from: 'scheduled', to: 'failed', at: 'NEW.updated_at', attempt: 'p.attempts', reason: { sql: `'child failed'` }, error: 'err' })}
          WHERE id = p.id;`;
  const released =
    version === 2
      ? `UPDATE ${n.tasks} SET state = 'queued', flow_pending = 0, run_at = NEW.updated_at, updated_at = NEW.updated_at WHERE id = p.id;
        INSERT INTO ${n.transitions} (task_id, from_state, to_state, at, attempt, reason)
          VALUES (p.id, 'scheduled', 'queued', NEW.updated_at, p.attempts, 'children done');`
      : `UPDATE ${n.tasks} SET state = 'queued', flow_pending = 0, run_at = NEW.updated_at, updated_at = NEW.updated_at,
          history = history || ${lineSql({ from: 'scheduled', to: 'queued', at: 'NEW.updated_at', attempt: 'p.attempts', reason: 'children done' })}
          WHERE id = p.id;`;
  return `CREATE OR REPLACE FUNCTION ${n.flowFunction}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
      p record;
      err jsonb;
    BEGIN
      SELECT id, name, state, attempts, flow_pending, flow_policy INTO p FROM ${n.tasks} WHERE id = NEW.parent_id FOR UPDATE;
      IF NOT FOUND OR ${version < 6 ? `p.state <> 'scheduled' OR ` : ''}p.flow_pending IS NULL OR p.flow_pending <= 0 THEN
        RETURN NULL;
      END IF;${version < 6 ? '' : `
      IF p.state <> 'scheduled' THEN
        UPDATE ${n.tasks} SET flow_pending = p.flow_pending - 1 WHERE id = p.id;
        RETURN NULL;
      END IF;`}
      IF NEW.state <> 'succeeded' AND p.flow_policy = 'fail' THEN
        err := jsonb_build_object('name', 'TroupeError', 'message', format('Child task \`%s\` (%s) ended %s', NEW.name, NEW.id, NEW.state),
          'code', 'TROUPE_ERR_TASK_FAILED', 'details', jsonb_build_object('child', NEW.id, 'state', NEW.state), 'hint', 'permanent');
        ${failed}
        PERFORM pg_notify('${n.flowChannel}', json_build_object('type', 'flow.failed', 'id', p.id, 'name', p.name, 'at', NEW.updated_at, 'error', err)::text);
      ELSIF p.flow_pending <= 1 THEN
        ${released}
        PERFORM pg_notify('${n.wakeChannel}', '');
        PERFORM pg_notify('${n.flowChannel}', json_build_object('type', 'flow.released', 'id', p.id, 'name', p.name, 'at', NEW.updated_at)::text);
      ELSE
        UPDATE ${n.tasks} SET flow_pending = p.flow_pending - 1 WHERE id = p.id;
      END IF;
      RETURN NULL;
    END
  $fn$`;
}

interface StrategyIndex {
  name: string;
  sql: string;
}

/**
 * The partial indexes each strategy claims through, beyond `tasks_due_time` (the claim without a name list of
 * fifo and lifo). The name-leading ones serve the claim with a name list (claim.ts): one ordered scan per name
 * that stops at its limit, whatever the planner's estimates (a fresh schema has none). Their order columns are
 * expressions (`run_at + 0`, `-priority`) that the claim orders by, so no other index can serve that scan.
 */
const STRATEGY_INDEXES: Readonly<Record<Strategy, (n: PgNames) => StrategyIndex[]>> = Object.freeze({
  fifo: (n: PgNames) => [dueByNameAndTime(n)],
  lifo: (n: PgNames) => [dueByNameAndTime(n)],
  priority: (n: PgNames) => [
    { name: 'tasks_due_priority', sql: `CREATE INDEX tasks_due_priority ON ${n.tasks} (priority DESC, run_at, id) WHERE ${CLAIMABLE}` },
    {
      name: 'tasks_due_name_priority',
      sql: `CREATE INDEX tasks_due_name_priority ON ${n.tasks} (name, (-priority), run_at, id) WHERE ${CLAIMABLE}`,
    },
  ],
  'weighted-random': (n: PgNames) => [
    { name: 'tasks_due_weight', sql: `CREATE INDEX tasks_due_weight ON ${n.tasks} (weight, name, run_at, id) WHERE ${CLAIMABLE}` },
  ],
});

function dueByNameAndTime(n: PgNames): StrategyIndex {
  return { name: 'tasks_due_name_time', sql: `CREATE INDEX tasks_due_name_time ON ${n.tasks} (name, (run_at + 0), id) WHERE ${CLAIMABLE}` };
}

/** Why: a store pays on every write only for the claim indexes of its own strategy. */
async function ensureStrategyIndex(client: PoolClient, n: PgNames, strategy: Strategy): Promise<void> {
  const indexes = STRATEGY_INDEXES[strategy](n);
  const { rows } = await client.query<{ indexname: string }>(
    'SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname = ANY($2::text[])',
    [n.schema, indexes.map((i) => i.name)],
  );
  const present = new Set(rows.map((r) => r.indexname));
  for (const index of indexes) if (!present.has(index.name)) await client.query(index.sql);
}

/** The schema version this code writes. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Creates the schema if missing, applies every migration newer than the recorded version and the strategy's
 * index, under an advisory lock so concurrent nodes serialise. Returns the version now in place.
 */
export async function migrate(
  client: PoolClient,
  n: PgNames,
  strategy: Strategy,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number> {
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::int4, hashtext($2))', [LOCK_CLASS, n.schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${n.schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${n.version} (version integer PRIMARY KEY, applied_at bigint NOT NULL)`);
    const { rows } = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${n.version}`);
    const current = rows[0]?.version ?? 0;
    if (current === 0) {
      // No version recorded, yet a table of ours is there: the schema belongs to someone else.
      const { rows: found } = await client.query<{ tasks: string | null }>('SELECT to_regclass($1)::text AS tasks', [n.tasks]);
      if (found[0]?.tasks != null) {
        throw new TroupeError(
          ErrorCodes.STORE_CORRUPT,
          `Schema "${n.schema}" holds a table "tasks" that troupe did not create (no schema version is recorded); it was left untouched. Give troupe a schema of its own (the \`schema\` option)`,
          { details: { schema: n.schema } },
        );
      }
    }
    if (current > latest) {
      throw new TroupeError(
        ErrorCodes.STORE_VERSION,
        `Schema "${n.schema}" is at version ${current}, newer than this troupe understands (${latest}); upgrade troupe`,
        { details: { schema: n.schema, found: current, supported: latest } },
      );
    }
    for (const m of migrations) {
      if (m.version <= current) continue;
      for (const statement of m.up(n)) await client.query(statement);
      await client.query(`INSERT INTO ${n.version} (version, applied_at) VALUES ($1, $2)`, [m.version, Date.now()]);
    }
    await ensureStrategyIndex(client, n, strategy);
    await client.query('COMMIT');
    return Math.max(current, latest);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
