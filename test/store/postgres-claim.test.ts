/**
 * PostgreSQL claim shape and schema upgrade: the claim with a name list walks the name-leading index on a fresh
 * (never analysed) schema instead of scanning every due row, a schema at version 2 upgrades in place, and no
 * query is ever sent on a pooled client that is still running one (pg 8 warns, pg 9 will throw).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import type { PoolClient } from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { CLAIM_OPTIONS, withStartupOptions } from '../../src/store/postgres/connection-options.ts';
import { LATEST_VERSION, MIGRATIONS, migrate } from '../../src/store/postgres/migrations.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { namedClaimSql } from '../../src/store/postgres/queries/claim.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import type { ClaimRequest } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, PG_URL, nodeTypes, suiteStores, trackSchemas, withAdmin } from '../helpers/pg.ts';

const schemas = trackSchemas('claim');
after(() => schemas.dropAll());

/** pg's warning for a query sent on a client still running one (an error in pg 9); the last test asserts none. */
const busyClientWarnings: string[] = [];
process.on('warning', (warning) => {
  if (/already executing a query/.test(warning.message)) busyClientWarnings.push(warning.stack ?? warning.message);
});

function newTask(i: number, now: number, fields: Partial<NewTask> = {}): NewTask {
  return { id: createTaskId(now), name: 'noop', input: { i }, priority: 0, weight: 1, maxAttempts: 1, createdAt: now, runAt: now, ...fields };
}

describe('postgres store: claim plan and upgrade', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const opened = suiteStores({ listen: false, poolSize: 2 });
  const store = (schema: string, strategy: 'priority' | 'fifo' | 'lifo'): PostgresStore => opened({ schema, strategy });

  for (const [strategy, analysed] of [['priority', false], ['fifo', false], ['priority', true], ['lifo', true]] as const) {
    it(`${strategy}: the named claim is an ordered scan of the name-leading index (${analysed ? 'analysed' : 'fresh schema'})`, async () => {
      const schema = schemas.next();
      const s = store(schema, strategy);
      await s.open();
      const now = Date.now();
      await s.enqueue(Array.from({ length: 5000 }, (_, i) => newTask(i, now, { name: analysed || i % 5 !== 0 ? 'noop' : 'other' })));
      const sql = namedClaimSql(createNames(schema), strategy);
      const types = await withAdmin(async (client) => {
        // Analysed: one name holds every row, so a walk of the global index filtered by name looks as good.
        if (analysed) await client.query(`ANALYZE "${schema}".tasks`);
        await client.query('SET plan_cache_mode = force_custom_plan');
        await client.query('BEGIN');
        try {
          const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(
            `EXPLAIN (FORMAT JSON) ${sql}`,
            [now, 64, 'o', now + 1000, ['noop', 'other', 'absent'], [64, 64, 64]],
          );
          return nodeTypes(rows[0]!['QUERY PLAN'][0].Plan);
        } finally {
          await client.query('ROLLBACK');
        }
      });
      const index = strategy === 'priority' ? 'tasks_due_name_priority' : 'tasks_due_name_time';
      assert.ok(types.includes(`Index Scan on ${index}`), types.join(' / '));
      assert.ok(!types.some((t) => t.endsWith('on tasks_due_priority') || t.endsWith('on tasks_due_time')), types.join(' / '));
      // The pick uses no bitmap; the update finds the picked rows by their ctid, never by scanning the table.
      assert.ok(!types.some((t) => t === 'BitmapAnd' || t.startsWith('Bitmap Index Scan')), types.join(' / '));
      assert.ok(types.includes('Tid Scan'), types.join(' / '));
      assert.ok(!types.includes('Seq Scan'), types.join(' / '));
    });
  }

  for (const [strategy, analysed] of [['priority', true], ['fifo', false]] as const) {
    it(`${strategy}: the named claim's generic plan, made on an empty ${analysed ? 'analysed' : 'fresh'} table, still walks the name-leading index once it grew`, async () => {
      const schema = schemas.next();
      const s = store(schema, strategy);
      await s.open();
      const client = new pg.Client(withStartupOptions(PG_URL!, CLAIM_OPTIONS));
      await client.connect();
      try {
        const settings = await client.query("SELECT current_setting('plan_cache_mode') AS plan, current_setting('enable_seqscan') AS seq, current_setting('enable_bitmapscan') AS bitmap");
        assert.deepEqual(settings.rows[0], { plan: 'force_generic_plan', seq: 'off', bitmap: 'off' });
        if (analysed) await client.query(`ANALYZE "${schema}".tasks`);
        await client.query(`PREPARE named_claim(bigint, int, text, bigint, text[], int[]) AS ${namedClaimSql(createNames(schema), strategy)}`);
        const now = Date.now();
        const args = (limit: number): string => `EXECUTE named_claim(${now}, ${limit}, 'o', ${now + 60_000}, '{noop,other}', '{${limit},${limit}}')`;
        assert.equal((await client.query(args(64))).rowCount, 0);
        for (let b = 0; b < 6; b++) await s.enqueue(Array.from({ length: 500 }, (_, i) => newTask(i, now, { name: i % 3 ? 'noop' : 'other' })));
        await client.query('BEGIN');
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(`EXPLAIN (FORMAT JSON) ${args(64)}`);
        const claimed = (await client.query(args(64))).rowCount;
        await client.query('ROLLBACK');
        const types = nodeTypes(rows[0]!['QUERY PLAN'][0].Plan);
        const index = strategy === 'priority' ? 'tasks_due_name_priority' : 'tasks_due_name_time';
        assert.ok(types.includes(`Index Scan on ${index}`), types.join(' / '));
        assert.ok(types.includes('Tid Scan'), types.join(' / '));
        assert.ok(!types.some((t) => t.startsWith('Seq Scan') || t.startsWith('Bitmap')), types.join(' / '));
        assert.equal(claimed, 64);
      } finally {
        await client.end();
      }
    });
  }

  it('every claim path returns each started task as get reads it back (the columns a start sets are filled in)', async () => {
    const now = Date.now();
    const check = async (s: PostgresStore, request: Omit<ClaimRequest, 'owner' | 'leaseMs' | 'now' | 'limit'>, group?: string): Promise<void> => {
      await s.enqueue(Array.from({ length: 3 }, (_, i) => newTask(i, now, { name: 'noop', ...(group === undefined ? {} : { group }) })));
      const claimed = await s.claim({ owner: 'node-x', leaseMs: 4321, now: now + 5, limit: 2, ...request });
      assert.equal(claimed.length, 2, JSON.stringify(request));
      for (const c of claimed) {
        assert.deepEqual(await s.get(c.id), c);
        assert.deepEqual([c.state, c.owner, c.leaseUntil, c.startedAt, c.updatedAt, c.attempts], ['running', 'node-x', now + 5 + 4321, now + 5, now + 5, 1]);
      }
    };
    const priority = store(schemas.next(), 'priority');
    await priority.open();
    await check(priority, { names: ['noop'] });
    await check(priority, {});
    await check(priority, { names: ['noop'], groupLimits: { noop: 5 } }, 'g1');
    const weighted = opened({ schema: schemas.next(), strategy: 'weighted-random' });
    await weighted.open();
    await check(weighted, { names: ['noop'] });
    // One task: the weighted claim's single-statement path.
    const [one] = await weighted.claim({ owner: 'node-x', leaseMs: 4321, now: now + 5, limit: 1, names: ['noop'] });
    assert.deepEqual(await weighted.get(one!.id), one);
  });

  it('a claim does not wait for the WAL flush, and the setting ends with its transaction', async () => {
    const schema = schemas.next();
    const s = store(schema, 'fifo');
    await s.open();
    const now = Date.now();
    await s.enqueue([newTask(0, now), newTask(1, now)]);
    const sql = namedClaimSql(createNames(schema), 'fifo');
    const settings = await withAdmin(async (client) => {
      const params = (owner: string): unknown[] => [now, 1, owner, now + 1000, ['noop'], [1]];
      await client.query('SET synchronous_commit = on');
      await client.query('BEGIN');
      const inside = (await client.query(sql, params('a'))).rowCount;
      const during = (await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit;
      await client.query('COMMIT');
      const autocommit = (await client.query(sql, params('b'))).rowCount;
      const after = (await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit;
      return { inside, during, autocommit, after };
    });
    assert.deepEqual(settings, { inside: 1, during: 'off', autocommit: 1, after: 'on' });
  });

  it('claims across names in strategy order, honouring exclude, caps and repeated names', async () => {
    const s = store(schemas.next(), 'lifo');
    await s.open();
    const now = Date.now();
    const tasks = Array.from({ length: 12 }, (_, i) => newTask(i, now, { name: ['a', 'b', 'c'][i % 3]!, runAt: now - 100 + i }));
    await s.enqueue(tasks);
    const got = await s.claim({ owner: 'o', limit: 5, leaseMs: 1000, now, names: ['a', 'b', 'a', 'c'], exclude: ['c'], perName: { b: 1 } });
    const expected = [...tasks].reverse().filter((t) => t.name === 'a' || t.name === 'b');
    const wanted = [expected.find((t) => t.name === 'b')!, ...expected.filter((t) => t.name === 'a').slice(0, 4)]
      .sort((x, y) => y.runAt - x.runAt)
      .map((t) => t.id);
    assert.deepEqual(got.map((t) => t.id), wanted);
    assert.deepEqual(await s.claim({ owner: 'o', limit: 5, leaseMs: 1000, now, names: ['c'], exclude: ['c'] }), []);
    assert.deepEqual(await s.claim({ owner: 'o', limit: 5, leaseMs: 1000, now, names: ['b'], perName: { b: 0 } }), []);
  });

  it('upgrades a version 2 schema: drops the transitions primary key, adds the claim index, keeps the rows', async () => {
    const schema = schemas.next();
    const n = createNames(schema);
    const now = Date.now();
    const id = createTaskId(now);
    await withAdmin(async (client) => {
      await migrate(client as unknown as PoolClient, n, 'priority', MIGRATIONS.filter((m) => m.version <= 2));
      await client.query(
        `INSERT INTO ${n.tasks} (id, name, state, created_at, run_at, updated_at, max_attempts) VALUES ($1, 'noop', 'queued', $2, $2, $2, 1)`,
        [id, now],
      );
      await client.query(`INSERT INTO ${n.transitions} (task_id, from_state, to_state, at, attempt) VALUES ($1, NULL, 'queued', $2, 0)`, [id, now]);
    });
    const s = store(schema, 'priority');
    await s.open();
    const catalog = await withAdmin(async (client: pg.Client) => {
      const versions = (await client.query<{ version: number }>(`SELECT version FROM ${n.version} ORDER BY version`)).rows.map((r) => r.version);
      const indexes = (await client.query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE schemaname = $1', [schema])).rows.map((r) => r.indexname);
      return { versions, indexes };
    });
    assert.deepEqual(catalog.versions, MIGRATIONS.map((m) => m.version));
    assert.equal(catalog.versions.at(-1), LATEST_VERSION);
    assert.ok(!catalog.indexes.includes('transitions_pkey'), catalog.indexes.join(', '));
    assert.ok(catalog.indexes.includes('tasks_due_name_priority'), catalog.indexes.join(', '));
    const [claimed] = await s.claim({ owner: 'o', limit: 4, leaseMs: 1000, now, names: ['noop'] });
    assert.equal(claimed?.id, id);
    assert.deepEqual((await s.settle([{ type: 'succeeded', id, owner: 'o', attempt: 1, at: now, result: 1 }])), [true]);
    assert.deepEqual((await s.history(id)).map((t) => t.to), ['queued', 'running', 'succeeded']);
  });

  it('never sends a query on a pooled client that is still busy, with more callers than connections', async () => {
    const s = store(schemas.next(), 'priority');
    await s.open();
    const now = Date.now();
    await s.enqueue(Array.from({ length: 400 }, (_, i) => newTask(i, now)));
    const loop = async (owner: string): Promise<void> => {
      for (;;) {
        const got = await s.claim({ owner, limit: 8, leaseMs: 10_000, now, names: ['noop'] });
        if (got.length === 0) return;
        await Promise.all([
          s.settle(got.map((t) => ({ type: 'succeeded' as const, id: t.id, owner, attempt: t.attempts, at: now, result: null }))),
          s.heartbeat(owner, now + 20_000),
          s.counts(now),
        ]);
      }
    };
    // Eight loops of three calls at once on a pool of 2: connections are handed from one caller to the next.
    await Promise.all(Array.from({ length: 8 }, (_, i) => loop(`o${i}`)));
    assert.equal((await s.counts(now)).byState.succeeded, 400);
    assert.deepEqual(busyClientWarnings, []);
  });
});

