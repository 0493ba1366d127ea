/**
 * PostgreSQL counts, read on every health probe and metrics scrape: the due scheduled and retrying tasks are a range
 * of `tasks_waiting` and the oldest due time one entry of `tasks_due_time`; only the count per state reads the table,
 * and the live counts of a health probe not even that.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createTaskId } from '../../src/ids.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { countsSql, liveCountsSql } from '../../src/store/postgres/queries/counts.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, suiteStores, trackSchemas, withAdmin } from '../helpers/pg.ts';

const schemas = trackSchemas('counts');
after(() => schemas.dropAll());

function newTask(i: number, at: number, runAt: number): NewTask {
  return { id: createTaskId(at + i), name: `job${i % 3}`, input: null, priority: 0, weight: 1, maxAttempts: 3, createdAt: at, runAt };
}

describe('postgres store: counts plan', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const opened = suiteStores({ strategy: 'fifo', listen: false, poolSize: 2 });
  const store = (schema: string): PostgresStore => opened({ schema });

  for (const analysed of [false, true]) {
    it(`reads the due tasks through tasks_waiting and tasks_due_time, one pass over the table for the states (${analysed ? 'analysed' : 'fresh schema'})`, async () => {
      const schema = schemas.next();
      const s = store(schema);
      await s.open();
      const t0 = Date.now();
      // 3000 queued, 3000 scheduled an hour ahead, 100 of them due, and 3000 finished.
      for (let b = 0; b < 3; b++) await s.enqueue(Array.from({ length: 1000 }, (_, i) => newTask(b * 1000 + i, t0, t0)));
      for (let b = 0; b < 3; b++) await s.enqueue(Array.from({ length: 1000 }, (_, i) => newTask(3000 + b * 1000 + i, t0, i < 33 ? t0 + 10 : t0 + 3_600_000)));
      const claimed = await s.claim({ owner: 'o', limit: 1000, leaseMs: 60_000, now: t0 });
      await s.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'o', attempt: 1, at: t0, result: null })));
      const plan = await withAdmin(async (client) => {
        if (analysed) await client.query(`ANALYZE "${schema}".tasks`);
        await client.query('SET plan_cache_mode = force_custom_plan');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${countsSql(createNames(schema))}`, [t0 + 10]);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      assert.match(plan, /Index Only Scan using tasks_due_time/, plan);
      assert.match(plan, /Index (Only )?Scan using tasks_waiting|Bitmap Index Scan on tasks_waiting/, plan);
      assert.equal(plan.match(/Seq Scan/g)?.length, 1, plan);
      const counts = await s.counts(t0 + 10);
      assert.deepEqual([counts.byState.queued, counts.byState.scheduled, counts.byState.succeeded, counts.due, counts.oldestDueAt], [2000, 3000, 1000, 2099, t0]);
    });

    it(`reads the live counts (health probes) through the partial indexes, never a pass over the table (${analysed ? 'analysed' : 'fresh schema'})`, async () => {
      const schema = schemas.next();
      const s = store(schema);
      await s.open();
      const t0 = Date.now();
      // 1000 finished through the store and 100,000 more written directly (a store that keeps its history), then
      // 1000 queued, 1000 scheduled (100 due), 200 running.
      await s.enqueue(Array.from({ length: 1000 }, (_, i) => newTask(i, t0, t0)));
      const done = await s.claim({ owner: 'o', limit: 1000, leaseMs: 60_000, now: t0 });
      await s.settle(done.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'o', attempt: 1, at: t0, result: null })));
      await withAdmin((client) =>
        client.query(
          `INSERT INTO "${schema}".tasks (id, name, state, created_at, run_at, started_at, finished_at, updated_at, attempts)
           SELECT 'old-' || g, 'job0', 'succeeded', $1, $1, $1, $1, $1, 1 FROM generate_series(1, 100000) AS g`,
          [t0 - 1000],
        ),
      );
      await s.enqueue(Array.from({ length: 1200 }, (_, i) => newTask(6000 + i, t0, t0)));
      await s.claim({ owner: 'o', limit: 200, leaseMs: 60_000, now: t0 });
      await s.enqueue(Array.from({ length: 1000 }, (_, i) => newTask(8000 + i, t0, i < 100 ? t0 + 10 : t0 + 3_600_000)));
      const plan = await withAdmin(async (client) => {
        if (analysed) await client.query(`VACUUM ANALYZE "${schema}".tasks`);
        await client.query('SET plan_cache_mode = force_custom_plan');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${liveCountsSql(createNames(schema))}`, [t0 + 10]);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      assert.doesNotMatch(plan, /Seq Scan/, plan);
      assert.match(plan, /tasks_running/, plan);
      const live = await s.liveCounts!(t0 + 10);
      assert.deepEqual(live, { byState: { scheduled: 1000, queued: 1000, retrying: 0, running: 200 }, due: 1100, oldestDueAt: t0 });
      const all = await s.counts(t0 + 10);
      assert.deepEqual([all.byState.succeeded, all.due, all.oldestDueAt], [101_000, live.due, live.oldestDueAt]);
    });
  }
});
