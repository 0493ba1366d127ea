import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { createHealthSampler } from '../../../actors/health/health-sampler.ts';
import { logStatistics, parseLogStatisticsInput } from '../../../actors/maintenance/log-statistics.ts';
import { ManualClock } from '../../../src/clock.ts';
import { ErrorCodes } from '../../../src/errors.ts';
import { createMemoryStore } from '../../../src/store/memory-store.ts';
import { addTask } from './fixtures/finished-tasks.ts';

const MIN = 60_000;

async function seed(store: ReturnType<typeof createMemoryStore>, now: number): Promise<void> {
  // Ten successes in the last hour, run times 100, 200, … 1000 ms, each waited 50 ms after being due.
  for (let i = 1; i <= 10; i++) {
    const createdAt = now - 50 * MIN + i * MIN;
    await addTask(store, { outcome: 'succeeded', createdAt, startedAt: createdAt + 50, finishedAt: createdAt + 50 + i * 100 });
  }
  await addTask(store, { outcome: 'failed', createdAt: now - 10 * MIN, finishedAt: now - 10 * MIN + 2000 });
  await addTask(store, { outcome: 'failed', createdAt: now - 9 * MIN, finishedAt: now - 9 * MIN + 3000 });
  await addTask(store, { outcome: 'timed_out', createdAt: now - 8 * MIN, finishedAt: now - 8 * MIN + 30_000 });
  await addTask(store, { outcome: 'cancelled', createdAt: now - 7 * MIN });
  // Created before the window but finished inside it: counted.
  await addTask(store, { outcome: 'succeeded', createdAt: now - 3 * 60 * MIN, startedAt: now - 30 * MIN, finishedAt: now - 30 * MIN + 1100 });
  // Finished before the window: not counted.
  for (let i = 0; i < 3; i++) await addTask(store, { outcome: 'succeeded', createdAt: now - 2 * 60 * MIN + i, finishedAt: now - 2 * 60 * MIN + 5 });
  // Waiting and running work.
  await addTask(store, { outcome: 'queued', createdAt: now - 90_000 });
  await addTask(store, { outcome: 'queued', createdAt: now - 1000 });
  await addTask(store, { outcome: 'running', createdAt: now - 2000 });
}

describe('logStatistics', () => {
  it('counts, throughput, failure rate, percentiles and the oldest due age over the last hour', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 12));
    const now = clock.now();
    await using store = createMemoryStore();
    await seed(store, now);
    const lines: string[] = [];
    const r = await logStatistics(undefined, { store, clock, log: (line) => lines.push(line) });

    assert.equal(r.at, now);
    assert.equal(r.windowMinutes, 60);
    assert.equal(r.counts.succeeded, 14);
    assert.equal(r.counts.failed, 2);
    assert.equal(r.counts.timed_out, 1);
    assert.equal(r.counts.cancelled, 1);
    assert.equal(r.counts.queued, 2);
    assert.equal(r.counts.running, 1);
    assert.deepEqual(r.throughput, { finished: 15, succeeded: 11, failed: 2, timedOut: 1, cancelled: 1, perMinute: 0.25 });
    assert.equal(r.failureRate, Math.round((3 / 14) * 10_000) / 10_000);
    // Run times: 100…1000 (10), 1100, 2000, 3000, 30000 → 14 values, nearest rank.
    assert.deepEqual(r.durationsMs, { count: 14, p50: 700, p95: 30_000, p99: 30_000, max: 30_000 });
    assert.equal(r.waitMs?.count, 14);
    assert.equal(r.waitMs?.max, 150 * MIN, 'the late task waited from its due time (−3 h) to its start (−30 min)');
    assert.equal(r.waitMs?.p50, 50);
    assert.equal(r.oldestDueAgeSec, 90);
    assert.equal(r.truncated, false);
    assert.equal(r.throughputExact, true);
    assert.equal(r.scanned, 18, 'every final task, none of the waiting or running ones');
    assert.equal(r.system, undefined);
    assert.equal(lines.length, 1, 'one summary line');
    assert.match(lines[0]!, /15 finished/);
  });

  it('an empty store gives zeros and no rates', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    const r = await logStatistics({ windowMinutes: 15 }, { store, clock });
    assert.equal(r.throughput.finished, 0);
    assert.equal(r.failureRate, null);
    assert.equal(r.durationsMs, undefined);
    assert.equal(r.oldestDueAgeSec, 0);
    assert.equal(r.scanned, 0);
  });

  it('stops the percentiles’ sample after maxScan final tasks and says so; throughput stays exact', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    await seed(store, clock.now());
    const r = await logStatistics({ windowMinutes: 60 }, { store, clock, maxScan: 5 });
    assert.equal(r.scanned, 5);
    assert.equal(r.truncated, true);
    assert.equal(r.throughputExact, true);
    assert.deepEqual(r.throughput, { finished: 15, succeeded: 11, failed: 2, timedOut: 1, cancelled: 1, perMinute: 0.25 });
    assert.ok(r.durationsMs !== undefined && r.durationsMs.count <= 5, 'the percentiles are a sample of the scanned tasks');
  });

  it('a store without countFinished: throughput from the scan, not exact once it stops early', async () => {
    const clock = new ManualClock();
    await using memory = createMemoryStore();
    await seed(memory, clock.now());
    // A custom store written against the port before countFinished.
    const store = { list: memory.list.bind(memory), counts: memory.counts.bind(memory) };
    const whole = await logStatistics({ windowMinutes: 60 }, { store, clock });
    assert.equal(whole.truncated, false);
    assert.equal(whole.throughputExact, true);
    assert.deepEqual(whole.throughput, { finished: 15, succeeded: 11, failed: 2, timedOut: 1, cancelled: 1, perMinute: 0.25 });
    const lines: string[] = [];
    const cut = await logStatistics({ windowMinutes: 60 }, { store, clock, maxScan: 5, log: (line) => lines.push(line) });
    assert.equal(cut.truncated, true);
    assert.equal(cut.throughputExact, false);
    assert.ok(cut.throughput.finished <= 5);
    assert.match(lines[0]!, /percentiles from the 5 newest-created final tasks, throughput too/);
  });

  it('a narrower window counts fewer tasks', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    await seed(store, clock.now());
    const r = await logStatistics({ windowMinutes: 9 }, { store, clock });
    // Finished within the last 9 minutes: the second failure (−9 min + 3 s), the time-out and the cancellation.
    assert.deepEqual([r.throughput.failed, r.throughput.timedOut, r.throughput.cancelled, r.throughput.succeeded], [1, 1, 1, 0]);
  });

  it('includes the runtime’s own readings when given a sampler', async (t) => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    const sampler = createHealthSampler({ clock, diskPath: tmpdir() });
    t.after(() => sampler.close());
    const r = await logStatistics({}, { store, clock, sampler });
    assert.ok(r.system !== undefined);
    assert.ok(r.system.memoryRss > 0);
    assert.equal(r.system.loadavg.length, 3);
  });

  it('validates its input with INVALID_INPUT', () => {
    assert.deepEqual(parseLogStatisticsInput(undefined), { windowMinutes: 60 });
    assert.deepEqual(parseLogStatisticsInput({ windowMinutes: '30' }), { windowMinutes: 30 });
    for (const raw of [{ windowMinutes: 0 }, { windowMinutes: 7 * 24 * 60 + 1 }, { window: 5 }, 'x']) {
      assert.throws(() => parseLogStatisticsInput(raw), { code: ErrorCodes.INVALID_INPUT }, JSON.stringify(raw));
    }
  });
});
