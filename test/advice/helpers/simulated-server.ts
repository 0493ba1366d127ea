/**
 * A discrete-event simulation of a service with `capacity` servers and a FIFO queue in front, driven in a closed
 * loop: there is always more work, and runs are admitted while fewer than the limit are in flight. Throughput
 * grows with the limit up to `capacity` and stays flat after it while the duration grows (a saturated CPU, a
 * pool of connections). Time is plain numbers fed to a ManualClock, so no test sleeps.
 */
import { ManualClock } from '../../../src/clock.ts';
import type { AdaptiveLimit } from '../../../actors/executor/adaptive-limit.ts';

/** A small seeded PRNG (mulberry32), so every simulated run is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ServerModel {
  /** Runs served at once. A function of time lets a test change it mid-run. */
  capacity: number | ((now: number) => number);
  /** Mean service time (ms). A function of time lets a test slow the work down. */
  serviceMs: number | ((now: number) => number);
  /** Uniform spread of each service time, ± this share. @default 0 */
  jitter?: number;
  seed?: number;
}

export interface SimulationResult {
  completions: number;
  /** Simulated time (ms). */
  elapsedMs: number;
  /** Completions per second over the measured part (after `warmup`). */
  throughput: number;
  /** Mean duration (admission to end) over the measured part. */
  meanMs: number;
  /** The limit after each closed window (adaptive runs only). */
  limits: number[];
  /** The limit at each completion, with its time. */
  trace: Array<{ at: number; limit: number }>;
}

export interface SimulationOptions {
  /** A fixed limit, or an adaptive controller read after every completion. */
  limit: number | AdaptiveLimit;
  clock?: ManualClock;
  completions: number;
  /** Completions left out of the throughput and mean figures. @default completions / 2 */
  warmup?: number;
}

/** Runs the closed loop until `completions` runs have ended. */
export function simulate(model: ServerModel, options: SimulationOptions): SimulationResult {
  const clock = options.clock ?? new ManualClock(0);
  const t0 = clock.now();
  const random = seededRandom(model.seed ?? 1);
  const jitter = model.jitter ?? 0;
  const capacityAt = (now: number) => (typeof model.capacity === 'function' ? model.capacity(now) : model.capacity);
  const serviceAt = (now: number) => (typeof model.serviceMs === 'function' ? model.serviceMs(now) : model.serviceMs);
  const adaptive = typeof options.limit === 'number' ? undefined : options.limit;
  const limitNow = () => (typeof options.limit === 'number' ? options.limit : options.limit.limit);
  const warmup = options.warmup ?? Math.floor(options.completions / 2);

  const waiting: number[] = []; // admission times, FIFO
  let waitHead = 0;
  const serving: Array<{ admitted: number; endsAt: number }> = [];
  let inflight = 0;
  let done = 0;
  let measuredFrom = t0;
  let measuredSum = 0;
  let measuredCount = 0;
  let windows = adaptive?.snapshot().windows ?? 0;
  const limits: number[] = [];
  const trace: SimulationResult['trace'] = [];

  const serve = (admitted: number, now: number) => {
    const s = serviceAt(now) * (1 + jitter * (2 * random() - 1));
    serving.push({ admitted, endsAt: now + Math.max(0.001, s) });
  };
  const fill = (now: number) => {
    while (waitHead < waiting.length && serving.length < capacityAt(now)) serve(waiting[waitHead++]!, now);
    if (waitHead > 1024) {
      waiting.splice(0, waitHead);
      waitHead = 0;
    }
  };
  const admit = (now: number) => {
    while (inflight < limitNow()) {
      inflight++;
      adaptive?.onStart();
      waiting.push(now);
    }
    fill(now);
  };

  admit(clock.now());
  while (done < options.completions) {
    let k = 0;
    for (let i = 1; i < serving.length; i++) if (serving[i]!.endsAt < serving[k]!.endsAt) k = i;
    const run = serving[k]!;
    serving[k] = serving[serving.length - 1]!;
    serving.pop();
    clock.set(run.endsAt);
    const now = run.endsAt;
    inflight--;
    done++;
    const durationMs = now - run.admitted;
    adaptive?.onEnd({ durationMs, ok: true });
    if (done === warmup) measuredFrom = now;
    if (done > warmup) {
      measuredSum += durationMs;
      measuredCount++;
    }
    if (adaptive) {
      const w = adaptive.snapshot().windows;
      if (w !== windows) {
        windows = w;
        limits.push(adaptive.limit);
      }
    }
    trace.push({ at: now, limit: limitNow() });
    fill(now);
    admit(now);
  }
  const elapsed = clock.now() - measuredFrom;
  return {
    completions: done,
    elapsedMs: clock.now() - t0,
    throughput: elapsed > 0 ? (measuredCount * 1000) / elapsed : 0,
    meanMs: measuredCount ? measuredSum / measuredCount : 0,
    limits,
    trace,
  };
}

/** Runs fixed limits 1…`upTo` and returns the best: the smallest limit within 2 % of the highest throughput. */
export function bestFixedLimit(model: ServerModel, upTo: number, completions: number): { limit: number; throughput: number; byLimit: number[] } {
  const byLimit: number[] = [];
  for (let l = 1; l <= upTo; l++) byLimit[l] = simulate(model, { limit: l, completions }).throughput;
  const top = Math.max(...byLimit.filter((x) => x !== undefined));
  const limit = byLimit.findIndex((x) => x !== undefined && x >= 0.98 * top);
  return { limit, throughput: byLimit[limit]!, byLimit };
}

/** Mean and variance of the last `n` values. */
export function tail(values: readonly number[], n: number): { mean: number; variance: number; min: number; max: number } {
  const xs = values.slice(-n);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  return { mean, variance, min: Math.min(...xs), max: Math.max(...xs) };
}
