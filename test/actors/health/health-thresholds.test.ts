import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_HEALTH_THRESHOLDS, resolveHealthThresholds } from '../../../actors/health/health-thresholds.ts';
import { ErrorCodes } from '../../../src/errors.ts';

describe('resolveHealthThresholds', () => {
  it('defaults match the documented table and are frozen', () => {
    assert.deepEqual(resolveHealthThresholds(undefined, 'h'), {
      memory: { warning: 80, error: 95 },
      disk: { warning: 90, error: 95 },
      cpu: { warning: 90, error: 95 },
      eventLoopDelayMs: { warning: 200, error: 1000 },
      queued: { warning: 10_000, error: 100_000 },
      oldestDueAgeSec: { warning: 300, error: 3600 },
    });
    assert.ok(Object.isFrozen(DEFAULT_HEALTH_THRESHOLDS));
    assert.ok(Object.isFrozen(DEFAULT_HEALTH_THRESHOLDS.memory));
  });

  it('merges partial overrides and never mutates the defaults', () => {
    const t = resolveHealthThresholds({ memory: { warning: 70 }, queued: { warning: 5, error: 50 } }, 'h');
    assert.deepEqual(t.memory, { warning: 70, error: 95 });
    assert.deepEqual(t.queued, { warning: 5, error: 50 });
    assert.equal(DEFAULT_HEALTH_THRESHOLDS.memory.warning, 80);
  });

  it('rejects unknown readings, bad numbers and inverted pairs with INVALID_OPTION', () => {
    const bad: unknown[] = [
      'high',
      [1],
      { memroy: { warning: 1 } },
      { memory: 80 },
      { memory: { warn: 1 } },
      { memory: { warning: 101 } },
      { disk: { error: -1 } },
      { cpu: { warning: '90' } },
      { queued: { warning: Number.POSITIVE_INFINITY } },
      { memory: { warning: 96 } },
      { eventLoopDelayMs: { warning: 10, error: 5 } },
      JSON.parse('{"__proto__": {"warning": 1}}'),
    ];
    for (const raw of bad) {
      assert.throws(() => resolveHealthThresholds(raw, 'health.thresholds'), { code: ErrorCodes.INVALID_OPTION }, JSON.stringify(raw));
    }
  });
});
