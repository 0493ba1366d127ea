/**
 * Adaptive concurrency for one task name: a limit that follows the work's own latency, in the family of TCP
 * Vegas and Netflix's concurrency-limits (Vegas, Gradient2), tuned to settle instead of probing forever.
 *
 * The signal is queueing, counted in runs. Over a window of completed runs the controller compares their mean
 * duration with the no-load duration (`baseline`, the lowest window mean seen). By Little's law, with L runs in
 * flight and mean duration d, the runs actually being served number L × baseline / d; the rest, the queue
 * q = L × (1 − baseline / d), only wait (for a core, a pool thread, a connection of the downstream).
 *
 *   phase         entered when                        each window
 *   calibrating   created                             runs at `min` to measure the baseline, then goes to `initial`
 *   slow-start    calibrated                          no queue → double; a queue → steady (below)
 *   steady        first queue seen                    q < α twice in a row → +1 (then +2, +4… while it lasts,
 *                                                      at most limit/4)
 *                                                      α ≤ q ≤ β → hold (the tolerance band)
 *                                                      q > β → move halfway to the served count × (1 + tolerance)
 *
 * with α = max(0.5, tolerance/2 × limit, 3 standard errors of the window mean in runs) and β = max(1.5, 2 ×
 * tolerance × limit, 2α). In a system whose throughput stops growing at K runs, the limit settles at K + 1 (small
 * K) or within K × (1 + tolerance) … K / (1 − 2 × tolerance): it keeps a queue of about one run, the evidence that
 * more would not help. Noisy durations widen the band instead of moving the limit.
 *
 * Other rules:
 * - A window ends after max(`windowSamples`, 2 × limit) successful runs and at least `windowMs`. Runs that were
 *   in flight when the limit changed are left out of the next window (they measured the old limit).
 * - A dropped run (timeout, overload) ends the window at once and cuts the limit by `backoff` (at least by one);
 *   while calibrating (already at `min`) it only ends the window.
 * - No increase while fewer than `limit` runs were in flight in the window (the limit was not what held it back).
 * - Rebase: if two decreases in a row (of 10 % or more each) left the mean duration where it was, the runs were
 *   not queueing and the work itself got slower: the baseline becomes the new mean. Likewise after three windows
 *   at `min` with a queue.
 * - Overhead is not a queue: when an increase of 10 % or more (and well above the noise) added runs of which,
 *   by Little's law, under a quarter queued, the mean's growth (if above the noise) is taken into the baseline.
 *   Timer-bound work slows a little as the event loop gets busier; without this the controller would stop far
 *   below the downstream's capacity.
 * - Failed runs that are not drops carry no latency signal (a fast error is not a fast run).
 *
 * Pure: time comes from the injected clock, nothing is scheduled, and each call is O(1).
 */
import type { Clock } from '../../src/clock.ts';
import { invalidOption } from '../../src/errors.ts';

/** Bounds and tuning of one adaptive limit. */
export interface AdaptiveLimitOptions {
  /** The lowest limit. @default 1 */
  min?: number;
  /** The highest limit. @default 64 */
  max?: number;
  /** Where the limit goes once the baseline is measured. @default min */
  initial?: number;
  /** Fewest successful runs in a window (a window also holds at least 2 × limit). @default 16 */
  windowSamples?: number;
  /** Shortest window, in ms. @default 100 */
  windowMs?: number;
  /** Queueing tolerated, as a share of the limit (see the band above). @default 0.1 */
  tolerance?: number;
  /** Share of the way to its new estimate a decrease moves in one window. @default 0.5 */
  smoothing?: number;
  /** Factor applied to the limit when a run is dropped. @default 0.9 */
  backoff?: number;
}

export type ResolvedAdaptiveLimitOptions = Required<AdaptiveLimitOptions>;

export const ADAPTIVE_LIMIT_DEFAULTS = Object.freeze({
  min: 1,
  max: 64,
  windowSamples: 16,
  windowMs: 100,
  tolerance: 0.1,
  smoothing: 0.5,
  backoff: 0.9,
});

const OPTION_KEYS: ReadonlySet<string> = new Set(['min', 'max', 'initial', 'windowSamples', 'windowMs', 'tolerance', 'smoothing', 'backoff']);

export type AdaptivePhase = 'calibrating' | 'slow-start' | 'steady';
export type AdaptiveDecision = 'none' | 'calibrated' | 'increase' | 'hold' | 'app-limited' | 'decrease' | 'backoff' | 'rebase';

/** One completed run. */
export interface AdaptiveSample {
  /** Start to end, with sub-millisecond resolution (`performance.now()` differences). */
  durationMs: number;
  /** It succeeded: its duration is a latency sample. */
  ok: boolean;
  /** It was dropped for overload (timed out, refused): the limit backs off. */
  dropped?: boolean;
}

export interface AdaptiveLimitSnapshot {
  limit: number;
  /** The real-valued estimate behind the limit. */
  estimate: number;
  phase: AdaptivePhase;
  inflight: number;
  min: number;
  max: number;
  /** The no-load duration, once measured. */
  baselineMs?: number;
  /** Windows closed so far, and limit changes among them. */
  windows: number;
  changes: number;
  /** Runs reported dropped so far (each backs the limit off, unless it started before the last change). */
  dropped: number;
  last: {
    decision: AdaptiveDecision;
    /** Mean duration of the last window. */
    meanMs?: number;
    /** Runs estimated waiting in the last window. */
    queue?: number;
    samples: number;
    /** Successful runs per second in the last window. */
    throughput?: number;
    at?: number;
  };
}

export interface AdaptiveLimit {
  /** How many runs of the name may be in flight now. */
  readonly limit: number;
  /** Call when a run of the name starts. */
  onStart(): void;
  /** Call once per started run when it ends (also cancelled or released runs, with `ok: false`). */
  onEnd(sample: AdaptiveSample): void;
  snapshot(): AdaptiveLimitSnapshot;
}

/** Validates adaptive-limit options into a complete set; `path` names the option in errors. */
export function resolveAdaptiveLimitOptions(raw: AdaptiveLimitOptions = {}, path = 'concurrency'): ResolvedAdaptiveLimitOptions {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidOption(path, 'an object', raw);
  for (const key of Object.keys(raw)) {
    if (!OPTION_KEYS.has(key)) throw invalidOption(`${path}.${key}`, `one of ${[...OPTION_KEYS].join(', ')} (unknown key)`, (raw as Record<string, unknown>)[key]);
  }
  const int = (key: 'min' | 'max' | 'initial' | 'windowSamples', fallback: number, low: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < low) throw invalidOption(`${path}.${key}`, `an integer ≥ ${low}`, v);
    return v;
  };
  const real = (key: 'windowMs' | 'tolerance' | 'smoothing' | 'backoff', fallback: number, ok: (v: number) => boolean, expected: string): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !ok(v)) throw invalidOption(`${path}.${key}`, expected, v);
    return v;
  };
  const min = int('min', ADAPTIVE_LIMIT_DEFAULTS.min, 1);
  const max = int('max', Math.max(min, ADAPTIVE_LIMIT_DEFAULTS.max), min);
  const initial = int('initial', min, min);
  if (initial > max) throw invalidOption(`${path}.initial`, `an integer from ${min} to ${max}`, initial);
  return {
    min,
    max,
    initial,
    windowSamples: int('windowSamples', ADAPTIVE_LIMIT_DEFAULTS.windowSamples, 1),
    windowMs: real('windowMs', ADAPTIVE_LIMIT_DEFAULTS.windowMs, (v) => Number.isFinite(v) && v >= 0, 'a non-negative number'),
    tolerance: real('tolerance', ADAPTIVE_LIMIT_DEFAULTS.tolerance, (v) => v > 0 && v < 0.5, 'a number above 0 and below 0.5'),
    smoothing: real('smoothing', ADAPTIVE_LIMIT_DEFAULTS.smoothing, (v) => v > 0 && v <= 1, 'a number above 0, at most 1'),
    backoff: real('backoff', ADAPTIVE_LIMIT_DEFAULTS.backoff, (v) => v > 0 && v < 1, 'a number between 0 and 1'),
  };
}

/** A task's `concurrency` option: a fixed limit, or an adaptive one within bounds. */
export type ConcurrencyOption = number | ({ adaptive: true } & AdaptiveLimitOptions);

export type ResolvedConcurrency = { kind: 'fixed'; limit: number } | { kind: 'adaptive'; options: ResolvedAdaptiveLimitOptions };

/** Validates a task definition's `concurrency` (`8`, or `{ adaptive: true, min: 1, max: 64 }`) at registration. */
export function resolveConcurrencyOption(raw: unknown, path = 'concurrency'): ResolvedConcurrency {
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw) || raw < 1) throw invalidOption(path, 'a positive integer or { adaptive: true, min, max }', raw);
    return { kind: 'fixed', limit: raw };
  }
  if (typeof raw !== 'object' || raw === null || (raw as { adaptive?: unknown }).adaptive !== true) {
    throw invalidOption(path, 'a positive integer or { adaptive: true, min, max }', raw);
  }
  const { adaptive: _adaptive, ...options } = raw as { adaptive: true } & AdaptiveLimitOptions;
  return { kind: 'adaptive', options: resolveAdaptiveLimitOptions(options, path) };
}

/** Creates an adaptive limit for one task name (see the file header); raw options are validated here. */
export function createAdaptiveLimit(options: AdaptiveLimitOptions | ResolvedAdaptiveLimitOptions, clock: Clock): AdaptiveLimit {
  return new QueueLimit(resolveAdaptiveLimitOptions(options), clock);
}

const PENDING_NONE = 0;

class QueueLimit implements AdaptiveLimit {
  readonly #o: ResolvedAdaptiveLimitOptions;
  readonly #clock: Clock;
  #limit: number;
  #estimate: number;
  #phase: AdaptivePhase = 'calibrating';
  #inflight = 0;
  #peak = 0;
  #skip = 0;
  #n = 0;
  #sum = 0;
  #sumSq = 0;
  #dropped = 0;
  #windowStart: number;
  #base = Number.NaN;
  #streak = 0;
  #atMinQueued = 0;
  #unmoved = 0;
  /** The limit before the last change and the mean measured at it (0 = no check pending). */
  #checkFrom = PENDING_NONE;
  #checkMean = 0;
  #windows = 0;
  #changes = 0;
  #last: AdaptiveLimitSnapshot['last'] = { decision: 'none', samples: 0 };

  constructor(options: ResolvedAdaptiveLimitOptions, clock: Clock) {
    this.#o = options;
    this.#clock = clock;
    this.#limit = options.min;
    this.#estimate = options.min;
    this.#windowStart = clock.now();
  }

  get limit(): number {
    return this.#limit;
  }

  onStart(): void {
    this.#inflight++;
    if (this.#inflight > this.#peak) this.#peak = this.#inflight;
  }

  onEnd(sample: AdaptiveSample): void {
    if (this.#inflight > 0) this.#inflight--;
    if (this.#skip > 0) {
      this.#skip--;
      return;
    }
    if (sample.dropped) {
      this.#dropped++;
      this.#backOff();
      return;
    }
    if (!sample.ok || !(sample.durationMs >= 0)) return;
    this.#n++;
    this.#sum += sample.durationMs;
    this.#sumSq += sample.durationMs * sample.durationMs;
    if (this.#n >= Math.max(this.#o.windowSamples, 2 * this.#limit) && this.#clock.now() - this.#windowStart >= this.#o.windowMs) this.#closeWindow();
  }

  snapshot(): AdaptiveLimitSnapshot {
    const s: AdaptiveLimitSnapshot = {
      limit: this.#limit,
      estimate: this.#estimate,
      phase: this.#phase,
      inflight: this.#inflight,
      min: this.#o.min,
      max: this.#o.max,
      windows: this.#windows,
      changes: this.#changes,
      dropped: this.#dropped,
      last: { ...this.#last },
    };
    if (Number.isFinite(this.#base)) s.baselineMs = this.#base;
    return s;
  }

  #closeWindow(): void {
    const now = this.#clock.now();
    const mean = this.#sum / this.#n;
    const elapsed = now - this.#windowStart;
    this.#windows++;
    this.#last = { decision: 'hold', meanMs: mean, samples: this.#n, at: now, ...(elapsed > 0 ? { throughput: (this.#n * 1000) / elapsed } : {}) };
    if (!(mean > 0)) {
      // Durations below the timer's resolution say nothing about queueing (feed it performance.now() differences).
      this.#resetWindow();
      return;
    }
    if (this.#phase === 'calibrating') {
      this.#base = mean;
      this.#phase = 'slow-start';
      if (this.#o.initial > this.#limit) {
        this.#last.decision = 'calibrated';
        this.#change(this.#o.initial, mean);
        return;
      }
    }
    if (mean < this.#base) this.#base = mean;
    const from = this.#checkFrom;
    const fromMean = this.#checkMean;
    this.#checkFrom = PENDING_NONE;
    // The standard error of this window's mean: differences smaller than a few of these are noise.
    const se = Math.sqrt(Math.max(0, this.#sumSq / this.#n - mean * mean) / this.#n);
    if (from !== PENDING_NONE && this.#limit > from && mean - fromMean > 2 * se && this.#limit / from - 1 >= Math.max(0.1, (4 * se) / mean)) {
      // Of the runs an increase added, Little's law says this share queued; when it is small, the mean grew from
      // per-run overhead (a busier event loop, say), not from a queue: that growth joins the baseline, so it is
      // not mistaken for queueing later.
      const queuedShare = (this.#limit * (1 - fromMean / mean)) / (this.#limit - from);
      if (queuedShare < 0.25) this.#base = Math.min(mean, this.#base * (mean / fromMean));
    }
    const served = Math.min(this.#limit, this.#peak);
    const queue = served * (1 - this.#base / mean);
    this.#last.queue = queue;
    const { tolerance, min, max, smoothing } = this.#o;
    // A queue within three standard errors of the window mean is noise, not evidence.
    const alpha = Math.max(0.5, (tolerance / 2) * this.#limit, (3 * served * se) / mean);
    const beta = Math.max(1.5, 2 * tolerance * this.#limit, 2 * alpha);
    if (queue > beta) {
      this.#phase = 'steady';
      this.#streak = 0;
      // The last decrease should have cut the mean by about (1 − limit/checkFrom). When two decreases in a row
      // left it where it was, the runs were not queueing: the work itself got slower and the baseline is stale.
      // (One is not enough: a window that straddles a change of the system looks the same.)
      const unmoved = from !== PENDING_NONE && 1 - this.#limit / from >= 0.1 && mean >= fromMean * 0.95;
      this.#unmoved = unmoved ? this.#unmoved + 1 : 0;
      if (this.#unmoved >= 2) return this.#rebase(mean);
      if (this.#limit === min) {
        if (++this.#atMinQueued >= 3) return this.#rebase(mean);
        this.#resetWindow();
        return;
      }
      const knee = served - queue;
      const target = knee + Math.max(0.5, tolerance * knee);
      let next = this.#estimate + smoothing * (target - this.#estimate);
      if (Math.floor(next) >= this.#limit) next = this.#limit - 1;
      this.#last.decision = 'decrease';
      this.#change(next, mean);
      return;
    }
    this.#atMinQueued = 0;
    this.#unmoved = 0;
    if (queue >= alpha) {
      this.#phase = 'steady';
      this.#streak = 0;
      this.#resetWindow();
      return;
    }
    if (this.#peak < this.#limit || this.#limit >= max) {
      this.#last.decision = this.#peak < this.#limit ? 'app-limited' : 'hold';
      this.#resetWindow();
      return;
    }
    if (this.#phase === 'slow-start') {
      this.#last.decision = 'increase';
      this.#change(Math.max(this.#estimate + 1, this.#estimate * 2), mean);
      return;
    }
    // Steady: a second window without a queue in a row is needed; then steps of 1, 2, 4… (at most limit/4).
    if (++this.#streak < 2) {
      this.#resetWindow();
      return;
    }
    this.#last.decision = 'increase';
    const step = Math.min(2 ** Math.min(this.#streak - 2, 10), Math.max(1, Math.floor(this.#limit / 4)));
    this.#change(Math.floor(this.#estimate) + step, mean);
  }

  #backOff(): void {
    if (this.#phase === 'calibrating') {
      // Already at min, and the baseline is not measured yet: start the window again.
      this.#resetWindow();
      return;
    }
    this.#phase = 'steady';
    this.#streak = 0;
    this.#checkFrom = PENDING_NONE;
    this.#windows++;
    this.#last = { decision: 'backoff', samples: this.#n, at: this.#clock.now() };
    let next = this.#estimate * this.#o.backoff;
    if (Math.floor(next) >= this.#limit) next = this.#limit - 1;
    this.#set(next);
  }

  #rebase(mean: number): void {
    this.#base = mean;
    this.#atMinQueued = 0;
    this.#unmoved = 0;
    this.#last.decision = 'rebase';
    this.#resetWindow();
  }

  /** Moves the estimate, remembering the limit and mean it left so the next window can check the move. */
  #change(estimate: number, mean: number): void {
    this.#checkFrom = this.#limit;
    this.#checkMean = mean;
    this.#set(estimate);
  }

  #set(estimate: number): void {
    const { min, max } = this.#o;
    this.#estimate = Math.min(max, Math.max(min, estimate));
    const limit = Math.min(max, Math.max(min, Math.floor(this.#estimate + 1e-9)));
    if (limit !== this.#limit) {
      this.#limit = limit;
      this.#changes++;
      // Runs in flight now were started under the old limit: their durations describe it, not the new one.
      this.#skip = this.#inflight;
    }
    this.#resetWindow();
  }

  #resetWindow(): void {
    this.#n = 0;
    this.#sum = 0;
    this.#sumSq = 0;
    this.#peak = this.#inflight;
    this.#windowStart = this.#clock.now();
  }
}
