import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { computeBackoff, resolveRetryPolicy } from '../../src/schedule/backoff.ts';
import type { RetryPolicy } from '../../src/task.ts';

const DEFAULTS: RetryPolicy = { attempts: 1, backoff: 'exponential', delayMs: 1000, maxDelayMs: 300_000, jitter: 0 };

/** mulberry32: a small seeded generator, so jitter tests are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function policy(overrides: Partial<RetryPolicy>): RetryPolicy {
  return { ...DEFAULTS, ...overrides };
}

describe('computeBackoff', () => {
  it('fixed: the same delay for every attempt', () => {
    const p = policy({ backoff: 'fixed', delayMs: 2500 });
    assert.deepEqual([1, 2, 3, 10].map((a) => computeBackoff(p, a)), [2500, 2500, 2500, 2500]);
  });

  it('exponential: delay × 2^(attempt − 1), attempt 1 is the bare delay', () => {
    const p = policy({ backoff: 'exponential', delayMs: 1000 });
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => computeBackoff(p, a)), [1000, 2000, 4000, 8000, 16_000]);
  });

  it('caps at maxDelayMs, also for huge attempt numbers', () => {
    const p = policy({ backoff: 'exponential', delayMs: 1000, maxDelayMs: 5000 });
    assert.deepEqual([3, 4, 50, 5000].map((a) => computeBackoff(p, a)), [4000, 5000, 5000, 5000]);
    assert.equal(computeBackoff(policy({ backoff: 'fixed', delayMs: 9000, maxDelayMs: 5000 }), 1), 5000);
  });

  it('a zero delay stays zero (no NaN from 0 × 2^n)', () => {
    assert.equal(computeBackoff(policy({ delayMs: 0, maxDelayMs: 0 }), 2000), 0);
    assert.equal(computeBackoff(policy({ delayMs: 0, jitter: 1 }), 3, () => 0.99), 0);
  });

  it('treats attempt numbers below 1 as the first attempt', () => {
    const p = policy({ delayMs: 1000 });
    assert.equal(computeBackoff(p, 0), 1000);
    assert.equal(computeBackoff(p, -3), 1000);
  });

  it('jitter: the extremes of the random source give exactly ±jitter', () => {
    const p = policy({ backoff: 'fixed', delayMs: 1000, jitter: 0.2 });
    assert.equal(computeBackoff(p, 1, () => 0), 800);
    assert.equal(computeBackoff(p, 1, () => 0.5), 1000);
    assert.equal(computeBackoff(p, 1, () => 0.999_999_999), 1200);
  });

  it('jitter: every value of a seeded source stays in [1−j, 1+j] × delay, integer, and spreads', () => {
    const p = policy({ backoff: 'exponential', delayMs: 1000, jitter: 0.25 });
    const random = seeded(42);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const d = computeBackoff(p, 3, random);
      assert.ok(Number.isInteger(d), `integer: ${d}`);
      assert.ok(d >= 3000 && d <= 5000, `in bounds: ${d}`);
      seen.add(Math.min(9, Math.floor((d - 3000) / 200)));
    }
    assert.equal(seen.size, 10, 'all ten buckets of the range are hit');
    // The same seed gives the same sequence.
    const a = seeded(7);
    const b = seeded(7);
    assert.deepEqual([1, 2, 3].map((n) => computeBackoff(p, n, a)), [1, 2, 3].map((n) => computeBackoff(p, n, b)));
  });

  it('jitter never pushes a delay above the cap, and clamps a misbehaving random source', () => {
    const p = policy({ backoff: 'exponential', delayMs: 1000, maxDelayMs: 4000, jitter: 0.5 });
    assert.equal(computeBackoff(p, 3, () => 0.999), 4000);
    assert.equal(computeBackoff(p, 10, () => 0), 2000);
    assert.equal(computeBackoff(p, 1, () => 7), 1500);
    assert.equal(computeBackoff(p, 1, () => -1), 500);
  });
});

describe('resolveRetryPolicy', () => {
  function codeOf(fn: () => unknown): string | undefined {
    try {
      fn();
    } catch (error) {
      assert.ok(isTroupeError(error), 'a TroupeError');
      return error.code;
    }
    assert.fail('expected a throw');
  }

  it('undefined gives a copy of the defaults', () => {
    const p = resolveRetryPolicy(undefined, 'retry', DEFAULTS);
    assert.deepEqual(p, DEFAULTS);
    assert.notEqual(p, DEFAULTS);
  });

  it('resolves durations, kinds, attempts and jitter', () => {
    assert.deepEqual(
      resolveRetryPolicy({ attempts: 3, backoff: 'fixed', delay: '2s', maxDelay: '1m', jitter: 0.1 }, 'retry', DEFAULTS),
      { attempts: 3, backoff: 'fixed', delayMs: 2000, maxDelayMs: 60_000, jitter: 0.1 },
    );
    assert.deepEqual(resolveRetryPolicy({ attempts: 5 }, 'retry', DEFAULTS), { ...DEFAULTS, attempts: 5 });
  });

  it('a delay above the default cap raises the cap instead of being cut', () => {
    const p = resolveRetryPolicy({ delay: '10m' }, 'retry', DEFAULTS);
    assert.equal(p.delayMs, 600_000);
    assert.equal(p.maxDelayMs, 600_000);
  });

  it('rejects bad values with INVALID_OPTION', () => {
    const at = (raw: unknown) => () => resolveRetryPolicy(raw, 'retry', DEFAULTS);
    for (const raw of [
      { attempts: 0 },
      { attempts: 1.5 },
      { attempts: '3' },
      { backoff: 'linear' },
      { delay: -1 },
      { delay: '5 parsecs' },
      { maxDelay: '1s', delay: '2s' },
      { jitter: 1.5 },
      { jitter: -0.1 },
      { jitter: Number.NaN },
      { atempts: 3 },
      JSON.parse('{"__proto__": {"attempts": 9}}'),
      'three',
      null,
      [3],
    ]) {
      assert.equal(codeOf(at(raw)), ErrorCodes.INVALID_OPTION, JSON.stringify(raw));
    }
  });
});
