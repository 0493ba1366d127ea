import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { createHealthSampler, type SamplePids } from '../../../actors/health/health-sampler.ts';
import { DEFAULT_HEALTH_THRESHOLDS } from '../../../actors/health/health-thresholds.ts';
import { healthCheck, parseHealthCheckInput } from '../../../actors/maintenance/health-check.ts';
import { ManualClock } from '../../../src/clock.ts';
import { ErrorCodes } from '../../../src/errors.ts';
import { createMemoryStore } from '../../../src/store/memory-store.ts';
import { addTask } from './fixtures/finished-tasks.ts';

describe('healthCheck', () => {
  it('samples the listed pids and judges the queue from the store', async (t) => {
    const clock = new ManualClock();
    const now = clock.now();
    await using store = createMemoryStore();
    const sampler = createHealthSampler({ clock, diskPath: tmpdir() });
    t.after(() => sampler.close());
    await addTask(store, { outcome: 'queued', createdAt: now - 400_000 });
    await addTask(store, { outcome: 'queued', createdAt: now - 1000 });
    await addTask(store, { outcome: 'succeeded', createdAt: now - 5000 });

    let listed = 0;
    const pids = (): SamplePids => {
      listed++;
      return { runtime: process.pid, threads: [7], subprocesses: [] };
    };
    const report = await healthCheck(undefined, { sampler, store, thresholds: DEFAULT_HEALTH_THRESHOLDS, pids, clock });
    assert.equal(listed, 1, 'pids are listed at the time of the check');
    assert.equal(report.at, now);
    assert.equal(report.checks.queued.value, 2);
    assert.equal(report.checks.oldestDueAgeSec.value, 400, 'the oldest due task waited 400 s');
    assert.equal(report.checks.oldestDueAgeSec.status, 'warning', '400 s ≥ the 300 s warning');
    assert.ok(report.status === 'warning' || report.status === 'error');
    assert.deepEqual(report.process.threads, [7]);
    assert.equal(report.process.pid, process.pid);
    assert.equal(report.tasks?.byState.succeeded, 1);
  });

  it('input thresholds override the runtime’s for this one check', async (t) => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    const sampler = createHealthSampler({ clock, diskPath: tmpdir() });
    t.after(() => sampler.close());
    await addTask(store, { outcome: 'queued', createdAt: clock.now() });
    const deps = { sampler, store, thresholds: DEFAULT_HEALTH_THRESHOLDS, pids: { runtime: process.pid, threads: [], subprocesses: [] }, clock };
    const report = await healthCheck({ thresholds: { queued: { warning: 1, error: 1 } } }, deps);
    assert.equal(report.checks.queued.status, 'error');
    assert.equal(report.status, 'error');
    assert.equal(report.checks.memory.warning, 80, 'other thresholds unchanged');
  });

  it('a store that cannot answer makes the report an error instead of throwing', async (t) => {
    const clock = new ManualClock();
    const store = createMemoryStore();
    await store.close();
    const sampler = createHealthSampler({ clock, diskPath: tmpdir() });
    t.after(() => sampler.close());
    const report = await healthCheck(
      {},
      { sampler, store, thresholds: DEFAULT_HEALTH_THRESHOLDS, pids: { runtime: process.pid, threads: [], subprocesses: [] }, clock },
    );
    assert.equal(report.status, 'error');
    assert.equal(report.checks.queued.status, 'unknown');
    assert.equal(report.tasks, undefined);
    assert.deepEqual(report.errors.map((e) => e.reading), ['store']);
    assert.equal(report.errors[0]?.code, ErrorCodes.CLOSED);
  });

  it('bad input is INVALID_INPUT', () => {
    for (const raw of [{ thresholds: { memory: { warning: 200 } } }, { thresholds: 'x' }, { threshold: {} }, 5]) {
      assert.throws(() => parseHealthCheckInput(raw), { code: ErrorCodes.INVALID_INPUT }, JSON.stringify(raw));
    }
    assert.deepEqual(parseHealthCheckInput(undefined), {});
  });
});
