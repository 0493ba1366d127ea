/**
 * The PostgreSQL store's enqueueAndClaim (queries/enqueue-start.ts): the cases every store that starts tasks in its
 * insert shares (enqueue-start-cases.ts), the claims it leaves to enqueue-then-claim, and the plan of its one
 * statement. (The store contract checks the verb's meaning; this file, the one-statement path.)
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import pg from 'pg';
import { CLAIM_OPTIONS, withStartupOptions } from '../../src/store/postgres/connection-options.ts';
import { enqueueStartSql, planStart } from '../../src/store/postgres/queries/enqueue-start.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import { PG_SKIP, PG_URL, nodeTypes, trackSchemas } from '../helpers/pg.ts';
import { NOW, enqueueStartCases, newTask, openedStores, request } from './enqueue-start-cases.ts';

const schemas = trackSchemas('enqstart');
after(() => schemas.dropAll());

describe('postgres store: enqueue and start in one statement', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const store = openedStores((strategy) => createPostgresStore(PG_URL!, { schema: schemas.next(), strategy, listen: false, poolSize: 2 }));

  enqueueStartCases(store);

  it('says the claim left nothing due only when its check found nothing else and the batch left nothing', async () => {
    const s = await store('fifo');
    assert.equal((await s.enqueueAndClaim!([newTask(), newTask()], request())).drained, true);
    assert.equal((await s.enqueueAndClaim!([newTask(), newTask()], request({ limit: 1 }))).drained, false, 'one left queued');
    // that one was due before: the batch is inserted waiting and claimed after, by a claim that skips locked rows
    const blocked = await s.enqueueAndClaim!([newTask()], request());
    assert.equal(blocked.claimed.length, 2);
    assert.equal(blocked.drained, undefined);
  });

  it('a claim start-plan.ts does not serve (weighted-random here) is made after the insert', async () => {
    const batch = [newTask()];
    assert.equal(planStart(batch, 'weighted-random', request()), undefined);
    assert.deepEqual(planStart(batch, 'priority', request())?.starts.map((r) => [r.id, r.start]), [[batch[0]!.id, true]]);
    // the store then enqueues, and claims after
    const s = await store('weighted-random');
    const { results, claimed } = await s.enqueueAndClaim!(batch, request());
    assert.deepEqual(results, [{ id: batch[0]!.id, created: true, state: 'queued' }]);
    assert.deepEqual(claimed.map((t) => t.id), [batch[0]!.id]);
    assert.deepEqual(await s.claim(request()), []);
  });

  for (const strategy of ['priority', 'fifo'] as const) {
    it(`${strategy}: the check for due tasks probes the name-leading index, with the claim connections' generic plan`, async () => {
      const s = await store(strategy);
      const schema = s.schema;
      const client = new pg.Client(withStartupOptions(PG_URL!, CLAIM_OPTIONS));
      await client.connect();
      try {
        await client.query(`ANALYZE "${schema}".tasks`);
        await client.query(`PREPARE start_batch(jsonb, text, bigint, text[], text, bigint) AS ${enqueueStartSql(createNames(schema))}`);
        await s.enqueue(Array.from({ length: 2000 }, (_, i) => newTask({ name: i % 2 ? 'job' : 'other' })));
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>(
          `EXPLAIN (FORMAT JSON) EXECUTE start_batch('[]', 'w', ${NOW}, '{job,other}', 'o', ${NOW + 1000})`,
        );
        const types = nodeTypes(rows[0]!['QUERY PLAN'][0].Plan);
        const index = strategy === 'priority' ? 'tasks_due_name_priority' : 'tasks_due_name_time';
        assert.ok(types.some((t) => t.endsWith(`Scan on ${index}`)), types.join(' / '));
        assert.ok(!types.some((t) => t.startsWith('Seq Scan') || t.startsWith('Bitmap')), types.join(' / '));
      } finally {
        await client.end();
      }
    });
  }
});
