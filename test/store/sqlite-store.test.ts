import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { APPLICATION_ID, MIGRATIONS } from '../../src/store/sqlite/migrations.ts';
import { PURGE_BATCH } from '../../src/store/sqlite/queries/purge.ts';
import { TASK_ROOM } from '../../src/store/sqlite/queries/rows.ts';
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

  it('a version 5 file upgrades to rows with room: its rows have none and still claim and settle, new rows reserve it', async () => {
    const { path, db } = fileAtVersion(5);
    const old = createTaskId(T0);
    db.prepare(`INSERT INTO tasks (id, name, state, input, priority, weight, max_attempts, created_at, run_at, updated_at, history)
      VALUES (?, 'job', 'queued', '{}', 0, 1, 3, ?, ?, ?, ?)`).run(old, T0, T0, T0, `-q${T0},0\n`);
    db.close();
    const store = createSqliteStore(path);
    await store.open();
    const young = createTaskId(T0 + 1);
    try {
      await store.enqueue([{ id: young, name: 'job', input: {}, priority: 0, weight: 1, maxAttempts: 3, createdAt: T0 + 1, runAt: T0 + 1 }]);
      const room = (id: string) => {
        const check = new Database(path, { readonly: true });
        try {
          return check.prepare<[string], { room: number | null }>('SELECT length(room) AS room FROM tasks WHERE id = ?').get(id)!.room;
        } finally {
          check.close();
        }
      };
      assert.equal(room(old), null);
      assert.equal(room(young), TASK_ROOM);
      const claimed = await store.claim({ owner: 'n', limit: 2, leaseMs: 1000, now: T0 + 10, names: ['job'] });
      assert.deepEqual(claimed.map((t) => t.id), [old, young]);
      assert.equal(room(old), null);
      assert.ok(room(young)! < TASK_ROOM && room(young)! > 0, `room after the claim: ${room(young)}`);
      assert.deepEqual(await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'n', attempt: 1, at: T0 + 11, result: { ok: t.id } }))), [true, true]);
      assert.equal(room(young), null);
      for (const id of [old, young]) {
        assert.equal((await store.get(id))!.result !== undefined, true);
        assert.deepEqual((await store.history(id)).map((h) => h.to), ['queued', 'running', 'succeeded']);
      }
    } finally {
      await store.close();
    }
  });

  it('a version 6 file measures the output it holds when it upgrades, and its tasks are then kept within their bytes', async () => {
    const { path, db } = fileAtVersion(6);
    const [id, none] = [createTaskId(T0), createTaskId(T0 + 1)];
    const task = db.prepare(`INSERT INTO tasks (id, name, state, input, priority, weight, max_attempts, created_at, run_at, updated_at, output_lines, output_dropped, output_last_seq)
      VALUES (?, 'job', 'running', '{}', 0, 1, 3, ?, ?, ?, ?, ?, ?)`);
    task.run(id, T0, T0, T0, 4, 2, 6);
    task.run(none, T0, T0, T0, 0, 0, null);
    const row = db.prepare('INSERT INTO output (task_id, seq, n, stream, at, texts) VALUES (?, ?, ?, ?, ?, ?)');
    row.run(id, 2, 1, 'marker', T0, JSON.stringify(['[2 earlier lines dropped]']));
    // 2 + 4 + 5 ('a', a NUL, and an unpaired surrogate as the 3 bytes of U+FFFD) bytes, then 5
    row.run(id, 3, 3, 'stdout', T0, JSON.stringify(['é', '😀', 'a\u0000\ud800']));
    row.run(id, 6, 1, 'stderr', T0 + 1, JSON.stringify(['hello']));
    db.close();
    const store = createSqliteStore(path);
    await store.open();
    try {
      const check = new Database(path, { readonly: true });
      try {
        assert.deepEqual(check.prepare('SELECT seq, bytes FROM output WHERE task_id = ? ORDER BY seq').all(id), [{ seq: 2, bytes: 0 }, { seq: 3, bytes: 11 }, { seq: 6, bytes: 5 }]);
        assert.deepEqual(check.prepare('SELECT id, output_bytes FROM tasks ORDER BY id').all(), [{ id, output_bytes: 16 }, { id: none, output_bytes: 0 }]);
      } finally {
        check.close();
      }
      // 16 + 3 bytes against a cap of 12: the 11-byte row goes, the rest fits
      await store.settle([{ type: 'output', id, lines: [{ seq: 7, stream: 'stdout', text: 'new', at: T0 + 2 }], caps: { maxLines: 100, maxBytes: 12 } }]);
      assert.deepEqual(await store.output(id), [
        { seq: 5, stream: 'marker', text: '[5 earlier lines dropped]', at: T0 },
        { seq: 6, stream: 'stderr', text: 'hello', at: T0 + 1 },
        { seq: 7, stream: 'stdout', text: 'new', at: T0 + 2 },
      ]);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite row room', () => {
  /** The bytes of every row of `tasks` as stored (cell payloads, read through dbstat). */
  const rowBytes = (path: string): number => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare<[], number>("SELECT sum(payload) FROM dbstat WHERE name = 'tasks' AND pagetype = 'leaf'").pluck().get()!;
    } finally {
      db.close();
    }
  };
  // a runtime's owner is `host:pid:start:tag` (ids.ts createNodeId); the room covers a claim by an owner of up to
  // 60 characters, and a success (result null) after a claim by one of up to about 36
  const OWNERS = ['n', 'node-3f9c2a7e-5d1b', 'ci-runner-7:48211:mi9x3k2a:5f1c', 'build-host-42.example.internal:123456:m4x1k2q9:a1b2'];

  for (const owner of OWNERS) {
    const successFits = owner.length <= 36;
    it(`a claim by an owner of ${owner.length} characters${successFits ? ' and a success (result null) leave' : ' leaves'} every row no larger than enqueued`, async () => {
      const path = join(root, `store-${++n}.db`);
      const store = createSqliteStore(path);
      await store.open();
      try {
        const tasks = Array.from({ length: 200 }, (_, i) => ({ id: createTaskId(T0 + i), name: 'job', input: { i }, priority: 0, weight: 1, maxAttempts: 3, createdAt: T0 + i, runAt: T0 + i }));
        await store.enqueue(tasks);
        const enqueued = rowBytes(path);
        const claimed = await store.claim({ owner, limit: 200, leaseMs: 30_000, now: T0 + 1000, names: ['job'] });
        assert.equal(claimed.length, 200);
        const leased = rowBytes(path);
        assert.ok(leased <= enqueued, `claimed rows: ${leased} bytes, enqueued ${enqueued}`);
        // the claim gives up about what it adds, not more: what is left is there for the success
        assert.ok(enqueued - leased < 200 * 12, `claimed rows ${enqueued - leased} bytes smaller than enqueued`);
        await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner, attempt: 1, at: T0 + 2000, result: null })));
        const settled = rowBytes(path);
        if (successFits) assert.ok(settled <= enqueued, `settled rows: ${settled} bytes, enqueued ${enqueued}`);
      } finally {
        await store.close();
      }
    });
  }

  it('a retried task claimed again, with its due line, takes room only while some is left; a failure frees it', async () => {
    const path = join(root, `store-${++n}.db`);
    const store = createSqliteStore(path);
    await store.open();
    try {
      const id = createTaskId(T0);
      await store.enqueue([{ id, name: 'job', input: {}, priority: 0, weight: 1, maxAttempts: 5, createdAt: T0, runAt: T0 }]);
      for (let attempt = 1; attempt <= 4; attempt++) {
        const [t] = await store.claim({ owner: 'node-3f9c2a7e-5d1b', limit: 1, leaseMs: 1000, now: T0 + attempt * 100, names: ['job'] });
        assert.equal(t?.id, id);
        assert.deepEqual(await store.settle([{ type: 'retry', id, owner: 'node-3f9c2a7e-5d1b', attempt, at: T0 + attempt * 100 + 1, runAt: T0 + attempt * 100 + 50, error: { name: 'Error', message: 'again' } }]), [true]);
      }
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.prepare<[string], number>('SELECT length(room) FROM tasks WHERE id = ?').pluck().get(id), 0);
      } finally {
        db.close();
      }
      assert.equal((await store.history(id)).length, 1 + 4 * 2 + 3);
      // the last attempt fails: a task that ended keeps no room
      const [last] = await store.claim({ owner: 'node-3f9c2a7e-5d1b', limit: 1, leaseMs: 1000, now: T0 + 500, names: ['job'] });
      assert.equal(last?.attempts, 5);
      assert.deepEqual(await store.settle([{ type: 'failed', id, owner: 'node-3f9c2a7e-5d1b', attempt: 5, at: T0 + 501, error: { name: 'Error', message: 'no' } }]), [true]);
      const after = new Database(path, { readonly: true });
      try {
        assert.equal(after.prepare<[string], unknown>('SELECT room FROM tasks WHERE id = ?').pluck().get(id), null);
      } finally {
        after.close();
      }
    } finally {
      await store.close();
    }
  });
});

describe('sqlite purge of a large backlog', () => {
  it('deletes in short transactions and gives the event loop back between them, oldest finished first', () =>
    withStore(async (options) => make(options), {}, async ({ store, task, claim, clock }) => {
      const total = 2 * PURGE_BATCH + 10;
      await store.enqueue(Array.from({ length: total }, () => task()));
      const settled: string[] = [];
      for (;;) {
        const claimed = await claim({ limit: 500 });
        if (claimed.length === 0) break;
        settled.push(...claimed.map((t) => t.id));
        await clock.advance(1);
        await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: t.owner!, attempt: t.attempts, at: clock.now(), result: 1 })));
      }
      assert.equal((await store.counts(clock.now())).byState.succeeded, total);
      await clock.advance(10);
      const purge = store.purge({ finishedBefore: clock.now() });
      let purged = false;
      void purge.then(() => (purged = true));
      // better-sqlite3 is synchronous: one DELETE of the whole backlog held the main thread until it was done, so the
      // purge had settled before any timer or I/O callback could run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(purged, false, 'a callback ran while the purge was still deleting');
      const left = (await store.counts(clock.now())).byState.succeeded;
      assert.ok(left > 0 && left < total, `${left} tasks left between batches`);
      assert.equal(await store.get(settled[0]!), undefined, 'the first finished went first');
      assert.ok(await store.get(settled.at(-1)!), 'the last finished is still there');
      assert.equal(await purge, total);
      assert.equal((await store.counts(clock.now())).byState.succeeded, 0);
    }));
});
