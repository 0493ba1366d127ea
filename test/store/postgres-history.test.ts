/**
 * PostgreSQL history in the task row (schema version 4): a schema at version 3 upgrades with every stored
 * transition moved into its task's `history` in order (reasons and errors included), `transitions` becomes a view
 * that reads the same rows, and transitions written after the upgrade append to the moved ones.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PoolClient } from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { LATEST_VERSION, MIGRATIONS, migrate } from '../../src/store/postgres/migrations.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import type { Transition } from '../../src/task.ts';
import { PG_SKIP, PG_URL, trackSchemas, withAdmin } from '../helpers/pg.ts';

const schemas = trackSchemas('hist');
after(() => schemas.dropAll());

describe('postgres store: history in the task row', { skip: PG_SKIP }, () => {
  it('upgrades a version 3 schema: moves each task\'s transitions into its row, in order, and keeps a transitions view', async () => {
    const schema = schemas.next();
    const n = createNames(schema);
    const t0 = 1_767_225_600_000;
    const done = createTaskId(t0);
    const dead = createTaskId(t0 + 1);
    const waiting = createTaskId(t0 + 2);
    const error = { name: 'Error', message: 'boom | "quoted"\nsecond line', code: 'E_X', details: { n: 1, list: [1, 'two'] } };
    const expected: Record<string, Transition[]> = {
      [done]: [
        { taskId: done, from: null, to: 'scheduled', at: t0, attempt: 0 },
        { taskId: done, from: 'scheduled', to: 'queued', at: t0 + 10, attempt: 0, reason: 'due' },
        { taskId: done, from: 'queued', to: 'running', at: t0 + 10, attempt: 1 },
        { taskId: done, from: 'running', to: 'succeeded', at: t0 + 20, attempt: 1 },
      ],
      [dead]: [
        { taskId: dead, from: null, to: 'queued', at: t0, attempt: 0 },
        { taskId: dead, from: 'queued', to: 'running', at: t0 + 5, attempt: 1 },
        { taskId: dead, from: 'running', to: 'retrying', at: t0 + 6, attempt: 1, reason: "it's | late", error },
        { taskId: dead, from: 'retrying', to: 'queued', at: t0 + 7, attempt: 1, reason: 'due' },
        { taskId: dead, from: 'queued', to: 'running', at: t0 + 7, attempt: 2 },
        { taskId: dead, from: 'running', to: 'failed', at: t0 + 8, attempt: 2, error },
      ],
      [waiting]: [{ taskId: waiting, from: null, to: 'queued', at: t0, attempt: 0 }],
    };
    await withAdmin(async (client) => {
      await migrate(client as unknown as PoolClient, n, 'priority', MIGRATIONS.filter((m) => m.version <= 3));
      const states: Record<string, string> = { [done]: 'succeeded', [dead]: 'failed', [waiting]: 'queued' };
      for (const [id, state] of Object.entries(states)) {
        await client.query(
          `INSERT INTO ${n.tasks} (id, name, state, created_at, run_at, updated_at, max_attempts, attempts) VALUES ($1, 'noop', $2, $3, $3, $3, 2, 0)`,
          [id, state, t0],
        );
      }
      // Written interleaved across tasks, as a busy queue writes them: each task's own order must survive.
      const all = Object.values(expected).flat().sort((a, b) => a.at - b.at);
      for (const t of all) {
        await client.query(`INSERT INTO ${n.transitions} (task_id, from_state, to_state, at, attempt, reason, error) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
          t.taskId, t.from, t.to, t.at, t.attempt, t.reason ?? null, t.error === undefined ? null : JSON.stringify(t.error),
        ]);
      }
    });

    const s = createPostgresStore(PG_URL!, { schema, strategy: 'priority', listen: false });
    try {
      await s.open();
      for (const [id, transitions] of Object.entries(expected)) assert.deepEqual(await s.history(id), transitions, id);

      const catalog = await withAdmin(async (client) => {
        const version = (await client.query<{ v: number }>(`SELECT max(version) AS v FROM ${n.version}`)).rows[0]!.v;
        const kinds = (await client.query<{ relname: string; relkind: string }>(
          `SELECT relname, relkind FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE 'transitions%'`, [schema],
        )).rows;
        const view = (await client.query(`SELECT task_id, from_state, to_state, at::float8 AS at, attempt, reason, error FROM ${n.transitions} WHERE task_id = $1 ORDER BY seq`, [dead])).rows;
        return { version, kinds, view };
      });
      assert.equal(catalog.version, LATEST_VERSION);
      assert.deepEqual(catalog.kinds, [{ relname: 'transitions', relkind: 'v' }]);
      assert.deepEqual(
        catalog.view,
        expected[dead]!.map((t) => ({ task_id: t.taskId, from_state: t.from, to_state: t.to, at: t.at, attempt: t.attempt, reason: t.reason ?? null, error: t.error ?? null })),
      );

      // After the upgrade, a claim and a settle append to the moved lines.
      const [claimed] = await s.claim({ owner: 'o', limit: 1, leaseMs: 1000, now: t0 + 100, names: ['noop'] });
      assert.equal(claimed?.id, waiting);
      assert.deepEqual(await s.settle([{ type: 'succeeded', id: waiting, owner: 'o', attempt: 1, at: t0 + 101, result: null }]), [true]);
      assert.deepEqual(await s.history(waiting), [
        ...expected[waiting]!,
        { taskId: waiting, from: 'queued', to: 'running', at: t0 + 100, attempt: 1 },
        { taskId: waiting, from: 'running', to: 'succeeded', at: t0 + 101, attempt: 1 },
      ]);
      assert.deepEqual(await s.history(createTaskId(t0 + 3)), [], 'an unknown task has no history');
    } finally {
      await s.close();
    }
  });
});
