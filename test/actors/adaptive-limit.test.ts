/**
 * The adaptive limit on simulated systems (issue 9): a closed loop against a FIFO service whose throughput stops
 * growing at its capacity. Time is simulated (a ManualClock set from event times), so nothing sleeps and every
 * run is reproducible from its seed. The best fixed limit is measured with the same simulator: the smallest
 * fixed limit within 2 % of the highest throughput.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { createAdaptiveLimit, resolveAdaptiveLimitOptions, resolveConcurrencyOption, type AdaptiveLimitOptions } from '../../actors/executor/adaptive-limit.ts';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { bestFixedLimit, simulate, tail, type ServerModel } from '../advice/helpers/simulated-server.ts';

const LAST = 50;

function converge(model: ServerModel, options: AdaptiveLimitOptions, completions = 30_000) {
  const clock = new ManualClock(0);
  const limit = createAdaptiveLimit(options, clock);
  const result = simulate(model, { limit, clock, completions });
  return { limit, result, last: tail(result.limits, LAST) };
}

function report(t: TestContext, label: string, best: { limit: number; throughput: number }, run: ReturnType<typeof converge>, band: [number, number]): void {
  // The first window from which the limit stays inside the tolerance band.
  const limits = run.result.limits;
  let settled = limits.length;
  while (settled > 0 && limits[settled - 1]! >= band[0] && limits[settled - 1]! <= band[1]) settled--;
  t.diagnostic(
    `${label}: best fixed ${best.limit} (${best.throughput.toFixed(0)}/s); adaptive ends at ${run.limit.limit}, ` +
      `inside ${band[0]}–${band[1]} from window ${settled + 1} of ${limits.length}, ` +
      `last ${LAST} windows ${run.last.min}–${run.last.max} (variance ${run.last.variance.toFixed(2)}), ` +
      `throughput ${(run.result.throughput / best.throughput * 100).toFixed(1)} % of best (second half), ${run.limit.snapshot().changes} changes`,
  );
}

describe('adaptive limit on simulated systems', () => {
  it('CPU-bound (2 cores, ±10 % jitter): settles at the best fixed limit + at most 1, ≥ 98 % of its throughput, variance ≤ 0.25 over the last 50 windows', (t) => {
    for (const seed of [1, 2, 3]) {
      const model: ServerModel = { capacity: 2, serviceMs: 10, jitter: 0.1, seed };
      const best = bestFixedLimit(model, 12, 3000);
      assert.equal(best.limit, 2, 'the simulator saturates at 2');
      const run = converge(model, { min: 1, max: 16 });
      report(t, `cpu seed ${seed}`, best, run, [best.limit, best.limit + 1]);
      assert.ok(run.last.min >= best.limit && run.last.max <= best.limit + 1, `limit ${run.last.min}–${run.last.max}`);
      assert.ok(run.result.throughput >= 0.98 * best.throughput);
      assert.ok(run.last.variance <= 0.25, `variance ${run.last.variance}`);
    }
  });

  it('I/O-bound (32 connections, ±20 % jitter): settles within −1 … +20 % of the best fixed limit, ≥ 98 % of its throughput, variance ≤ 2 over the last 50 windows', (t) => {
    for (const seed of [1, 2, 3]) {
      const model: ServerModel = { capacity: 32, serviceMs: 50, jitter: 0.2, seed };
      const best = bestFixedLimit(model, 48, 3000);
      assert.ok(best.limit >= 30 && best.limit <= 32, `best ${best.limit}`);
      const run = converge(model, { min: 1, max: 128 });
      report(t, `io seed ${seed}`, best, run, [best.limit - 1, Math.ceil(best.limit * 1.2)]);
      assert.ok(run.last.min >= best.limit - 1 && run.last.max <= Math.ceil(best.limit * 1.2), `limit ${run.last.min}–${run.last.max}`);
      assert.ok(run.result.throughput >= 0.98 * best.throughput);
      assert.ok(run.last.variance <= 2, `variance ${run.last.variance}`);
    }
  });

  it('I/O-bound with ±50 % jitter: the same tolerance holds (noise widens the band instead of moving the limit)', (t) => {
    for (const seed of [4, 5]) {
      const model: ServerModel = { capacity: 32, serviceMs: 50, jitter: 0.5, seed };
      const best = bestFixedLimit(model, 48, 3000);
      const run = converge(model, { min: 1, max: 128 });
      report(t, `io ±50 % seed ${seed}`, best, run, [best.limit - 1, Math.ceil(best.limit * 1.2)]);
      assert.ok(run.last.min >= best.limit - 1 && run.last.max <= Math.ceil(best.limit * 1.2), `limit ${run.last.min}–${run.last.max}`);
      assert.ok(run.result.throughput >= 0.98 * best.throughput);
      assert.ok(run.last.variance <= 2, `variance ${run.last.variance}`);
    }
  });

  it('without noise the fixed point is exact: capacity 2 → 3, capacity 8 → 9 or 10, and the limit never moves once settled', () => {
    for (const [capacity, allowed] of [[2, [3]], [8, [9, 10]]] as const) {
      const run = converge({ capacity, serviceMs: 20 }, { min: 1, max: 64 }, 10_000);
      assert.ok((allowed as readonly number[]).includes(run.limit.limit), `capacity ${capacity}: ${run.limit.limit}`);
      assert.equal(run.last.variance, 0);
    }
  });

  it('follows the system: capacity 32 → 8 → 32 brings the limit down near 8 and back near 32', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 128 }, clock);
    const capacity = (now: number) => (now < 20_000 ? 32 : now < 40_000 ? 8 : 32);
    const { trace } = simulate({ capacity, serviceMs: 50, jitter: 0.2, seed: 5 }, { limit, clock, completions: 40_000 });
    const at = (time: number) => trace.findLast((x) => x.at <= time)!.limit;
    assert.ok(at(19_000) >= 31 && at(19_000) <= 39, `before: ${at(19_000)}`);
    assert.ok(at(30_000) >= 8 && at(30_000) <= 10, `capacity 8: ${at(30_000)}`);
    assert.ok(at(39_000) >= 8 && at(39_000) <= 10, `capacity 8, later: ${at(39_000)}`);
    const end = trace.at(-1)!;
    assert.ok(end.at > 50_000 && end.limit >= 31 && end.limit <= 39, `after: ${end.limit}`);
  });

  it('rebases when the work itself gets slower (×3 per run) instead of collapsing to the minimum', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 128 }, clock);
    const { trace } = simulate({ capacity: 32, serviceMs: (now) => (now < 20_000 ? 50 : 150), jitter: 0.2, seed: 5 }, { limit, clock, completions: 40_000 });
    const lowest = Math.min(...trace.filter((x) => x.at > 20_000).map((x) => x.limit));
    assert.ok(lowest >= 8, `dipped to ${lowest}`);
    assert.ok(limit.limit >= 31 && limit.limit <= 39, `ends at ${limit.limit}`);
    assert.ok(limit.snapshot().baselineMs! > 120, `baseline ${limit.snapshot().baselineMs}`);
  });

  it('calibrates at min, then starts from initial and comes down to the system (initial 100, capacity 8 → 8…10)', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 128, initial: 100 }, clock);
    assert.equal(limit.limit, 1);
    assert.equal(limit.snapshot().phase, 'calibrating');
    const { limits } = simulate({ capacity: 8, serviceMs: 50, jitter: 0.2, seed: 5 }, { limit, clock, completions: 20_000 });
    assert.equal(limits[0], 100, 'after the calibration window');
    const last = tail(limits, LAST);
    assert.ok(last.min >= 8 && last.max <= 10, `${last.min}–${last.max}`);
  });

  it('keeps within its bounds: max below the system’s capacity, min above it', () => {
    const capped = converge({ capacity: 32, serviceMs: 50, jitter: 0.2, seed: 2 }, { min: 1, max: 16 }, 10_000);
    assert.equal(capped.last.min, 16);
    assert.equal(capped.last.max, 16);
    // With min above the capacity the baseline is measured with a queue already; the limit stays at min or just above.
    const floored = converge({ capacity: 2, serviceMs: 10, jitter: 0.2, seed: 2 }, { min: 4, max: 16 }, 10_000);
    assert.ok(floored.result.trace.every((x) => x.limit >= 4 && x.limit <= 16));
    assert.ok(floored.last.max <= 5, `${floored.last.min}–${floored.last.max}`);
  });
});

describe('adaptive limit rules', () => {
  /** Feeds `count` runs of `durationMs` at full demand, advancing the clock by `stepMs` per run. */
  function feed(limit: ReturnType<typeof createAdaptiveLimit>, clock: ManualClock, count: number, durationMs: number, stepMs = 10): void {
    for (let i = 0; i < count; i++) {
      while (limit.snapshot().inflight < limit.limit) limit.onStart();
      clock.set(clock.now() + stepMs);
      limit.onEnd({ durationMs, ok: true });
    }
  }

  it('a dropped run cuts the limit by the backoff factor (at least one), once per change', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 64, initial: 40 }, clock);
    feed(limit, clock, 16, 10);
    assert.equal(limit.limit, 40);
    for (let i = 0; i < 40; i++) limit.onStart();
    limit.onEnd({ durationMs: 10, ok: false, dropped: true });
    assert.equal(limit.limit, 36);
    assert.equal(limit.snapshot().last.decision, 'backoff');
    // The 39 runs still in flight started under the old limit: their drops are not counted again.
    assert.equal(limit.snapshot().inflight, 39);
    for (let i = 0; i < 39; i++) limit.onEnd({ durationMs: 10, ok: false, dropped: true });
    assert.equal(limit.limit, 36);
    limit.onStart();
    limit.onEnd({ durationMs: 10, ok: false, dropped: true });
    assert.equal(limit.limit, 32);
    assert.equal(limit.snapshot().dropped, 2);
  });

  it('a drop at a small limit still lowers it by one, and never below min', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 2, max: 8, initial: 3 }, clock);
    feed(limit, clock, 16, 10);
    assert.equal(limit.limit, 3);
    // Let the runs of the calibration window finish (they are left out), then drop one started at 3.
    for (let left = limit.snapshot().inflight; left > 0; left--) limit.onEnd({ durationMs: 10, ok: true });
    for (let i = 0; i < 3; i++) limit.onStart();
    limit.onEnd({ durationMs: 10, ok: false, dropped: true });
    assert.equal(limit.limit, 2);
    limit.onStart();
    limit.onEnd({ durationMs: 10, ok: false, dropped: true });
    assert.equal(limit.limit, 2);
  });

  it('a drop while calibrating only restarts the window: the baseline still comes from successful runs', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 8 }, clock);
    feed(limit, clock, 5, 10);
    limit.onStart();
    limit.onEnd({ durationMs: 10, ok: false, dropped: true });
    assert.deepEqual([limit.limit, limit.snapshot().phase, limit.snapshot().windows], [1, 'calibrating', 0]);
    feed(limit, clock, 16, 20);
    assert.equal(limit.snapshot().baselineMs, 20);
    assert.equal(limit.limit, 2);
  });

  it('does not grow while demand stays below the limit (app-limited)', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 64, initial: 8 }, clock);
    feed(limit, clock, 16, 10);
    assert.equal(limit.limit, 8);
    // Only 3 runs at a time, all at the no-load duration.
    for (let i = 0; i < 500; i++) {
      while (limit.snapshot().inflight < 3) limit.onStart();
      clock.set(clock.now() + 10);
      limit.onEnd({ durationMs: 10, ok: true });
    }
    assert.equal(limit.limit, 8);
    assert.equal(limit.snapshot().last.decision, 'app-limited');
  });

  it('failed runs carry no latency signal: they neither close a window nor move the limit', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 64 }, clock);
    for (let i = 0; i < 200; i++) {
      limit.onStart();
      clock.set(clock.now() + 10);
      limit.onEnd({ durationMs: 1, ok: false });
    }
    assert.equal(limit.snapshot().windows, 0);
    assert.equal(limit.limit, 1);
    assert.equal(limit.snapshot().inflight, 0);
  });

  it('a window of zero durations (below the timer resolution) moves nothing', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 8 }, clock);
    feed(limit, clock, 64, 0);
    assert.deepEqual([limit.limit, limit.snapshot().phase, limit.snapshot().baselineMs], [1, 'calibrating', undefined]);
    feed(limit, clock, 16, 0.25);
    assert.deepEqual([limit.limit, limit.snapshot().baselineMs], [2, 0.25]);
  });

  it('a window needs windowSamples runs and windowMs of time', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ windowSamples: 4, windowMs: 1000 }, clock);
    feed(limit, clock, 4, 10, 1);
    assert.equal(limit.snapshot().windows, 0, 'enough runs, not enough time');
    clock.set(clock.now() + 1000);
    feed(limit, clock, 1, 10, 0);
    assert.equal(limit.snapshot().windows, 1);
    assert.equal(limit.snapshot().baselineMs, 10);
    assert.equal(limit.limit, 2, 'slow start doubles');
  });

  it('snapshot shows the limit, the phase, the baseline and the last window', () => {
    const clock = new ManualClock(0);
    const limit = createAdaptiveLimit({ min: 1, max: 8 }, clock);
    const before = limit.snapshot();
    assert.deepEqual({ limit: before.limit, phase: before.phase, windows: before.windows, baselineMs: before.baselineMs }, { limit: 1, phase: 'calibrating', windows: 0, baselineMs: undefined });
    feed(limit, clock, 16, 25);
    const after = limit.snapshot();
    assert.equal(after.phase, 'slow-start');
    assert.equal(after.baselineMs, 25);
    assert.equal(after.last.meanMs, 25);
    assert.equal(after.last.samples, 16);
    assert.equal(after.last.decision, 'increase');
    assert.ok(after.last.throughput! > 0);
  });

  it('refuses bad options with TROUPE_ERR_INVALID_OPTION', () => {
    const bad: unknown[] = [
      null, { min: 0 }, { min: 1.5 }, { max: 0 }, { min: 4, max: 2 }, { initial: 0 }, { min: 1, max: 4, initial: 5 },
      { tolerance: 0 }, { tolerance: 0.5 }, { smoothing: 0 }, { smoothing: 1.5 }, { backoff: 1 }, { windowMs: -1 }, { windowSamples: 0 }, { max: '8' },
    ];
    for (const options of bad) {
      assert.throws(() => createAdaptiveLimit(options as AdaptiveLimitOptions, new ManualClock()), { code: ErrorCodes.INVALID_OPTION }, JSON.stringify(options));
    }
    assert.throws(() => resolveAdaptiveLimitOptions({ mni: 1 } as AdaptiveLimitOptions, 'tasks.x.concurrency'), { code: ErrorCodes.INVALID_OPTION });
    assert.deepEqual(resolveAdaptiveLimitOptions({}), { min: 1, max: 64, initial: 1, windowSamples: 16, windowMs: 100, tolerance: 0.1, smoothing: 0.5, backoff: 0.9 });
    assert.equal(resolveAdaptiveLimitOptions({ min: 80 }).max, 80, 'max follows a min above its default');
  });

  it('resolves a task definition’s concurrency: a fixed number or { adaptive: true, … }', () => {
    assert.deepEqual(resolveConcurrencyOption(8), { kind: 'fixed', limit: 8 });
    const adaptive = resolveConcurrencyOption({ adaptive: true, min: 2, max: 32 });
    assert.equal(adaptive.kind, 'adaptive');
    assert.deepEqual(adaptive.kind === 'adaptive' && [adaptive.options.min, adaptive.options.max, adaptive.options.initial], [2, 32, 2]);
    for (const bad of [0, 1.5, '8', null, {}, { adaptive: false, max: 4 }, { adaptive: true, max: 0 }, { adaptive: true, limit: 4 }]) {
      assert.throws(() => resolveConcurrencyOption(bad, 'tasks.x.concurrency'), { code: ErrorCodes.INVALID_OPTION }, JSON.stringify(bad));
    }
  });
});
