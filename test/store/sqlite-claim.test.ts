/**
 * SQLite claim indexes: a file of schema version 2 (global-order claim indexes) upgrades to the name-leading ones
 * with its tasks intact, and the claim statements read one name's part of the index in order (no scan of other
 * names' rows, no sort), which is what keeps a claim's cost independent of the depth of excluded names.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/sqlite/migrations.ts';
import { DUE, dueOfName } from '../../src/store/sqlite/queries/claim-order.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Strategy } from '../../src/store/store.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-sqlite-claim-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(root, `claim-${++n}.db`);
const T0 = Date.UTC(2026, 0, 1);

const indexes = (path: string): string[] => {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'tasks_due%' ORDER BY name")
      .all()
      .map((r) => r.name);
  } finally {
    db.close();
  }
};

/** A file as troupe wrote it at schema version 2, with the global-order indexes of `strategy` and some tasks. */
function versionTwoFile(strategy: Strategy): { path: string; ids: string[] } {
  const path = freshPath();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
    db.exec(m.sql);
    db.pragma(`user_version = ${m.version}`);
  }
  if (strategy === 'priority') db.exec(`CREATE INDEX tasks_due_priority ON tasks (priority DESC, run_at, id) WHERE state IN ('queued', 'scheduled', 'retrying')`);
  const insert = db.prepare(
    `INSERT INTO tasks (id, name, state, input, priority, weight, max_attempts, created_at, run_at, updated_at)
     VALUES (?, ?, 'queued', '{}', ?, 1, 3, ?, ?, ?)`,
  );
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const id = createTaskId(T0 + i);
    ids.push(id);
    insert.run(id, i % 2 ? 'odd' : 'even', i % 3, T0 + i, T0 + i, T0 + i);
  }
  db.prepare("UPDATE task_counts SET n = 6 WHERE state = 'queued'").run();
  db.close();
  return { path, ids };
}

describe('sqlite claim indexes', () => {
  for (const strategy of ['fifo', 'priority'] as const) {
    it(`${strategy}: a version 2 file upgrades to the name-leading index and claims its tasks in order`, async () => {
      const { path, ids } = versionTwoFile(strategy);
      assert.ok(indexes(path).includes(strategy === 'priority' ? 'tasks_due_priority' : 'tasks_due_time'));
      const store = createSqliteStore(path, { strategy });
      await store.open();
      try {
        const claimed = await store.claim({ owner: 'n', limit: 10, leaseMs: 1000, now: T0 + 10, exclude: ['odd'] });
        // even tasks are 0, 2, 4 with priorities 0, 2, 1
        assert.deepEqual(
          claimed.map((t) => t.id),
          strategy === 'priority' ? [ids[2], ids[4], ids[0]] : [ids[0], ids[2], ids[4]],
        );
        assert.equal((await store.counts(T0 + 10)).oldestDueAt, T0 + 1);
        assert.equal((await store.claim({ owner: 'n', limit: 10, leaseMs: 1000, now: T0 + 10 })).length, 3);
      } finally {
        await store.close();
      }
      const db = new Database(path, { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      db.close();
      // only the strategy's own claim index is left to maintain on each write
      assert.deepEqual(indexes(path), strategy === 'priority' ? ['tasks_due_name_priority'] : ['tasks_due_name']);
    });
  }

  for (const strategy of ['fifo', 'lifo', 'priority'] as const) {
    it(`${strategy}: the claim reads one name's rows in index order, without a sort`, async () => {
      const path = freshPath();
      const store = createSqliteStore(path, { strategy });
      await store.open();
      await store.close();
      const db = new Database(path, { readonly: true });
      try {
        const plan = db
          .prepare(`EXPLAIN QUERY PLAN SELECT id FROM tasks ${dueOfName(strategy)} LIMIT 10`)
          .all(strategy === 'priority' ? { name: 'x', now: T0, priority: 0 } : { name: 'x', now: T0 })
          .map((r) => (r as { detail: string }).detail)
          .join('\n');
        const index = strategy === 'priority' ? 'tasks_due_name_priority' : 'tasks_due_name';
        assert.match(plan, new RegExp(`SEARCH tasks USING INDEX ${index} \\(name=\\?`));
        assert.doesNotMatch(plan, /TEMP B-TREE/);
        // the due condition is the one the claim applies
        assert.ok(dueOfName(strategy).includes(DUE));
      } finally {
        db.close();
      }
    });
  }
});

describe('sqlite weighted-random class counts', () => {
  const task = (name: string, weight: number, at: number, runAt = at) => ({
    id: createTaskId(at),
    name,
    input: null,
    priority: 0,
    weight,
    maxAttempts: 3,
    createdAt: at,
    runAt,
  });
  /** The kept counts, and what counting the queued rows gives: they must agree. */
  const counts = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      const kept = db.prepare('SELECT name, weight, n FROM queued_classes WHERE n <> 0 ORDER BY name, weight').all();
      const actual = db.prepare("SELECT name, weight, COUNT(*) AS n FROM tasks WHERE state = 'queued' GROUP BY name, weight ORDER BY name, weight").all();
      return { kept, actual };
    } finally {
      db.close();
    }
  };

  it('a file filled under another strategy is counted when it first opens with weighted-random, and every verb keeps the counts', async () => {
    const path = freshPath();
    const fifo = createSqliteStore(path, { strategy: 'fifo' });
    await fifo.open();
    const tasks = Array.from({ length: 30 }, (_, i) => task(i % 2 ? 'a' : 'b', 1 + (i % 3), T0 + i));
    await fifo.enqueue(tasks);
    await fifo.enqueue([task('a', 1, T0 + 100, T0 + 10_000)]); // scheduled: not counted until claimed
    await fifo.close();

    const store = createSqliteStore(path, { strategy: 'weighted-random', random: () => 0.5 });
    await store.open();
    try {
      let c = counts(path);
      assert.equal((c.actual as { n: number }[]).reduce((s, r) => s + r.n, 0), 30);
      assert.deepEqual(c.kept, c.actual);
      const claimed = await store.claim({ owner: 'n', limit: 10, leaseMs: 1000, now: T0 + 200 });
      assert.equal(claimed.length, 10);
      await store.settle([
        { type: 'succeeded', id: claimed[0]!.id, owner: 'n', attempt: 1, at: T0 + 201, result: null },
        { type: 'release', id: claimed[1]!.id, owner: 'n', attempt: 1, at: T0 + 201, reason: 'shutdown' },
        { type: 'retry', id: claimed[2]!.id, owner: 'n', attempt: 1, at: T0 + 201, runAt: T0 + 300, error: { name: 'Error', message: 'x' }, reason: 'retry' },
      ]);
      const cancelled = tasks.find((t) => !claimed.some((k) => k.id === t.id))!.id;
      await store.cancel(cancelled, T0 + 202);
      c = counts(path);
      assert.deepEqual(c.kept, c.actual);
      assert.ok(await store.retry(cancelled, T0 + 203), 'a cancelled task can be retried');
      c = counts(path);
      assert.deepEqual(c.kept, c.actual);
      // the scheduled task and the retrying one are due at T0 + 20,000: a claim of everything takes them too
      const rest = await store.claim({ owner: 'n', limit: 100, leaseMs: 1000, now: T0 + 20_000 });
      // 20 queued after the first claim, + 1 released, − 1 cancelled, + 1 retried by hand; + the scheduled and the retrying one
      assert.equal(rest.length, 23);
      c = counts(path);
      assert.deepEqual(c.kept, []);
      assert.deepEqual(c.actual, []);
      assert.equal((await store.claim({ owner: 'n', limit: 10, leaseMs: 1000, now: T0 + 30_000 })).length, 0);
    } finally {
      await store.close();
    }
  });
});
