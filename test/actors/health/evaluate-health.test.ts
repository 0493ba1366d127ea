import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateHealth, statusOf } from '../../../actors/health/evaluate-health.ts';
import type { HealthSample } from '../../../actors/health/health-sampler.ts';
import { DEFAULT_HEALTH_THRESHOLDS, resolveHealthThresholds } from '../../../actors/health/health-thresholds.ts';

const NOW = Date.UTC(2026, 0, 1, 12);

/** A calm sample; tests override one reading at a time. */
function sample(overrides: { memory?: number; disk?: number | null; cpu?: number | null; loop?: number | null } = {}): HealthSample {
  return {
    at: NOW,
    process: { pid: 100, cpu: overrides.cpu === null ? undefined : (overrides.cpu ?? 5), memoryRss: 50e6, heapUsed: 20e6, uptimeSec: 60, threads: [1, 2] },
    subprocesses: [{ pid: 200, cpu: 1, memory: 10e6 }],
    vanished: [],
    host: { loadavg: [0.5, 0.4, 0.3], totalMemMb: 8000, freeMemMb: 4000, memoryPercentUsed: overrides.memory ?? 50, cores: 2 },
    disk: overrides.disk === null ? undefined : { path: '/', totalGb: 100, freeGb: 50, percentUsed: overrides.disk ?? 50 },
    eventLoop: overrides.loop === null ? undefined : { p50Ms: 10, p99Ms: overrides.loop ?? 12, maxMs: 20 },
    errors: overrides.disk === null ? [{ reading: 'disk', code: 'ENOENT' }] : [],
  };
}

const calmCounts = { byState: { queued: 3, running: 1 }, oldestDueAt: NOW - 10_000 };

describe('statusOf', () => {
  it('uses one comparison: value == warning is a warning, value == error is an error', () => {
    const pair = { warning: 80, error: 95 };
    assert.equal(statusOf(79.9, pair), 'ok');
    assert.equal(statusOf(80, pair), 'warning');
    assert.equal(statusOf(94.9, pair), 'warning');
    assert.equal(statusOf(95, pair), 'error');
    assert.equal(statusOf(100, pair), 'error');
    assert.equal(statusOf(null, pair), 'unknown');
    assert.equal(statusOf(Number.NaN, pair), 'unknown');
  });

  it('equal warning and error thresholds go straight to error', () => {
    assert.equal(statusOf(5, { warning: 5, error: 5 }), 'error');
  });
});

describe('evaluateHealth', () => {
  it('a calm sample is ok, with every check, unit and threshold in the report', () => {
    const report = evaluateHealth(sample(), calmCounts, DEFAULT_HEALTH_THRESHOLDS, NOW);
    assert.equal(report.status, 'ok');
    assert.equal(report.at, NOW);
    assert.deepEqual(report.checks.memory, { value: 50, unit: '%', status: 'ok', warning: 80, error: 95 });
    assert.deepEqual(report.checks.disk, { value: 50, unit: '%', status: 'ok', warning: 90, error: 95 });
    assert.deepEqual(report.checks.cpu, { value: 5, unit: '%', status: 'ok', warning: 90, error: 95 });
    assert.deepEqual(report.checks.eventLoopDelayMs, { value: 12, unit: 'ms', status: 'ok', warning: 200, error: 1000 });
    assert.deepEqual(report.checks.queued, { value: 3, unit: 'tasks', status: 'ok', warning: 10_000, error: 100_000 });
    assert.deepEqual(report.checks.oldestDueAgeSec, { value: 10, unit: 's', status: 'ok', warning: 300, error: 3600 });
    assert.deepEqual(report.process.threads, [1, 2]);
    assert.deepEqual(report.host.loadavg, [0.5, 0.4, 0.3]);
    assert.equal(report.subprocesses[0]?.pid, 200);
    assert.deepEqual(report.tasks, calmCounts);
  });

  it('each reading exactly at its warning threshold is a warning, at its error threshold an error', () => {
    const t = DEFAULT_HEALTH_THRESHOLDS;
    const cases = [
      ['memory', (v: number) => evaluateHealth(sample({ memory: v }), calmCounts, t, NOW)],
      ['disk', (v: number) => evaluateHealth(sample({ disk: v }), calmCounts, t, NOW)],
      ['cpu', (v: number) => evaluateHealth(sample({ cpu: v }), calmCounts, t, NOW)],
      ['eventLoopDelayMs', (v: number) => evaluateHealth(sample({ loop: v }), calmCounts, t, NOW)],
      ['queued', (v: number) => evaluateHealth(sample(), { byState: { queued: v } }, t, NOW)],
      ['oldestDueAgeSec', (v: number) => evaluateHealth(sample(), { byState: {}, oldestDueAt: NOW - v * 1000 }, t, NOW)],
    ] as const;
    for (const [name, run] of cases) {
      const { warning, error } = t[name];
      const below = run(warning - 0.5);
      assert.equal(below.checks[name].status, 'ok', `${name} below warning`);
      assert.equal(below.status, 'ok', `${name} below warning overall`);
      const atWarning = run(warning);
      assert.equal(atWarning.checks[name].status, 'warning', `${name} == warning`);
      assert.equal(atWarning.status, 'warning', `${name} overall`);
      const atError = run(error);
      assert.equal(atError.checks[name].status, 'error', `${name} == error`);
      assert.equal(atError.status, 'error', `${name} overall`);
    }
  });

  it('the worst check wins', () => {
    const report = evaluateHealth(sample({ memory: 85, disk: 96, cpu: 91 }), calmCounts, DEFAULT_HEALTH_THRESHOLDS, NOW);
    assert.equal(report.checks.memory.status, 'warning');
    assert.equal(report.checks.cpu.status, 'warning');
    assert.equal(report.checks.disk.status, 'error');
    assert.equal(report.status, 'error');
    const warnings = evaluateHealth(sample({ memory: 85 }), calmCounts, DEFAULT_HEALTH_THRESHOLDS, NOW);
    assert.equal(warnings.status, 'warning');
  });

  it('a reading that could not be taken is unknown and does not change the overall status', () => {
    const report = evaluateHealth(sample({ disk: null, cpu: null, loop: null }), calmCounts, DEFAULT_HEALTH_THRESHOLDS, NOW);
    assert.equal(report.checks.disk.status, 'unknown');
    assert.equal(report.checks.disk.value, null);
    assert.equal(report.checks.cpu.status, 'unknown');
    assert.equal(report.checks.eventLoopDelayMs.status, 'unknown');
    assert.equal(report.status, 'ok');
    assert.deepEqual(report.errors, [{ reading: 'disk', code: 'ENOENT' }]);
  });

  it('no waiting task means an oldest-due age of 0; a due time in the future is never negative', () => {
    assert.equal(evaluateHealth(sample(), { byState: {} }, DEFAULT_HEALTH_THRESHOLDS, NOW).checks.oldestDueAgeSec.value, 0);
    assert.equal(
      evaluateHealth(sample(), { byState: {}, oldestDueAt: NOW + 5000 }, DEFAULT_HEALTH_THRESHOLDS, NOW).checks.oldestDueAgeSec.value,
      0,
    );
  });

  it('custom thresholds apply', () => {
    const thresholds = resolveHealthThresholds({ queued: { warning: 2, error: 3 } }, 'health.thresholds');
    const report = evaluateHealth(sample(), calmCounts, thresholds, NOW);
    assert.equal(report.checks.queued.status, 'error');
    assert.equal(report.checks.queued.error, 3);
    assert.equal(report.status, 'error');
  });
});
