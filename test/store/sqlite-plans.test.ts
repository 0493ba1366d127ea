/**
 * SQLite query plans that must not depend on the statistics in the file: the multi-row settle looks each task up
 * by id even when `sqlite_stat1` was taken while nothing ran (as `PRAGMA optimize` at close leaves it), which made
 * the planner walk every running task once per row of the batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { ID_INDEX, succeedManySql } from '../../src/store/sqlite/queries/settle.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { tempDb } from '../helpers/temp-db.ts';

const T0 = Date.UTC(2026, 0, 1);

/** A store file with `n` queued tasks and statistics taken while none of them ran. */
async function fileWithIdleStats(n: number): Promise<string> {
  const path = tempDb('sqlite-plans');
  const store = createSqliteStore(path);
  await store.open();
  await store.enqueue(
    Array.from({ length: n }, (_, i) => ({ id: createTaskId(T0 + i), name: 'job', input: i, priority: 0, weight: 1, maxAttempts: 1, createdAt: T0, runAt: T0 })),
  );
  await store.close();
  const db = new Database(path);
  db.exec('ANALYZE');
  const running = db.prepare<[], { stat: string }>("SELECT stat FROM sqlite_stat1 WHERE idx = 'tasks_running'").get();
  db.close();
  assert.ok(running === undefined || running.stat.startsWith('0'), `tasks_running looks empty to the planner (${running?.stat})`);
  return path;
}

const plan = (db: Database.Database, sql: string, params: number): string =>
  db
    .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
    .all(Array(params).fill(null))
    .map((r) => r.detail)
    .join(' | ');

describe('SQLite plans under idle statistics', () => {
  it('the multi-row settle searches the id index once per row and never walks the running tasks', async () => {
    const path = await fileWithIdleStats(500);
    const db = new Database(path, { readonly: true });
    try {
      for (const rows of [2, 64]) {
        const detail = plan(db, succeedManySql(rows), rows * 5);
        assert.match(detail, new RegExp(`SEARCH tasks USING INDEX ${ID_INDEX} \\(id=\\?\\)`), detail);
        assert.doesNotMatch(detail, /tasks_running|SCAN tasks/, detail);
      }
    } finally {
      db.close();
    }
  });

  it('a store on such a file settles a batch of successes and refuses the ones it no longer holds', async () => {
    const path = await fileWithIdleStats(200);
    const store = createSqliteStore(path);
    await store.open();
    try {
      const claimed = await store.claim({ owner: 'a', limit: 64, leaseMs: 60_000, now: T0 + 1, names: ['job'] });
      assert.equal(claimed.length, 64);
      const ops = claimed.map((t, i) => ({ type: 'succeeded' as const, id: t.id, owner: i === 3 ? 'b' : 'a', attempt: t.attempts, at: T0 + 2, result: i }));
      const out = await store.settle(ops);
      assert.deepEqual(out, ops.map((_, i) => i !== 3));
      assert.equal((await store.get(claimed[5]!.id))?.result, 5);
      assert.equal((await store.get(claimed[3]!.id))?.state, 'running');
      assert.equal((await store.counts(T0 + 3)).byState.succeeded, 63);
    } finally {
      await store.close();
    }
  });
});
