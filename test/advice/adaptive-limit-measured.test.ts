import { availableParallelism, loadavg } from 'node:os';
/**
 * The adaptive limit on this machine (issue 9): real worker threads doing a fixed amount of CPU work, and real
 * timers behind a downstream that serves 32 calls at once. Each workload first runs at a few fixed limits (the
 * best of them is the reference), then through the controller, in a closed loop (always more work waiting).
 *
 * The machine is shared and noisy, so the tolerances are wide and stated in the test names; the simulated tests
 * in test/actors/adaptive-limit.test.ts pin the controller's behaviour exactly. `npm test` runs this file after
 * the others, alone, so that its cores are its own; a run that still shares them reports its bounds instead of
 * asserting them, and says why.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAdaptiveLimit, type AdaptiveLimit } from '../../actors/executor/adaptive-limit.ts';
import { systemClock } from '../../src/clock.ts';
import { watchOthersCpu } from '../helpers/cpu-share.ts';
import { createThreadPool, type ThreadPool } from '../../src/pool/thread-pool.ts';

const spin = new URL('./fixtures/spin.ts', import.meta.url).href;
/** Rounds of the spin loop per run: a few milliseconds of CPU on this machine. */
const ROUNDS = 300_000;

interface Driven {
  throughput: number;
  /** Throughput over the second half of the runs (after calibration and slow start). */
  settledThroughput: number;
  /** The limit after each window (adaptive runs), while the loop was still full (not draining at the end). */
  limits: number[];
}

/** Keeps `limit` runs in flight until `count` have ended; reports each duration to the controller. */
function drive(run: () => Promise<unknown>, limit: number | AdaptiveLimit, count: number): Promise<Driven> {
  const adaptive = typeof limit === 'number' ? undefined : limit;
  const limitNow = () => (typeof limit === 'number' ? limit : limit.limit);
  const limits: number[] = [];
  let windows = 0;
  let inflight = 0;
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  let tHalf = t0;
  return new Promise<Driven>((resolve, reject) => {
    const fill = () => {
      while (inflight < limitNow() && started < count) {
        inflight++;
        started++;
        adaptive?.onStart();
        const at = performance.now();
        run().then(() => {
          inflight--;
          done++;
          const now = performance.now();
          if (done === Math.floor(count / 2)) tHalf = now;
          if (adaptive) {
            adaptive.onEnd({ durationMs: now - at, ok: true });
            const w = adaptive.snapshot().windows;
            if (w !== windows) {
              windows = w;
              if (started < count) limits.push(adaptive.limit);
            }
          }
          if (done === count) {
            resolve({ throughput: (count * 1000) / (now - t0), settledThroughput: ((count - Math.floor(count / 2)) * 1000) / (now - tHalf), limits });
          } else fill();
        }, reject);
      }
    };
    fill();
  });
}

/**
 * Why the machine was not this test's alone during a measured run, if it was not: other processes used more than
 * half a core on average meanwhile (read from /proc/stat; elsewhere, the 1-minute load average above 1.5 per
 * core, which lags behind a burst and trails one that has ended). Run time is then a poor signal of the pool's or
 * the downstream's own queueing, which is what the controller reads.
 */
function contended(othersCores: number | undefined): string | undefined {
  if (othersCores !== undefined) return othersCores > 0.5 ? `other processes kept ${othersCores.toFixed(1)} cores busy meanwhile` : undefined;
  const load = loadavg()[0]! / availableParallelism();
  return load > 1.5 ? `host load ${load.toFixed(1)} per core` : undefined;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * A downstream service that serves `capacity` calls at once, each holding its connection for `holdMs` (a timer).
 * `held` records how long each connection was really held: past `holdMs` by the event loop's lateness.
 */
function createDownstream(capacity: number, holdMs: number): { call: () => Promise<void>; held: number[] } {
  let free = capacity;
  const waiting: Array<() => void> = [];
  const held: number[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  const call = () =>
    new Promise<void>((resolve) => {
      const serve = () => {
        const at = performance.now();
        setTimeout(() => {
          held.push(performance.now() - at);
          release();
          resolve();
        }, holdMs);
      };
      if (free > 0) {
        free--;
        serve();
      } else waiting.push(serve);
    });
  return { call, held };
}

describe('adaptive limit, measured on this machine', () => {
  let pool: ThreadPool;
  let seq = 0;
  const never = new AbortController().signal;
  const cpuRun = () => pool.run({ id: `spin-${seq++}`, name: 'spin', handler: spin, input: ROUNDS, attempt: 1, signal: never, hardSignal: never });

  before(async () => {
    pool = createThreadPool({ minThreads: 4, maxThreads: 4, idleTimeoutMs: 30_000, maxQueue: Infinity, maxBatch: 1 });
    await drive(cpuRun, 4, 40); // threads up, handler loaded, code warm
  });
  after(() => pool.close({ force: true }));

  it('CPU-bound handler on 4 threads, 2 cores: settles at a limit of 1–4 (from a max of 16) with ≥ 50 % of the best fixed limit’s throughput', async (t) => {
    // Fixed limits, interleaved twice so a burst of load elsewhere does not decide the reference alone.
    const fixed = new Map<number, number>();
    for (let round = 0; round < 2; round++) {
      for (const l of [1, 2, 4]) fixed.set(l, Math.max(fixed.get(l) ?? 0, (await drive(cpuRun, l, 60)).throughput));
    }
    const [bestLimit, bestThroughput] = [...fixed].reduce((a, b) => (b[1] > a[1] ? b : a));
    const limit = createAdaptiveLimit({ min: 1, max: 16 }, systemClock);
    const others = watchOthersCpu();
    const run = await drive(cpuRun, limit, 700);
    const othersCores = others();
    const settled = median(run.limits.slice(-5));
    t.diagnostic(`other processes meanwhile: ${othersCores?.toFixed(2) ?? 'unknown'} cores`);
    t.diagnostic(`fixed: ${[...fixed].map(([l, x]) => `${l}→${x.toFixed(0)}/s`).join(', ')}; best ${bestLimit}`);
    t.diagnostic(`adaptive: ${run.settledThroughput.toFixed(0)}/s over the second half (${(run.settledThroughput / bestThroughput * 100).toFixed(0)} % of best), limits ${run.limits.join(',')}, baseline ${limit.snapshot().baselineMs?.toFixed(2)} ms`);
    assert.ok(run.limits.length >= 5, `only ${run.limits.length} windows`);
    // Other processes competing for the 2 cores make run time a poor signal of this pool's own queueing: the band
    // and the throughput bound are asserted only when the host is not oversubscribed (a diagnostic says so).
    const why = contended(othersCores);
    if (why === undefined) assert.ok(settled >= 1 && settled <= 4, `settled at ${settled}`);
    else t.diagnostic(`${why}: the 1–4 band is not asserted (settled at ${settled})`);
    if (why === undefined) assert.ok(run.settledThroughput >= 0.5 * bestThroughput, `${run.settledThroughput.toFixed(0)}/s against ${bestThroughput.toFixed(0)}/s`);
    else t.diagnostic(`${why}: the throughput bound is not asserted (${(run.settledThroughput / bestThroughput * 100).toFixed(0)} % of best)`);
  });

  it('I/O-bound handler (timer waits) behind a 32-connection downstream: settles within 24–48 (best fixed 32) with ≥ 70 % of its throughput', async (t) => {
    const { call, held } = createDownstream(32, 10);
    const fixed = new Map<number, number>();
    for (const l of [16, 32, 64]) fixed.set(l, (await drive(call, l, 640)).throughput);
    const best32 = fixed.get(32)!;
    t.diagnostic(`fixed: ${[...fixed].map(([l, x]) => `${l}→${x.toFixed(0)}/s`).join(', ')}`);
    // The experiment needs timers that fire on time: on an oversubscribed host the downstream itself stops scaling.
    const busy = loadavg()[0]! / availableParallelism();
    if (!(best32 > 1.3 * fixed.get(16)!) && busy > 1.5) {
      t.skip(`host load ${busy.toFixed(1)} per core: the downstream did not scale from 16 to 32 connections, so the controller cannot be judged`);
      return;
    }
    assert.ok(best32 > 1.3 * fixed.get(16)!, 'the downstream scales up to 32');
    const limit = createAdaptiveLimit({ min: 1, max: 128 }, systemClock);
    held.length = 0;
    const others = watchOthersCpu();
    const run = await drive(call, limit, 5000);
    const othersCores = others();
    const settled = median(run.limits.slice(-5));
    t.diagnostic(`other processes meanwhile: ${othersCores?.toFixed(2) ?? 'unknown'} cores`);
    // The controller reads each call's duration: a timer the event loop fires late (other processes holding the
    // cores; the 1-minute load average lags behind a burst) lengthens it exactly as a slower downstream would.
    const late = held.map((ms) => ms - 10).sort((a, b) => a - b);
    const lateP90 = late[Math.floor(late.length * 0.9)]!;
    t.diagnostic(`adaptive: ${run.settledThroughput.toFixed(0)}/s over the second half (${(run.settledThroughput / best32 * 100).toFixed(0)} % of fixed 32), limits ${run.limits.join(',')}`);
    t.diagnostic(`timer lateness during the adaptive run: p50 ${late[Math.floor(late.length / 2)]!.toFixed(2)} ms, p90 ${lateP90.toFixed(2)} ms, p99 ${late[Math.floor(late.length * 0.99)]!.toFixed(2)} ms`);
    assert.ok(run.limits.length >= 5, `only ${run.limits.length} windows`);
    const why = contended(othersCores) ?? (lateP90 > 2 ? `timers fired up to ${lateP90.toFixed(1)} ms late (p90; the hold is 10 ms)` : undefined);
    if (why === undefined) assert.ok(settled >= 24 && settled <= 48, `settled at ${settled}`);
    else t.diagnostic(`${why}: the 24–48 band is not asserted (settled at ${settled})`);
    if (why === undefined) assert.ok(run.settledThroughput >= 0.7 * best32, `${run.settledThroughput.toFixed(0)}/s against ${best32.toFixed(0)}/s`);
    else t.diagnostic(`${why}: the throughput bound is not asserted (${(run.settledThroughput / best32 * 100).toFixed(0)} % of fixed 32)`);
  });
});
