/**
 * The statistics book and its persistence (issue 9): changed names are written with `setMeta('stats:<name>')`,
 * read back after the store is closed and reopened (a real SQLite file), and a record that cannot be read is
 * skipped and reported instead of failing the start.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createStatsPersister, flushStats, restoreStats, statsKey, StatsBook } from '../../src/advice/stats-book.ts';
import { TaskStats } from '../../src/advice/task-stats.ts';
import { ManualClock } from '../../src/clock.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function sqlitePath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'troupe-stats-'));
  dirs.push(dir);
  return `sqlite:${join(dir, 'troupe.db')}`;
}

/** A setMeta-only store that records writes and can be told to fail. */
function metaStore() {
  const data = new Map<string, string>();
  let failures = 0;
  return {
    data,
    failNext(n = 1) {
      failures = n;
    },
    async setMeta(key: string, value: string | undefined) {
      if (failures > 0) {
        failures--;
        throw new Error('disk full');
      }
      if (value === undefined) data.delete(key);
      else data.set(key, value);
    },
    async getMeta(key: string) {
      return data.get(key);
    },
  };
}

describe('StatsBook', () => {
  it('a name still loading is not written; its stored record, once read, takes the runs recorded meanwhile', async () => {
    const store = metaStore();
    const old = new StatsBook();
    for (let i = 0; i < 3; i++) old.observe({ name: 'io', outcome: 'succeeded', attempt: 1, durationMs: 1, at: 1000 + i });
    old.observeOverlap('io', 'hourly', true);
    await flushStats(old, store);

    const book = new StatsBook();
    const loading = book.loading('io');
    book.observe({ name: 'io', outcome: 'failed', attempt: 1, at: 2000 });
    book.observeOverlap('io', 'hourly', false);
    book.observe({ name: 'other', outcome: 'succeeded', attempt: 1 });
    assert.deepEqual(book.takeDirty(), ['other'], 'io is held back while its record is read');
    await restoreStats(book, store, ['io']);
    loading.done();
    assert.deepEqual(book.takeDirty(), ['io']);
    const io = book.get('io')!.toJSON();
    assert.deepEqual([io.totals.attempts, io.totals.succeeded, io.totals.failed], [4, 3, 1]);
    assert.deepEqual(io.samples.at, [1000, 1001, 1002, 2000], 'the stored runs first, then the new one');
    assert.deepEqual(io.schedules, [{ id: 'hourly', slots: 2, overlapped: 1 }]);
  });

  it('keeps one record per name and remembers which names changed', () => {
    const book = new StatsBook();
    book.observe({ name: 'a', outcome: 'succeeded', attempt: 1, durationMs: 5 });
    book.observe({ name: 'b', outcome: 'failed', attempt: 1 });
    book.observe({ name: 'a', outcome: 'succeeded', attempt: 1, durationMs: 7 });
    book.observeOverlap('c', 'nightly', true);
    assert.deepEqual(book.names().sort(), ['a', 'b', 'c']);
    assert.equal(book.get('a')!.size, 2);
    assert.equal(book.get('missing'), undefined);
    assert.deepEqual(book.takeDirty().sort(), ['a', 'b', 'c']);
    assert.deepEqual(book.takeDirty(), []);
  });

  it('survives a restart through a SQLite store: flush, close, reopen, restore', async () => {
    const spec = await sqlitePath();
    const book = new StatsBook();
    for (let i = 1; i <= 30; i++) book.observe({ name: 'resize', outcome: i % 10 ? 'succeeded' : 'retrying', attempt: 1, at: 1_000 + i, durationMs: i, cpuMs: i / 2 });
    book.observeOverlap('resize', 'every-5m', true);
    const before = book.get('resize')!.summary();

    const first = await openStore(spec);
    assert.equal(await flushStats(book, first), 1);
    assert.equal(await flushStats(book, first), 0, 'nothing changed since');
    await first.close();

    const second = await openStore(spec);
    try {
      const restored = new StatsBook();
      const result = await restoreStats(restored, second, ['resize', 'never-ran']);
      assert.deepEqual(result, { restored: ['resize'], unreadable: [] });
      assert.deepEqual(restored.get('resize')!.summary(), before);
      assert.equal(restored.get('never-ran'), undefined);
    } finally {
      await second.close();
    }
  });

  it('skips and reports a record that cannot be read', async () => {
    const store = metaStore();
    store.data.set(statsKey('broken'), '{not json');
    store.data.set(statsKey('wrong-shape'), JSON.stringify({ version: 9 }));
    const other = new TaskStats('other');
    other.observe({ name: 'other', outcome: 'succeeded', attempt: 1 });
    store.data.set(statsKey('renamed'), JSON.stringify(other));
    const book = new StatsBook();
    const result = await restoreStats(book, store, ['broken', 'wrong-shape', 'renamed']);
    assert.deepEqual(result, { restored: [], unreadable: ['broken', 'wrong-shape', 'renamed'] });
    assert.deepEqual(book.names(), []);
  });

  it('a failed write keeps the names marked for the next flush', async () => {
    const store = metaStore();
    const book = new StatsBook();
    book.observe({ name: 'a', outcome: 'succeeded', attempt: 1 });
    book.observe({ name: 'b', outcome: 'succeeded', attempt: 1 });
    store.failNext();
    await assert.rejects(flushStats(book, store), /disk full/);
    assert.equal(await flushStats(book, store), 2);
    assert.deepEqual([...store.data.keys()].sort(), ['stats:a', 'stats:b']);
  });

  it('the persister flushes every `everyMs` on the clock and once more on close (idempotent)', async () => {
    const clock = new ManualClock(0);
    const store = metaStore();
    const book = new StatsBook({ clock });
    const errors: unknown[] = [];
    const persister = createStatsPersister({ book, store, clock, everyMs: 10_000, onError: (e) => errors.push(e) });
    book.observe({ name: 'a', outcome: 'succeeded', attempt: 1 });
    await clock.advance(9_999);
    assert.equal(store.data.size, 0);
    await clock.advance(1);
    assert.deepEqual([...store.data.keys()], ['stats:a']);

    book.observe({ name: 'b', outcome: 'succeeded', attempt: 1 });
    store.failNext();
    await clock.advance(10_000);
    assert.equal(errors.length, 1, 'the failure is reported, the timer keeps going');
    await clock.advance(10_000);
    assert.ok(store.data.has('stats:b'));

    book.observe({ name: 'c', outcome: 'succeeded', attempt: 1 });
    const closing = persister.close();
    assert.equal(persister.close(), closing);
    await closing;
    assert.ok(store.data.has('stats:c'));
    assert.equal(clock.pending, 0, 'no timer left armed');
  });

  it('writes JSON that a store of any kind keeps as text', async () => {
    const store: Pick<Store, 'setMeta'> & { last?: string } = {
      async setMeta(_key, value) {
        this.last = value;
      },
    };
    const book = new StatsBook();
    book.observe({ name: 'a', outcome: 'succeeded', attempt: 1, durationMs: 1.25 });
    await flushStats(book, store);
    const parsed = JSON.parse(store.last!);
    assert.equal(parsed.version, 1);
    assert.deepEqual(parsed.samples.durationMs, [1.25]);
  });
});
