/**
 * WAL checkpoints on their own thread (src/store/sqlite/checkpointer.ts): the thread copies the WAL back while the
 * main connection only writes; when the thread cannot run, SQLite's own checkpoint on the main connection is back.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createTaskId } from '../../src/ids.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { NewTask } from '../../src/task.ts';
import { waitFor } from '../helpers/wait-for.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-sqlite-checkpoints-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(root, `case-${++n}.db`);
const T0 = Date.UTC(2026, 0, 1);
/** About one 4 KiB page per task (the input pads it). */
const tasks = (count: number): NewTask[] =>
  Array.from({ length: count }, () => ({ id: createTaskId(T0), name: 'job', input: { pad: 'x'.repeat(3000) }, priority: 0, weight: 1, maxAttempts: 1, createdAt: T0, runAt: T0 }));

const walPages = (path: string): number => (existsSync(`${path}-wal`) ? Math.round(statSync(`${path}-wal`).size / 4096) : 0);

describe('sqlite checkpoints', () => {
  it('the first write starts a thread that copies the WAL back into the file; close waits for it and leaves no WAL', async () => {
    const path = freshPath();
    const store = createSqliteStore(path, { checkpointThread: { intervalMs: 5, idleIntervalMs: 20, minPages: 100 } });
    await store.open();
    await store.counts(T0);
    assert.equal(store.checkpointStats?.state, undefined, 'no thread for a store that only reads');
    await store.enqueue(tasks(100));
    await waitFor(() => store.checkpointStats?.state === 'online', { label: 'thread online' });
    for (let i = 1; i < 20; i++) await store.enqueue(tasks(100));
    const stats = await waitFor<NonNullable<typeof store.checkpointStats>>(() => (store.checkpointStats!.pages >= 2000 ? store.checkpointStats : undefined), { timeout: 10_000, label: 'pages checkpointed by the thread' });
    assert.equal(stats!.state, 'online');
    assert.ok(stats!.checkpoints >= 1);
    await store.close();
    assert.equal(store.checkpointStats, undefined);
    assert.equal(existsSync(`${path}-wal`), false, 'the last close checkpointed and removed the WAL');
    const again = createSqliteStore(path, { checkpoints: 'inline' });
    await again.open();
    assert.equal((await again.counts(T0)).byState.queued, 2000);
    await again.close();
  });

  it('a thread that cannot run puts the checkpoint back on the main connection (the WAL stays short)', async () => {
    const path = freshPath();
    const store = createSqliteStore(path, { checkpointThread: { source: "throw new Error('no checkpoint thread here')" } });
    await store.open();
    await store.enqueue(tasks(1));
    await waitFor(() => store.checkpointStats?.state === 'failed', { label: 'thread failed' });
    // 3000 pages in 30 commits: SQLite checkpoints at 1000 pages and starts the WAL over; with the backstop of
    // 4000 pages alone, the WAL would hold all 3000
    for (let i = 0; i < 30; i++) await store.enqueue(tasks(100));
    assert.ok(walPages(path) < 2000, `WAL of ${walPages(path)} pages`);
    await store.close();
  });

  it("'inline' keeps SQLite's own checkpoints; a bad value is refused with a code", async () => {
    const path = freshPath();
    const store = createSqliteStore(path, { checkpoints: 'inline' });
    await store.open();
    assert.equal(store.checkpointStats, undefined);
    for (let i = 0; i < 30; i++) await store.enqueue(tasks(100));
    assert.ok(walPages(path) < 2000, `WAL of ${walPages(path)} pages`);
    await store.close();
    assert.throws(() => createSqliteStore(path, { checkpoints: 'sometimes' as 'inline' }), { code: 'TROUPE_ERR_INVALID_OPTION' });
    const memory = createSqliteStore(':memory:');
    await memory.open();
    assert.equal(memory.checkpointStats, undefined, 'an in-memory database has no WAL to checkpoint');
    await memory.close();
  });
});
