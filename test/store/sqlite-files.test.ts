/**
 * SQLite-only behaviour: the file survives a reopen and a SIGKILL, and a file that is corrupt, foreign,
 * unwritable or newer than this code is refused with a coded error and left byte-for-byte as it was.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { APPLICATION_ID, SCHEMA_VERSION, ensureStrategyIndex, migrate } from '../../src/store/sqlite/migrations.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { NewTask } from '../../src/task.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-sqlite-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(root, `case-${++n}`, 'troupe.db');
const T0 = Date.UTC(2026, 0, 1);

function task(fields: Partial<NewTask> = {}): NewTask {
  return { id: createTaskId(T0), name: 'job', input: { n: 1 }, priority: 0, weight: 1, maxAttempts: 3, createdAt: T0, runAt: T0, ...fields };
}

/** Opening must fail with `code` and leave the file's bytes as they were. */
async function assertRefused(path: string, code: string): Promise<void> {
  const before = readFileSync(path);
  const store = createSqliteStore(path);
  await assert.rejects(store.open(), { code });
  await assert.rejects(store.get('x'), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
  await store.close();
  assert.ok(readFileSync(path).equals(before), 'the file was modified');
}

describe('sqlite store files', () => {
  it('purge removes the output rows of the tasks it deletes, and only theirs; the kept task keeps its history', async () => {
    // The store runs with foreign_keys OFF, so no ON DELETE CASCADE does this for it.
    const path = freshPath();
    const store = createSqliteStore(path);
    await store.open();
    const gone = task();
    const kept = task();
    await store.enqueue([gone, kept]);
    await store.claim({ owner: 'n1', limit: 2, leaseMs: 1000, now: T0 });
    await store.settle([
      { type: 'output', id: gone.id, lines: [{ seq: 1, stream: 'stdout', text: 'g', at: T0 }] },
      { type: 'output', id: kept.id, lines: [{ seq: 1, stream: 'stdout', text: 'k', at: T0 }] },
      { type: 'succeeded', id: gone.id, owner: 'n1', attempt: 1, at: T0 + 1, result: null },
      { type: 'succeeded', id: kept.id, owner: 'n1', attempt: 1, at: T0 + 100, result: null },
    ]);
    assert.equal(await store.purge({ finishedBefore: T0 + 50 }), 1);
    await store.close();
    const db = new Database(path, { readonly: true });
    const rows = (table: string) => db.prepare(`SELECT task_id, count(*) AS n FROM ${table} GROUP BY task_id`).all();
    assert.deepEqual(rows('output'), [{ task_id: kept.id, n: 1 }]);
    db.close();
    const again = createSqliteStore(path);
    await again.open();
    assert.deepEqual((await again.history(kept.id)).map((t) => t.to), ['queued', 'running', 'succeeded']);
    assert.deepEqual(await again.history(gone.id), []);
    await again.close();
  });

  it('creates missing directories, uses WAL, and sees everything after a reopen', async () => {
    const path = freshPath();
    const first = createSqliteStore(path, { maxOutputLines: 2 });
    await first.open();
    const a = task({ key: 'k' });
    const b = task();
    const c = task({ runAt: T0 + 60_000 });
    await first.enqueue([a, b, c]);
    const claimed = await first.claim({ owner: 'n1', limit: 2, leaseMs: 1000, now: T0 });
    await first.settle([
      { type: 'output', id: a.id, lines: [1, 2, 3].map((seq) => ({ seq, stream: 'stdout' as const, text: `l${seq}`, at: T0 })) },
      { type: 'succeeded', id: a.id, owner: 'n1', attempt: 1, at: T0 + 5, result: { ok: true } },
    ]);
    await first.saveSchedule({ id: 's', task: 'job', everyMs: 1000, input: null, overlap: 'skip', paused: false, createdAt: T0 });
    await first.markScheduleSlot('s', T0);
    await first.setMeta('paused', '["x"]');
    const snapshot = {
      tasks: await Promise.all([a, b, c].map((t) => first.get(t.id))),
      history: await first.history(a.id),
      output: await first.output(a.id),
      counts: await first.counts(T0),
    };
    await first.close();
    assert.equal(claimed.length, 2);

    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db.close();

    const second = createSqliteStore(path, { maxOutputLines: 2 });
    await second.open();
    assert.deepEqual(await Promise.all([a, b, c].map((t) => second.get(t.id))), snapshot.tasks);
    assert.deepEqual(await second.history(a.id), snapshot.history);
    assert.deepEqual(await second.output(a.id), snapshot.output);
    assert.equal(snapshot.output[0]?.stream, 'marker');
    assert.deepEqual(await second.counts(T0), snapshot.counts);
    assert.deepEqual(await second.enqueue([task({ key: 'k' })]), [{ id: a.id, created: false, state: 'succeeded' }]);
    assert.equal((await second.getSchedule('s'))?.lastSlot, T0);
    assert.equal(await second.getMeta('paused'), '["x"]');
    const [later] = await second.claim({ owner: 'n2', limit: 5, leaseMs: 1000, now: T0 + 60_000 });
    assert.equal(later?.id, c.id);
    await second.close();
  });

  it('keeps committed work and recovers the leases of a process killed with SIGKILL', async () => {
    const path = freshPath();
    const fixture = new URL('./fixtures/claim-then-hang.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, path, String(T0)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      // safety nets only: the child either prints its ids or exits early
      const signal = AbortSignal.timeout(30_000);
      const [chunk] = (await Promise.race([
        once(child.stdout, 'data', { signal }),
        once(child, 'exit', { signal }).then(([code]) => Promise.reject(new Error(`fixture exited with ${code}`))),
      ])) as [Buffer];
      const ids = JSON.parse(chunk.toString()) as string[];
      child.kill('SIGKILL');
      await once(child, 'exit');
      const store = createSqliteStore(path);
      await store.open();
      assert.deepEqual(await Promise.all(ids.map(async (id) => (await store.get(id))?.state)), ['succeeded', 'succeeded', 'running', 'running']);
      assert.deepEqual(await store.recoverExpired(T0 + 999), []);
      const back = await store.recoverExpired(T0 + 1001);
      assert.deepEqual(back.map((t) => [t.id, t.state, t.attempts]), [[ids[2], 'queued', 1], [ids[3], 'queued', 1]]);
      assert.equal((await store.counts(T0)).byState.succeeded, 2);
      await store.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a file that is not a database', async () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, Buffer.from('this is not a sqlite database, just some junk bytes '.repeat(100)));
    await assertRefused(path, 'TROUPE_ERR_STORE_CORRUPT');
    assert.equal(existsSync(`${path}-wal`), false);
  });

  it('refuses a database whose pages are damaged', async () => {
    const path = freshPath();
    const store = createSqliteStore(path);
    await store.open();
    await store.enqueue(Array.from({ length: 300 }, (_, i) => task({ input: 'x'.repeat(200 + i) })));
    await store.close();
    const bytes = readFileSync(path);
    assert.ok(bytes.length > 8 * 4096);
    for (let at = 2 * 4096; at < bytes.length; at += 4096) bytes.fill(0xa5, at + 8, at + 200);
    writeFileSync(path, bytes);
    await assertRefused(path, 'TROUPE_ERR_STORE_CORRUPT');
  });

  it('refuses a schema newer than this code', async () => {
    const path = freshPath();
    const store = createSqliteStore(path);
    await store.open();
    await store.close();
    const db = new Database(path);
    db.pragma('journal_mode = DELETE');
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await assertRefused(path, 'TROUPE_ERR_STORE_VERSION');
  });

  it('refuses the SQLite database of another application', async () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    const db = new Database(path);
    db.exec('CREATE TABLE tasks (x TEXT); INSERT INTO tasks VALUES (1)');
    db.close();
    await assertRefused(path, 'TROUPE_ERR_STORE_CORRUPT');
    const other = new Database(path);
    other.pragma(`application_id = ${APPLICATION_ID + 1}`);
    other.close();
    await assertRefused(path, 'TROUPE_ERR_STORE_CORRUPT');
  });

  it('refuses paths it cannot create or write', async () => {
    const file = join(root, `plain-file-${++n}`);
    writeFileSync(file, 'x');
    await assert.rejects(createSqliteStore(join(file, 'troupe.db')).open(), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
    const dir = join(root, `a-directory-${++n}`);
    mkdirSync(dir);
    await assert.rejects(createSqliteStore(dir).open(), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
    await assert.rejects(createSqliteStore('/proc/troupe-test/troupe.db').open(), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
  });

  it('refuses a read-only file', { skip: process.getuid?.() === 0 ? 'running as root: file permissions do not apply' : false }, async () => {
    const path = freshPath();
    const store = createSqliteStore(path);
    await store.open();
    await store.close();
    chmodSync(path, 0o444);
    try {
      await assertRefused(path, 'TROUPE_ERR_STORE_UNAVAILABLE');
    } finally {
      chmodSync(path, 0o644);
    }
  });

  it('rolls a failing settle batch back as a whole, counts included', async () => {
    const store = createSqliteStore(freshPath());
    await store.open();
    const [a, b] = [task(), task()];
    await store.enqueue([a, b]);
    await store.claim({ owner: 'n', limit: 2, leaseMs: 1000, now: T0 });
    const before = await store.counts(T0);
    await assert.rejects(
      store.settle([
        { type: 'succeeded', id: a.id, owner: 'n', attempt: 1, at: T0, result: 1 },
        { type: 'succeeded', id: b.id, owner: 'n', attempt: 1, at: T0, result: 1n },
      ]),
      { code: 'TROUPE_ERR_STORE' },
    );
    assert.equal((await store.get(a.id))?.state, 'running');
    assert.deepEqual(await store.counts(T0), before);
    assert.deepEqual(await store.settle([{ type: 'succeeded', id: a.id, owner: 'n', attempt: 1, at: T0, result: 1 }]), [true]);
    assert.equal((await store.counts(T0)).byState.succeeded, 1);
    await store.close();
  });

  it('two connections on one file never claim the same task', async () => {
    const path = freshPath();
    const one = createSqliteStore(path);
    const two = createSqliteStore(path);
    await one.open();
    await two.open();
    await one.enqueue(Array.from({ length: 50 }, () => task()));
    const got = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? one : two).claim({ owner: `n${i}`, limit: 10, leaseMs: 1000, now: T0 })));
    const ids = got.flat().map((t) => t.id);
    assert.equal(ids.length, 50);
    assert.equal(new Set(ids).size, 50);
    assert.equal((await two.counts(T0)).byState.running, 50);
    await one.close();
    await two.close();
  });

  it('two processes opening a new file at once both open it: steps the other applied meanwhile are skipped', async () => {
    // Each opener reads the file's state before its first step takes the write lock. Here the other process
    // (connection `first`) does the same work in between, as `troupe run --store sqlite:…` started twice did.
    const racedBy = (db: Database.Database, other: () => void): Database.Database => {
      let raced = false;
      return new Proxy(db, {
        get(target, prop) {
          if (prop === 'transaction') {
            return (fn: (...args: unknown[]) => unknown) => {
              const tx = target.transaction(fn);
              return {
                immediate: (...args: unknown[]) => {
                  if (!raced) {
                    raced = true;
                    other();
                  }
                  return tx.immediate(...args);
                },
              };
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }) as Database.Database;
    };
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    const first = new Database(path);
    const second = new Database(path);
    assert.deepEqual(migrate(racedBy(second, () => migrate(first))), []);
    assert.equal(second.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    // weighted-random's class table, created when a store first opens the file with that strategy, races alike.
    ensureStrategyIndex(racedBy(second, () => ensureStrategyIndex(first, 'weighted-random')), 'weighted-random');
    first.close();
    second.close();
    const store = createSqliteStore(path, { strategy: 'weighted-random' });
    await store.open();
    await store.enqueue([task()]);
    assert.equal((await store.claim({ owner: 'n1', limit: 1, leaseMs: 1000, now: T0 })).length, 1);
    await store.close();
  });

  it('answers before open and after close with coded errors, and validates its options', async () => {
    const store = createSqliteStore(freshPath());
    await assert.rejects(store.get('x'), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
    await store.open();
    await store.open();
    await store.close();
    await assert.rejects(store.open(), { code: 'TROUPE_ERR_CLOSED' });
    assert.throws(() => createSqliteStore(freshPath(), { synchronous: 'OFF' as 'FULL' }), { code: 'TROUPE_ERR_INVALID_OPTION' });
    assert.throws(() => createSqliteStore(freshPath(), { strategy: 'random' as 'fifo' }), { code: 'TROUPE_ERR_INVALID_OPTION' });
    assert.throws(() => createSqliteStore(freshPath(), { maxOutputLines: 0 }), { code: 'TROUPE_ERR_INVALID_OPTION' });
    assert.throws(() => createSqliteStore(''), { code: 'TROUPE_ERR_INVALID_OPTION' });
  });
});
