/**
 * log-statistics on a busy store, on every store: the percentiles' sample stops at `maxScan`, but throughput and
 * failure rate count every task finished in the window (they had stopped with the sample: 100,000 tasks finished
 * in an hour were reported as 10,000).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { logStatistics } from '../../../actors/maintenance/log-statistics.ts';
import { ManualClock } from '../../../src/clock.ts';
import { createMemoryStore } from '../../../src/store/memory-store.ts';
import { createPostgresStore } from '../../../src/store/postgres/postgres-store.ts';
import { createSqliteStore } from '../../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../../src/store/store.ts';
import { PG_SKIP, asyncCommitUrl, trackSchemas } from '../../helpers/pg.ts';
import { addTask } from './fixtures/finished-tasks.ts';

const MIN = 60_000;
const root = mkdtempSync(join(tmpdir(), 'troupe-log-statistics-'));
after(() => rmSync(root, { recursive: true, force: true }));
const schemas = trackSchemas('logstats');
after(() => schemas.dropAll());

const STORES: Array<{ name: string; make: () => Store; skip?: string | undefined }> = [
  { name: 'memory', make: () => createMemoryStore() },
  { name: 'sqlite', make: () => createSqliteStore(join(root, 'busy.db')) },
  { name: 'postgres', make: () => createPostgresStore(asyncCommitUrl(), { schema: schemas.next(), poolSize: 2 }), skip: PG_SKIP },
];

/**
 * In the last hour: 40 successes of tasks created hours before (the oldest-created, last in `list` order), 8
 * failures, 2 time-outs and a cancellation created inside it; one success ended exactly at the window's start and
 * one exactly at its end. Before it: 5 successes. Not final: 2 queued, 1 running.
 */
async function seedBusy(store: Store, now: number): Promise<void> {
  const start = now - 60 * MIN;
  for (let i = 0; i < 40; i++) {
    const createdAt = now - 5 * 60 * MIN + i;
    await addTask(store, { outcome: 'succeeded', createdAt, startedAt: start + (i + 1) * MIN - 500, finishedAt: start + (i + 1) * MIN });
  }
  await addTask(store, { outcome: 'succeeded', createdAt: now - 4 * 60 * MIN, startedAt: start - 100, finishedAt: start });
  await addTask(store, { outcome: 'succeeded', createdAt: now - 4 * 60 * MIN + 1, startedAt: now - 100, finishedAt: now });
  for (let i = 0; i < 5; i++) await addTask(store, { outcome: 'succeeded', createdAt: now - 3 * 60 * MIN + i, finishedAt: start - 1 });
  for (let i = 0; i < 8; i++) await addTask(store, { outcome: 'failed', createdAt: now - 30 * MIN + i, finishedAt: now - 20 * MIN + i });
  for (let i = 0; i < 2; i++) await addTask(store, { outcome: 'timed_out', createdAt: now - 10 * MIN + i, finishedAt: now - 5 * MIN + i });
  await addTask(store, { outcome: 'cancelled', createdAt: now - 2 * MIN });
  await addTask(store, { outcome: 'queued', createdAt: now - MIN });
  await addTask(store, { outcome: 'queued', createdAt: now - MIN + 1 });
  await addTask(store, { outcome: 'running', createdAt: now - MIN + 2 });
}

describe('log-statistics past maxScan: exact throughput on every store', () => {
  for (const { name, make, skip } of STORES) {
    it(name, skip ? { skip } : {}, async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 5, 12));
      const now = clock.now();
      const store = make();
      await store.open();
      try {
        await seedBusy(store, now);
        const lines: string[] = [];
        const r = await logStatistics({ windowMinutes: 60 }, { store, clock, maxScan: 10, log: (line) => lines.push(line) });
        assert.deepEqual(r.throughput, { finished: 53, succeeded: 42, failed: 8, timedOut: 2, cancelled: 1, perMinute: 0.88 });
        assert.equal(r.failureRate, Math.round((10 / 52) * 10_000) / 10_000);
        assert.equal(r.throughputExact, true);
        assert.equal(r.scanned, 10);
        assert.equal(r.truncated, true);
        // The sample: the 10 newest-created final tasks are the cancellation, the 2 time-outs and 7 of the failures.
        assert.equal(r.durationsMs?.count, 9, 'the sample size (the cancellation has no run time)');
        assert.equal(r.counts.succeeded, 47);
        assert.equal(r.counts.queued, 2);
        assert.equal(r.counts.running, 1);
        assert.match(lines[0]!, /53 finished \(0\.88\/min\).*\(percentiles from the 10 newest-created final tasks\)$/);
      } finally {
        await store.close();
      }
    });
  }
});
