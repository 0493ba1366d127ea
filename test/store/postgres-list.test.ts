/**
 * PostgreSQL task list by name (schema version 5): `tasks_name` leaves running tasks out, so a list by name merges
 * the index's walk with the running tasks; both halves page by id, an upgraded schema gets the partial index, and
 * neither half scans the table.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PoolClient } from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { LATEST_VERSION, MIGRATIONS, migrate } from '../../src/store/postgres/migrations.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { listQuery } from '../../src/store/postgres/queries/list.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, suiteStores, trackSchemas, withAdmin } from '../helpers/pg.ts';

const schemas = trackSchemas('list');
after(() => schemas.dropAll());

function newTask(at: number, name: string): NewTask {
  return { id: createTaskId(at), name, input: null, priority: 0, weight: 1, maxAttempts: 1, createdAt: at, runAt: at };
}

describe('postgres store: list by name', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const opened = suiteStores({ strategy: 'fifo', listen: false, poolSize: 2 });
  const store = (schema: string): PostgresStore => opened({ schema });

  it('merges running and other tasks newest first, and pages across both by id', async () => {
    const s = store(schemas.next());
    await s.open();
    const t0 = Date.now();
    const tasks = Array.from({ length: 12 }, (_, i) => newTask(t0 + i, i % 3 === 2 ? 'other' : 'job'));
    await s.enqueue(tasks);
    // Claim the 4 oldest `job` tasks; settle two of them, so the name holds running, succeeded and queued tasks.
    const claimed = await s.claim({ owner: 'o', limit: 4, leaseMs: 60_000, now: t0 + 100, names: ['job'] });
    assert.equal(claimed.length, 4);
    await s.settle(claimed.slice(0, 2).map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'o', attempt: 1, at: t0 + 200, result: null })));
    const jobs = tasks.filter((t) => t.name === 'job').map((t) => t.id).reverse();

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await s.list({ name: 'job', limit: 3, ...(cursor === undefined ? {} : { cursor }) });
      pages.push(page.tasks.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    assert.deepEqual(pages.flat(), jobs);
    assert.ok(pages.every((p) => p.length <= 3) && pages.length === 3, JSON.stringify(pages));

    const running = (await s.list({ name: 'job', state: 'running' })).tasks.map((t) => t.id);
    assert.deepEqual(running, claimed.slice(2).map((t) => t.id).reverse());
    const notRunning = (await s.list({ name: 'job', state: ['queued', 'succeeded'] })).tasks.map((t) => t.id);
    assert.deepEqual(notRunning, jobs.filter((id) => !running.includes(id)));
  });

  it('a list by name reads tasks_name and tasks_running, not the table', async () => {
    const schema = schemas.next();
    const s = store(schema);
    await s.open();
    const t0 = Date.now();
    for (let b = 0; b < 10; b++) await s.enqueue(Array.from({ length: 500 }, (_, i) => newTask(t0 + b * 500 + i, i % 7 === 0 ? 'rare' : 'job')));
    await s.claim({ owner: 'o', limit: 20, leaseMs: 60_000, now: t0 + 10_000, names: ['job', 'rare'] });
    const plan = await withAdmin(async (client) => {
      await client.query('SET plan_cache_mode = force_custom_plan');
      const { sql, values } = listQuery(createNames(schema), { name: 'rare' });
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, values);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    assert.match(plan, /tasks_name/, plan);
    assert.match(plan, /tasks_running/, plan);
    assert.doesNotMatch(plan, /Seq Scan/, plan);
    assert.equal((await s.list({ name: 'rare', limit: 1000 })).tasks.length, Math.ceil(500 / 7) * 10);
  });

  it('upgrades a version 4 schema: tasks_name leaves running tasks out, rows and lists unchanged', async () => {
    const schema = schemas.next();
    const n = createNames(schema);
    const t0 = Date.now();
    const old = store(schema);
    await withAdmin((client) => migrate(client as unknown as PoolClient, n, 'fifo', MIGRATIONS.filter((m) => m.version <= 4)));
    const before = await withAdmin(async (client) => {
      const { rows } = await client.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'tasks_name'`, [schema]);
      return rows[0]!.indexdef;
    });
    assert.doesNotMatch(before, /WHERE/);
    const a = newTask(t0, 'job');
    await withAdmin((client) =>
      client.query(
        `INSERT INTO ${n.tasks} (id, name, state, created_at, run_at, updated_at, max_attempts, owner, lease_until, attempts)
         VALUES ($1, 'job', 'running', $2, $2, $2, 1, 'o', $3, 1)`,
        [a.id, t0, t0 + 60_000],
      ),
    );
    await old.open();
    const catalog = await withAdmin(async (client) => {
      const version = (await client.query<{ v: number }>(`SELECT max(version) AS v FROM ${n.version}`)).rows[0]!.v;
      const { rows } = await client.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'tasks_name'`, [schema]);
      return { version, indexdef: rows[0]!.indexdef };
    });
    assert.equal(catalog.version, LATEST_VERSION);
    assert.match(catalog.indexdef, /WHERE \(state <> 'running'::text\)/);
    const b = newTask(t0 + 1, 'job');
    await old.enqueue([b]);
    assert.deepEqual((await old.list({ name: 'job' })).tasks.map((t) => [t.id, t.state]), [
      [b.id, 'queued'],
      [a.id, 'running'],
    ]);
  });

  it('keeps a partial tasks_name built beforehand by hand', async () => {
    const schema = schemas.next();
    const n = createNames(schema);
    const oid = await withAdmin(async (client) => {
      await migrate(client as unknown as PoolClient, n, 'fifo', MIGRATIONS.filter((m) => m.version <= 4));
      await client.query(`CREATE INDEX tasks_name_new ON ${n.tasks} (name, id) WHERE state <> 'running'`);
      await client.query(`DROP INDEX "${schema}".tasks_name`);
      await client.query(`ALTER INDEX "${schema}".tasks_name_new RENAME TO tasks_name`);
      return (await client.query<{ oid: number }>(`SELECT '"${schema}".tasks_name'::regclass::oid AS oid`)).rows[0]!.oid;
    });
    await store(schema).open();
    const after = await withAdmin(async (client) => (await client.query<{ oid: number }>(`SELECT '"${schema}".tasks_name'::regclass::oid AS oid`)).rows[0]!.oid);
    assert.equal(after, oid);
  });
});
