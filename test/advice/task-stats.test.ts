/**
 * Rolling task statistics (issue 9): percentiles by nearest rank over the ring of recent attempts, rates and
 * retry patterns, schedule overlap, and the JSON round trip the runtime persists.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TaskStats, type RunObservation } from '../../src/advice/task-stats.ts';
import { nearestRank, summarizeValues } from '../../src/advice/percentiles.ts';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes } from '../../src/errors.ts';

const ok = (durationMs: number, extra: Partial<RunObservation> = {}): RunObservation => ({ name: 'job', outcome: 'succeeded', attempt: 1, durationMs, ...extra });

describe('percentiles', () => {
  it('reads by nearest rank: always a measured value', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(nearestRank(sorted, 50), 50);
    assert.equal(nearestRank(sorted, 95), 95);
    assert.equal(nearestRank(sorted, 99), 99);
    assert.equal(nearestRank(sorted, 100), 100);
    assert.equal(nearestRank(sorted, 0), 1);
    assert.equal(nearestRank([7], 99), 7);
    assert.ok(Number.isNaN(nearestRank([], 50)));
  });

  it('summarises only finite values among the first `count`', () => {
    assert.deepEqual(summarizeValues([3, Number.NaN, 1, 2, 100], 4), { samples: 3, mean: 2, p50: 2, p95: 3, p99: 3, max: 3 });
    assert.equal(summarizeValues([Number.NaN, Number.NaN]), undefined);
  });
});

describe('TaskStats', () => {
  it('duration percentiles, mean and max over the window', () => {
    const stats = new TaskStats('job');
    for (let i = 100; i >= 1; i--) stats.observe(ok(i, { at: i }));
    const s = stats.summary();
    assert.deepEqual(s.durationMs, { samples: 100, mean: 50.5, p50: 50, p95: 95, p99: 99, max: 100 });
    assert.equal(s.window, 100);
    assert.equal(s.runs, 100);
    assert.equal(s.since, 1);
    assert.equal(s.lastAt, 100);
    assert.equal(s.successRate, 1);
  });

  it('keeps the last `capacity` attempts in the ring; totals count everything since the record began', () => {
    const stats = new TaskStats('job', { capacity: 8 });
    for (let i = 1; i <= 20; i++) stats.observe(ok(i, { at: 1000 + i }));
    const s = stats.summary();
    assert.equal(s.window, 8);
    assert.equal(s.runs, 20);
    assert.equal(s.totals.succeeded, 20);
    assert.equal(s.counts.succeeded, 8);
    assert.equal(s.firstAt, 1001);
    assert.equal(s.since, 1013);
    assert.deepEqual([s.durationMs!.p50, s.durationMs!.max], [16, 20]);
  });

  it('stamps observations without `at` from its clock', () => {
    const clock = new ManualClock(5_000);
    const stats = new TaskStats('job', { clock });
    stats.observe(ok(1));
    clock.set(9_000);
    stats.observe(ok(1));
    assert.deepEqual([stats.summary().since, stats.summary().lastAt, stats.summary().firstAt], [5_000, 9_000, 5_000]);
  });

  it('counts outcomes, causes, rates, recoveries and exhausted retries', () => {
    const stats = new TaskStats('job');
    const add = (n: number, obs: Partial<RunObservation>) => {
      for (let i = 0; i < n; i++) stats.observe({ name: 'job', outcome: 'succeeded', attempt: 1, durationMs: 10, ...obs });
    };
    add(10, {});
    add(4, { attempt: 2 }); // recovered by a retry
    add(6, { outcome: 'retrying', cause: 'error' });
    add(2, { outcome: 'retrying', cause: 'timeout', durationMs: 500 });
    add(3, { outcome: 'failed', attempt: 3 }); // exhausted
    add(1, { outcome: 'failed', attempt: 2, cause: 'permanent' }); // not exhausted: permanent
    add(2, { outcome: 'timed_out', attempt: 3, durationMs: 500 });
    add(1, { outcome: 'failed', cause: 'crash' });
    add(1, { outcome: 'cancelled', durationMs: 900 });
    const s = stats.summary();
    assert.deepEqual(s.counts, { attempts: 30, succeeded: 14, failed: 5, timedOut: 2, retried: 8, cancelled: 1 });
    assert.deepEqual(s.causes, { error: 9, timeout: 4, crash: 1, out_of_memory: 0, permanent: 1 });
    assert.equal(s.recoveredByRetry, 4);
    assert.equal(s.exhaustedRetries, 3);
    assert.equal(s.successRate, 14 / 21);
    assert.equal(s.retryRate, 8 / 30);
    assert.equal(s.timeoutRate, 4 / 30);
    assert.equal(s.crashRate, 1 / 30);
    // Timed-out and cancelled attempts did not run to their end: their durations are left out.
    assert.equal(s.durationMs!.samples, 25);
    assert.equal(s.durationMs!.max, 10);
  });

  it('CPU per second from attempts that carry both CPU and duration; memory, wait and output when given', () => {
    const stats = new TaskStats('job');
    stats.observe(ok(100, { cpuMs: 90, peakRssMb: 40, waitMs: 5, outputLines: 10 }));
    stats.observe(ok(300, { cpuMs: 30, peakRssMb: 80, waitMs: 15, outputLines: 30 }));
    stats.observe(ok(1000)); // no CPU figure: not part of the ratio
    const s = stats.summary();
    assert.equal(s.cpuPerSecond, 120 / 400);
    assert.deepEqual([s.cpuMs!.samples, s.peakRssMb!.max, s.waitMs!.p50, s.outputLines!.mean], [2, 80, 5, 20]);
  });

  it('leaves out what nobody measured', () => {
    const stats = new TaskStats('job');
    stats.observe({ name: 'job', outcome: 'cancelled', attempt: 1 });
    const s = stats.summary();
    for (const key of ['durationMs', 'waitMs', 'cpuMs', 'peakRssMb', 'outputLines', 'cpuPerSecond', 'successRate'] as const) assert.equal(s[key], undefined, key);
    const empty = new TaskStats('none').summary();
    assert.deepEqual([empty.window, empty.runs, empty.since, empty.firstAt], [0, 0, undefined, undefined]);
  });

  it('ignores negative or non-finite measurements and an unknown outcome', () => {
    const stats = new TaskStats('job');
    stats.observe(ok(-5, { cpuMs: Number.NaN, waitMs: Number.POSITIVE_INFINITY }));
    stats.observe({ name: 'job', outcome: 'exploded' as 'failed', attempt: 1 });
    const s = stats.summary();
    assert.equal(s.window, 1);
    assert.deepEqual([s.durationMs, s.cpuMs, s.waitMs], [undefined, undefined, undefined]);
  });

  it('counts schedule overlap per schedule, fading old slots, and keeps at most 64 schedules', () => {
    const stats = new TaskStats('job');
    for (let i = 0; i < 10; i++) stats.observeOverlap('hourly', i < 3);
    assert.deepEqual(stats.summary().schedules, [{ id: 'hourly', slots: 10, overlapped: 3, rate: 0.3 }]);
    for (let i = 10; i < 2048; i++) stats.observeOverlap('hourly', false);
    const faded = stats.summary().schedules[0]!;
    assert.deepEqual([faded.slots, faded.overlapped], [1024, 1.5]);
    for (let i = 0; i < 70; i++) stats.observeOverlap(`s${i}`, true);
    const ids = stats.summary().schedules.map((x) => x.id);
    assert.equal(ids.length, 64);
    assert.ok(!ids.includes('hourly') && ids.includes('s69'), 'the oldest schedules go first');
  });

  it('round-trips through JSON: same summary, and the ring keeps overwriting the oldest attempt', () => {
    const stats = new TaskStats('job', { capacity: 16 });
    const mk = (i: number): RunObservation => ({
      name: 'job',
      outcome: (['succeeded', 'retrying', 'failed', 'timed_out', 'cancelled'] as const)[i % 5]!,
      attempt: 1 + (i % 3),
      at: 10_000 + i,
      durationMs: i * 1.5,
      ...(i % 2 ? { cpuMs: i, peakRssMb: 10 + i, outputLines: i * 2 } : { waitMs: i / 4 }),
      ...(i % 5 === 2 ? { cause: 'crash' as const } : {}),
    });
    for (let i = 0; i < 25; i++) stats.observe(mk(i));
    stats.observeOverlap('every-minute', true);
    stats.observeOverlap('every-minute', false);
    const text = JSON.stringify(stats);
    const copy = TaskStats.fromJSON(JSON.parse(text));
    assert.equal(copy.capacity, 16);
    assert.deepEqual(copy.summary(), stats.summary());
    for (let i = 25; i < 40; i++) {
      stats.observe(mk(i));
      copy.observe(mk(i));
    }
    assert.deepEqual(copy.summary(), stats.summary());
    assert.deepEqual(copy.toJSON(), stats.toJSON());
  });

  it('after the ring wrapped, the persisted samples are the last `capacity` attempts, oldest first, fields intact', () => {
    const stats = new TaskStats('job', { capacity: 4 });
    for (let i = 1; i <= 10; i++) {
      stats.observe({ name: 'job', outcome: i % 2 ? 'failed' : 'retrying', cause: i % 2 ? 'permanent' : 'out_of_memory', attempt: 70_000 + i, at: i, durationMs: i, waitMs: 2 * i, cpuMs: 3 * i, peakRssMb: 4 * i, outputLines: 5 * i });
    }
    const { samples, totals } = stats.toJSON();
    assert.deepEqual(samples.at, [7, 8, 9, 10]);
    assert.deepEqual(samples.outcome, ['failed', 'retrying', 'failed', 'retrying']);
    assert.deepEqual(samples.cause, ['permanent', 'out_of_memory', 'permanent', 'out_of_memory']);
    assert.deepEqual(samples.attempt, [70_007, 70_008, 70_009, 70_010]);
    assert.deepEqual([samples.durationMs, samples.waitMs, samples.cpuMs, samples.peakRssMb, samples.outputLines], [[7, 8, 9, 10], [14, 16, 18, 20], [21, 24, 27, 30], [28, 32, 36, 40], [35, 40, 45, 50]]);
    assert.deepEqual(totals, { attempts: 10, succeeded: 0, failed: 5, timedOut: 0, retried: 5, cancelled: 0 });
    assert.equal(stats.size, 4);
  });

  it('refuses an unreadable record with TROUPE_ERR_STORE_CORRUPT', () => {
    const good = new TaskStats('job');
    good.observe(ok(5));
    const json = good.toJSON();
    const bad: unknown[] = [
      null, 'x', { ...json, version: 2 }, { ...json, name: 7 }, { ...json, capacity: 0 },
      { ...json, samples: { ...json.samples, waitMs: [] } },
      { ...json, samples: { ...json.samples, outcome: ['exploded'] } },
      { ...json, totals: { ...json.totals, attempts: -1 } },
      { ...json, totals: null },
    ];
    for (const value of bad) assert.throws(() => TaskStats.fromJSON(value), { code: ErrorCodes.STORE_CORRUPT }, JSON.stringify(value)?.slice(0, 80));
  });

  it('refuses a capacity that is not a positive integer', () => {
    for (const capacity of [0, -1, 1.5]) assert.throws(() => new TaskStats('job', { capacity }), { code: ErrorCodes.INVALID_OPTION });
  });
});
