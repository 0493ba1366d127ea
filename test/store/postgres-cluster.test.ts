/**
 * PostgreSQL with several nodes on one schema: concurrent claims never hand one task to two nodes, many nodes
 * may migrate a new schema at once, a schema from newer code is refused, and a periodic slot fires once.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createTaskId } from '../../src/ids.ts';
import { MIGRATIONS } from '../../src/store/postgres/migrations.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { NewTask, TaskRecord } from '../../src/task.ts';
import { PG_SKIP, suiteStores, trackSchemas, withAdmin } from '../helpers/pg.ts';

const schemas = trackSchemas('cluster');
after(() => schemas.dropAll());

function newTask(i: number, now: number, fields: Partial<NewTask> = {}): NewTask {
  return {
    id: createTaskId(now),
    name: `job-${i % 4}`,
    input: { i },
    priority: i % 7,
    weight: 1 + (i % 3),
    maxAttempts: 3,
    createdAt: now,
    runAt: now,
    ...fields,
  };
}

describe('postgres store: several nodes on one schema', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const store = suiteStores({ listen: false });

  it('never gives one task to two nodes claiming at the same time', async () => {
    const schema = schemas.next();
    // Three nodes with different strategies (the weighted one claims by id after its draw).
    const nodes = [
      store({ schema, strategy: 'fifo', poolSize: 4 }),
      store({ schema, strategy: 'priority', poolSize: 4 }),
      store({ schema, strategy: 'weighted-random', poolSize: 4 }),
    ];
    await Promise.all(nodes.map((n) => n.open()));
    const total = 3000;
    const now = Date.now();
    for (let start = 0; start < total; start += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => newTask(start + j, now));
      await nodes[0]!.enqueue(batch);
    }

    const claimed: TaskRecord[] = [];
    const worker = async (node: PostgresStore, owner: string): Promise<void> => {
      for (let round = 0; round < 2000 && claimed.length < total; round++) {
        // Every other round with the name list a runtime passes (one locked scan per name), else without one.
        const names = round % 2 === 1 ? ['job-0', 'job-1', 'job-2', 'job-3'] : undefined;
        const got = await node.claim({ owner, limit: 16, leaseMs: 60_000, now, ...(names ? { names } : {}) });
        claimed.push(...got);
      }
    };
    // Four claim loops per node, all at once.
    await Promise.all(nodes.flatMap((node, n) => [0, 1, 2, 3].map((w) => worker(node, `node-${n}/${w}`))));

    const ids = claimed.map((t) => t.id);
    assert.equal(ids.length, total, 'every task claimed exactly once in total');
    assert.equal(new Set(ids).size, total, 'no task claimed twice');
    assert.ok(claimed.every((t) => t.attempts === 1 && t.state === 'running'));
    const perNode = nodes.map((_, n) => claimed.filter((t) => t.owner!.startsWith(`node-${n}/`)).length);
    assert.ok(perNode.every((c) => c > 0), `each node got work: ${perNode.join(', ')}`);

    await withAdmin(async (client) => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".transitions WHERE to_state = 'running' GROUP BY task_id HAVING count(*) > 1`,
      );
      assert.equal(rows.length, 0, 'one queued → running transition per task');
      const counts = await nodes[1]!.counts(now);
      assert.equal(counts.byState.running, total);
      assert.equal(counts.byState.queued, 0);
    });
  });

  it('lets many nodes migrate a new schema at once', async () => {
    const schema = schemas.next();
    const nodes = Array.from({ length: 6 }, () => store({ schema, poolSize: 1 }));
    const results = await Promise.allSettled(nodes.map((n) => n.open()));
    assert.deepEqual(results.map((r) => r.status), nodes.map(() => 'fulfilled'));
    const versions = await withAdmin(async (client) =>
      (await client.query<{ version: number }>(`SELECT version FROM "${schema}".schema_version ORDER BY version`)).rows.map((r) => r.version),
    );
    assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
    const now = Date.now();
    const [res] = await nodes[3]!.enqueue([newTask(1, now)]);
    assert.equal((await nodes[5]!.get(res!.id))?.state, 'queued');
  });

  it('refuses a schema written by newer code with TROUPE_ERR_STORE_VERSION', async () => {
    const schema = schemas.next();
    const first = store({ schema, poolSize: 1 });
    await first.open();
    await first.close();
    await withAdmin((client) => client.query(`INSERT INTO "${schema}".schema_version (version, applied_at) VALUES (999, 0)`));
    const newer = store({ schema, poolSize: 1 });
    await assert.rejects(newer.open(), { code: 'TROUPE_ERR_STORE_VERSION' });
    await assert.rejects(newer.get('0'.repeat(28)), { code: 'TROUPE_ERR_STORE_VERSION' });
  });

  it("refuses a schema holding another application's tasks table with TROUPE_ERR_STORE_CORRUPT, and leaves it as it was", async () => {
    const schema = schemas.next();
    await withAdmin(async (client) => {
      await client.query(`CREATE SCHEMA "${schema}"`);
      await client.query(`CREATE TABLE "${schema}".tasks (id serial PRIMARY KEY, title text)`);
      await client.query(`INSERT INTO "${schema}".tasks (title) VALUES ('theirs')`);
    });
    const other = store({ schema, poolSize: 1 });
    await assert.rejects(other.open(), (e: Error & { code?: string }) => e.code === 'TROUPE_ERR_STORE_CORRUPT' && /did not create/.test(e.message));
    const tables = await withAdmin((client) => client.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema]));
    assert.deepEqual(tables.rows.map((r) => r.name), ['tasks'], 'nothing created beside it');
    const rows = await withAdmin((client) => client.query<{ title: string }>(`SELECT title FROM "${schema}".tasks`));
    assert.deepEqual(rows.rows, [{ title: 'theirs' }]);
  });

  it('fires a periodic slot once across nodes: slot compare-and-set plus the idempotency key', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema, poolSize: 3 }), store({ schema, poolSize: 3 })];
    await Promise.all([a.open(), b.open()]);
    await a.saveSchedule({ id: 'nightly', task: 'report', cron: '0 3 * * *', input: {}, overlap: 'skip', paused: false, createdAt: 0 });
    for (const slot of [1000, 2000, 3000]) {
      const wins = await Promise.all([a, b, a, b].map((s) => s.markScheduleSlot('nightly', slot)));
      assert.equal(wins.filter(Boolean).length, 1, `slot ${slot} won once`);
    }
    const now = Date.now();
    const key = 'schedule:nightly:3000';
    const results = await Promise.all([a, b, a, b].map((s, i) => s.enqueue([newTask(i, now, { key, scheduleId: 'nightly' })])));
    const flat = results.map((r) => r[0]!);
    assert.equal(flat.filter((r) => r.created).length, 1);
    assert.equal(new Set(flat.map((r) => r.id)).size, 1);
    assert.equal((await b.list({ scheduleId: 'nightly' })).tasks.length, 1);
  });
});
