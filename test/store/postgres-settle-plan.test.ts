/**
 * Settles run on connections of their own with generic plans (connection-options.ts `SETTLE_OPTIONS`): the plan
 * is made once per connection, possibly while the table is empty and analysed as such, and must still find the
 * settled rows through an index once the table has grown, never by reading the whole table.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { SETTLE_OPTIONS, withStartupOptions } from '../../src/store/postgres/connection-options.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { outcomeSql, progressSql } from '../../src/store/postgres/queries/settle.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, PG_URL, trackSchemas } from '../helpers/pg.ts';

const schemas = trackSchemas('splan');
after(() => schemas.dropAll());

function newTask(i: number, now: number): NewTask {
  return { id: createTaskId(now), name: 'noop', input: { i }, priority: 0, weight: 1, maxAttempts: 1, createdAt: now, runAt: now };
}

/** The plan of a prepared statement executed once on an empty, analysed table, then explained after growth. */
async function planAfterGrowth(options: string): Promise<string> {
  const schema = schemas.next();
  const n = createNames(schema);
  const s = createPostgresStore(PG_URL!, { schema, strategy: 'priority', listen: false });
  const client = new pg.Client(withStartupOptions(PG_URL!, options));
  await client.connect();
  try {
    await s.open();
    await client.query(`ANALYZE ${n.tasks}`);
    await client.query(`PREPARE outcome(jsonb, text, text) AS ${outcomeSql(n)}`);
    await client.query(`PREPARE progress(jsonb) AS ${progressSql(n)}`);
    const none = JSON.stringify([{ i: 0, id: 'none', type: 'succeeded', owner: 'o', attempt: 1, at: 1, result: null }]);
    await client.query(`EXECUTE outcome('${none}', 'x', 'y')`);
    await client.query(`EXECUTE progress('${JSON.stringify([{ i: 0, id: 'none', at: 1, progress: 0.5 }])}')`);

    const now = Date.now();
    for (let b = 0; b < 10; b++) await s.enqueue(Array.from({ length: 500 }, (_, i) => newTask(b * 500 + i, now)));
    const claimed = await s.claim({ owner: 'o', limit: 20, leaseMs: 60_000, now, names: ['noop'] });
    assert.equal(claimed.length, 20);
    const ops = claimed.map((t, i) => ({ i, id: t.id, type: 'succeeded', owner: 'o', attempt: 1, at: now, result: null }));
    const plans: string[] = [];
    for (const sql of [`EXPLAIN EXECUTE outcome('${JSON.stringify(ops)}', 'x', 'y')`, `EXPLAIN EXECUTE progress('${JSON.stringify(ops.map((o) => ({ i: o.i, id: o.id, at: now, progress: 1 })))}')`]) {
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(sql);
      plans.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
    }
    return plans.join('\n');
  } finally {
    await client.end();
    await s.close();
  }
}

describe('postgres store: settle plans', { skip: PG_SKIP }, () => {
  it('starts settle sessions with generic plans and without sequential scans', async () => {
    const client = new pg.Client(withStartupOptions(PG_URL!, SETTLE_OPTIONS));
    await client.connect();
    try {
      const { rows } = await client.query("SELECT current_setting('plan_cache_mode') AS plan, current_setting('enable_seqscan') AS seqscan");
      assert.deepEqual(rows[0], { plan: 'force_generic_plan', seqscan: 'off' });
    } finally {
      await client.end();
    }
  });

  it('a settle planned on an empty analysed table still reaches its rows through an index after the table grew', async () => {
    const plan = await planAfterGrowth(SETTLE_OPTIONS);
    assert.match(plan, /Index Scan|Bitmap Index Scan/);
    assert.doesNotMatch(plan, /Seq Scan on tasks/, plan);
  });

  it('a settle reads its rows by primary key alone, never through the index of every running task', async () => {
    // A plan that scans tasks_running reads every running task (and filters each by a linear `= ANY` of the
    // ops' ids, or ANDs the whole index into a bitmap): it grows with the tasks running, not with the ops.
    const plan = await planAfterGrowth(SETTLE_OPTIONS);
    assert.match(plan, /tasks_pkey/, plan);
    assert.doesNotMatch(plan, /tasks_running|BitmapAnd/, plan);
  });
});
