import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { APPLICATION_ID, MIGRATIONS } from '../../src/store/sqlite/migrations.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { StoreOptions } from '../../src/store/store.ts';
import type { OutputLine } from '../../src/task.ts';
import { withStore } from './contract/context.ts';
import { runStoreContract } from './store.contract.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-sqlite-contract-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const T0 = 1_765_000_000_000;

runStoreContract('sqlite', async (options) => createSqliteStore(join(root, `store-${++n}.db`), options));

const make = (options: StoreOptions) => createSqliteStore(join(root, `store-${++n}.db`), options);

describe('sqlite output runs', () => {
  it('keeps every text exactly, in long runs and alone (NUL, lone surrogates, escapes)', () =>
    withStore(async (options) => make(options), {}, async ({ store, add }) => {
      const t = await add();
      const texts = ['a\u0000b', '\ud800x', 'x\udfff', 'z\ud83d', '😀', '\u0000', 'plain', '"\\', '[1]'];
      // a long run: one stream, one time, consecutive seqs; then each text alone (the streams alternate)
      const run = Array.from({ length: 70 }, (_, i): OutputLine => ({ seq: 1 + i, stream: 'stdout', text: texts[i % texts.length]!, at: 1 }));
      const alone = Array.from({ length: 70 }, (_, i): OutputLine => ({ seq: 101 + i, stream: i % 2 ? 'stdout' : 'stderr', text: texts[i % texts.length]!, at: 2 }));
      assert.deepEqual(await store.settle([{ type: 'output', id: t.id, lines: [...run, ...alone] }]), [true]);
      assert.deepEqual(await store.output(t.id), [...run, ...alone]);
    }));

  it('stores a run as one row, at most MAX_RUN lines each', () =>
    withStore(async (options) => make(options), {}, async ({ store, add }) => {
      const t = await add();
      const lines = Array.from({ length: 600 }, (_, i): OutputLine => ({ seq: 1000 + i, stream: 'stdout', text: `l${i}`, at: 3 }));
      await store.settle([{ type: 'output', id: t.id, lines }]);
      const db = new Database(join(root, `store-${n}.db`), { readonly: true });
      try {
        const rows = db.prepare('SELECT seq, n FROM output WHERE task_id = ? ORDER BY seq').all(t.id);
        assert.deepEqual(rows, [{ seq: 1000, n: 256 }, { seq: 1256, n: 256 }, { seq: 1512, n: 88 }]);
      } finally {
        db.close();
      }
      assert.deepEqual(await store.output(t.id), lines);
    }));

  it('keeps the newest lines behind the marker while small batches keep coming (rows cut in the middle)', () =>
    withStore(async (options) => make(options), { maxOutputLines: 50 }, async ({ store, add }) => {
      const t = await add();
      const all: OutputLine[] = [];
      for (let b = 0; b < 40; b++) {
        const batch = Array.from({ length: 7 }, (_, i): OutputLine => ({ seq: 10 * b + i, stream: b % 3 ? 'stdout' : 'stderr', text: `b${b} l${i}`, at: b }));
        all.push(...batch);
        await store.settle([{ type: 'output', id: t.id, lines: batch }]);
        const out = await store.output(t.id);
        const kept = all.slice(-50);
        if (all.length <= 50) {
          assert.deepEqual(out, kept);
          continue;
        }
        const newestDropped = all[all.length - 51]!;
        assert.deepEqual(out[0], { seq: newestDropped.seq, stream: 'marker', text: `[${all.length - 50} earlier lines dropped]`, at: newestDropped.at });
        assert.deepEqual(out.slice(1), kept, `after batch ${b}`);
        assert.deepEqual(await store.output(t.id, newestDropped.seq, 3), kept.slice(0, 3));
        assert.deepEqual(await store.output(t.id, kept[9]!.seq, 5), kept.slice(10, 15));
      }
    }));

  /** A store file as troupe wrote it at schema `version`, left open to fill. */
  const fileAtVersion = (version: number): { path: string; db: Database.Database } => {
    const path = join(root, `store-${++n}.db`);
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.filter((x) => x.version <= version)) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    return { path, db };
  };

  it('a version 3 file keeps its output lines when it upgrades to runs', async () => {
    const { path, db } = fileAtVersion(3);
    const id = createTaskId(T0);
    db.prepare(`INSERT INTO tasks (id, name, state, input, priority, weight, max_attempts, created_at, run_at, updated_at, output_lines, output_dropped, output_last_seq)
      VALUES (?, 'job', 'running', '{}', 0, 1, 3, ?, ?, ?, 2, 5, 7)`).run(id, T0, T0, T0);
    const old = [
      { seq: 5, stream: 'marker', text: '[5 earlier lines dropped]', at: T0 },
      { seq: 6, stream: 'stdout', text: 'a\u0000b "q"', at: T0 + 1 },
      { seq: 7, stream: 'stderr', text: '😀', at: T0 + 2 },
    ];
    for (const l of old) db.prepare('INSERT INTO output (task_id, seq, stream, text, at) VALUES (?, ?, ?, ?, ?)').run(id, l.seq, l.stream, l.text, l.at);
    db.close();
    const store = createSqliteStore(path, { maxOutputLines: 2 });
    await store.open();
    try {
      assert.deepEqual(await store.output(id), old);
      await store.settle([{ type: 'output', id, lines: [{ seq: 8, stream: 'stdout', text: 'new', at: T0 + 3 }] }]);
      assert.deepEqual(await store.output(id), [{ seq: 6, stream: 'marker', text: '[6 earlier lines dropped]', at: T0 + 1 }, old[2], { seq: 8, stream: 'stdout', text: 'new', at: T0 + 3 }]);
    } finally {
      await store.close();
    }
  });

  it('a version 4 file keeps every task history, in order, when it moves into the rows', async () => {
    const { path, db } = fileAtVersion(4);
    const [a, b, none] = [createTaskId(T0), createTaskId(T0 + 1), createTaskId(T0 + 2)];
    const task = db.prepare(`INSERT INTO tasks (id, name, state, input, priority, weight, max_attempts, attempts, created_at, run_at, updated_at)
      VALUES (?, 'job', ?, '{}', 0, 1, 3, ?, ?, ?, ?)`);
    task.run(a, 'retrying', 1, T0, T0, T0);
    task.run(b, 'queued', 0, T0, T0, T0);
    task.run(none, 'queued', 0, T0, T0, T0);
    const error = { name: 'Error', message: 'boom "quoted"\nsecond line', code: 'E_X' };
    const history = db.prepare('INSERT INTO transitions (task_id, from_state, to_state, at, attempt, reason, error) VALUES (?, ?, ?, ?, ?, ?, ?)');
    // interleaved, so that seq order and not row order decides
    history.run(a, null, 'queued', T0, 0, null, null);
    history.run(b, null, 'queued', T0 + 1, 0, null, null);
    history.run(a, 'queued', 'running', T0 + 2, 1, null, null);
    history.run(a, 'running', 'retrying', T0 + 3, 1, 'retry in 5 ms', JSON.stringify(error));
    db.close();
    const store = createSqliteStore(path);
    await store.open();
    try {
      assert.deepEqual(await store.history(a), [
        { taskId: a, from: null, to: 'queued', at: T0, attempt: 0 },
        { taskId: a, from: 'queued', to: 'running', at: T0 + 2, attempt: 1 },
        { taskId: a, from: 'running', to: 'retrying', at: T0 + 3, attempt: 1, reason: 'retry in 5 ms', error },
      ]);
      assert.deepEqual(await store.history(b), [{ taskId: b, from: null, to: 'queued', at: T0 + 1, attempt: 0 }]);
      assert.deepEqual(await store.history(none), []);
      // the moved history goes on growing: a claim appends to it
      const [claimed] = await store.claim({ owner: 'n', limit: 1, leaseMs: 1000, now: T0 + 10, names: ['job'] });
      assert.equal(claimed!.id, a);
      assert.deepEqual((await store.history(a)).slice(3), [
        { taskId: a, from: 'retrying', to: 'queued', at: T0 + 10, attempt: 1, reason: 'due' },
        { taskId: a, from: 'queued', to: 'running', at: T0 + 10, attempt: 2 },
      ]);
    } finally {
      await store.close();
    }
    const check = new Database(path, { readonly: true });
    assert.deepEqual(check.prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'transitions%'").all(), []);
    check.close();
  });
});
