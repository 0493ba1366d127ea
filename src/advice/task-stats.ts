/**
 * Rolling statistics of one task name: what its runs measured, kept so the advisor can reason from facts.
 *
 * Structure: a ring of the last `capacity` attempts (default 1024), filled in place — an observation writes one
 * slot and allocates nothing. Percentiles, rates and means are computed when read, over that ring: they describe
 * the most recent attempts, not all time, and they are exact over that sample (no sketch). Totals since the record
 * began are counters kept beside it. Schedule overlap is counted per schedule id and halved every 1024 slots, so
 * old slots fade.
 *
 * Layout: the ring is ONE Float64Array of 64-byte records (a header record, then one record per slot, each field
 * at a fixed offset), not one array per field. Why: a run that ends right after a subprocess was forked writes to
 * memory the fork made copy-on-write, and the first write to each 4 KiB page then costs a page fault (≈10 µs on a
 * virtual machine). Nine columns put one observation on nine pages; the record puts it on two records (its slot
 * and the header with the ring position and totals), two pages in the usual case (a 64-byte record may straddle
 * a page boundary: the buffer is not page-aligned).
 *
 * `toJSON()`/`fromJSON()` round-trip everything (missing values as `null`), so a runtime can keep the record in
 * its store's small key-value table and pick it up after a restart.
 */
import { systemClock, type Clock } from '../clock.ts';
import { ErrorCodes, TroupeError } from '../errors.ts';
import { summarizeValues } from './percentiles.ts';
import {
  FailureCauses, RunOutcomes,
  type FailureCause, type RunObservation, type RunOutcome, type StatsCounts, type TaskStatsJSON, type TaskStatsSummary,
} from './stats-types.ts';

export { FailureCauses, RunOutcomes };
export type { FailureCause, RunObservation, RunOutcome, ScheduleOverlap, StatsCounts, TaskStatsJSON, TaskStatsSummary } from './stats-types.ts';

export interface TaskStatsOptions {
  /** Attempts kept in the ring. @default 1024 */
  capacity?: number;
  /** Stamps observations that carry no `at`. @default systemClock */
  clock?: Clock;
}

const OUTCOMES: readonly RunOutcome[] = Object.freeze(Object.values(RunOutcomes));
const CAUSES: readonly FailureCause[] = Object.freeze(Object.values(FailureCauses));
const OUTCOME_CODE = new Map(OUTCOMES.map((o, i) => [o, i]));
const CAUSE_CODE = new Map(CAUSES.map((c, i) => [c, i + 1]));
const NO_CAUSE = 0;
const S = OUTCOME_CODE.get('succeeded')!;
const F = OUTCOME_CODE.get('failed')!;
const T = OUTCOME_CODE.get('timed_out')!;
const R = OUTCOME_CODE.get('retrying')!;
const C = OUTCOME_CODE.get('cancelled')!;
const PERMANENT = CAUSE_CODE.get('permanent')!;
const TIMEOUT = CAUSE_CODE.get('timeout')!;
const MAX_SCHEDULES = 64;
const OVERLAP_HALF_LIFE_SLOTS = 1024;
/** Fields of one record (a power of two, so that records tile pages); the first record is the header. */
const STRIDE = 8;
// Slot record: when, outcome and cause (`outcome << 4 | cause`), attempt, then the measurements (NaN = none).
const AT = 0;
const KIND = 1;
const ATTEMPT = 2;
const DURATION = 3;
const WAIT = 4;
const CPU = 5;
const RSS = 6;
const LINES = 7;
// Header record: ring position and fill, then the totals since the record began.
const HEAD = 0;
const FILL = 1;
const ATTEMPTS = 2;
const SUCCEEDED = 3;
const FAILED = 4;
const TIMED_OUT = 5;
const RETRIED = 6;
const CANCELLED = 7;
export const DEFAULT_STATS_CAPACITY = 1024;

const emptyCounts = (): StatsCounts => ({ attempts: 0, succeeded: 0, failed: 0, timedOut: 0, retried: 0, cancelled: 0 });
const num = (v: number | undefined): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : Number.NaN);

/** Rolling statistics of one task name (see the file header). */
export class TaskStats {
  readonly name: string;
  readonly capacity: number;
  readonly #clock: Clock;
  #firstAt: number | undefined;
  /** The header record, then `capacity` slot records (see the file header). */
  readonly #ring: Float64Array;
  readonly #schedules = new Map<string, { slots: number; overlapped: number }>();

  constructor(name: string, options: TaskStatsOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_STATS_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`capacity\` to be a positive integer, got ${capacity}`);
    this.name = name;
    this.capacity = capacity;
    this.#clock = options.clock ?? systemClock;
    this.#ring = new Float64Array((capacity + 1) * STRIDE);
  }

  /** Attempts in the window. */
  get size(): number {
    return this.#ring[FILL]!;
  }

  /** Records one ended attempt: O(1), writes one slot record and the header, allocates nothing. */
  observe(obs: RunObservation): void {
    const outcome = OUTCOME_CODE.get(obs.outcome);
    if (outcome === undefined) return;
    const at = obs.at ?? this.#clock.now();
    const ring = this.#ring;
    const i = ring[HEAD]!;
    ring[HEAD] = i + 1 === this.capacity ? 0 : i + 1;
    if (ring[FILL]! < this.capacity) ring[FILL]!++;
    this.#firstAt ??= at;
    const cause = outcome === S || outcome === C ? NO_CAUSE
      : CAUSE_CODE.get(obs.cause ?? (outcome === T ? 'timeout' : 'error')) ?? CAUSE_CODE.get('error')!;
    const r = (i + 1) * STRIDE;
    ring[r + AT] = at;
    ring[r + KIND] = (outcome << 4) | cause;
    ring[r + ATTEMPT] = Math.max(1, Math.min(0xffffffff, Math.floor(obs.attempt) || 1));
    ring[r + DURATION] = num(obs.durationMs);
    ring[r + WAIT] = num(obs.waitMs);
    ring[r + CPU] = num(obs.cpuMs);
    ring[r + RSS] = num(obs.peakRssMb);
    ring[r + LINES] = num(obs.outputLines);
    ring[ATTEMPTS]!++;
    ring[outcome === S ? SUCCEEDED : outcome === F ? FAILED : outcome === T ? TIMED_OUT : outcome === R ? RETRIED : CANCELLED]!++;
  }

  /** Records one slot of a schedule of this task: whether its previous run was still active when it came. */
  observeOverlap(scheduleId: string, overlapped: boolean): void {
    let entry = this.#schedules.get(scheduleId);
    if (!entry) {
      if (this.#schedules.size >= MAX_SCHEDULES) this.#schedules.delete(this.#schedules.keys().next().value!);
      entry = { slots: 0, overlapped: 0 };
      this.#schedules.set(scheduleId, entry);
    }
    entry.slots++;
    if (overlapped) entry.overlapped++;
    if (entry.slots >= 2 * OVERLAP_HALF_LIFE_SLOTS) {
      entry.slots /= 2;
      entry.overlapped /= 2;
    }
  }

  /** Computes the summary the advisor reads (sorts copies of the columns; call it on demand, not per run). */
  summary(): TaskStatsSummary {
    const ring = this.#ring;
    const n = ring[FILL]!;
    const counts = emptyCounts();
    const causes: Record<FailureCause, number> = { error: 0, timeout: 0, crash: 0, out_of_memory: 0, permanent: 0 };
    let recovered = 0;
    let exhausted = 0;
    let cpuSum = 0;
    let cpuWall = 0;
    let since = Number.POSITIVE_INFINITY;
    let lastAt = Number.NEGATIVE_INFINITY;
    const ranToEnd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = (i + 1) * STRIDE;
      const o = ring[r + KIND]! >> 4;
      const cause = ring[r + KIND]! & 15;
      counts.attempts++;
      if (o === S) counts.succeeded++;
      else if (o === F) counts.failed++;
      else if (o === T) counts.timedOut++;
      else if (o === R) counts.retried++;
      else counts.cancelled++;
      if (cause !== NO_CAUSE) causes[CAUSES[cause - 1]!]++;
      if (o === S && ring[r + ATTEMPT]! > 1) recovered++;
      if (o === F && ring[r + ATTEMPT]! > 1 && cause !== PERMANENT) exhausted++;
      ranToEnd[i] = (o === S || o === F || (o === R && cause !== TIMEOUT)) ? ring[r + DURATION]! : Number.NaN;
      const cpu = ring[r + CPU]!;
      const d = ring[r + DURATION]!;
      if (Number.isFinite(cpu) && Number.isFinite(d) && d > 0) {
        cpuSum += cpu;
        cpuWall += d;
      }
      if (ring[r + AT]! < since) since = ring[r + AT]!;
      if (ring[r + AT]! > lastAt) lastAt = ring[r + AT]!;
    }
    const finals = counts.succeeded + counts.failed + counts.timedOut;
    const out: TaskStatsSummary = {
      name: this.name,
      runs: ring[ATTEMPTS]!,
      window: n,
      counts,
      totals: this.#totals(),
      retryRate: n ? counts.retried / n : 0,
      timeoutRate: n ? causes.timeout / n : 0,
      crashRate: n ? (causes.crash + causes.out_of_memory) / n : 0,
      causes,
      recoveredByRetry: recovered,
      exhaustedRetries: exhausted,
      schedules: [...this.#schedules].map(([id, s]) => ({ id, slots: s.slots, overlapped: s.overlapped, rate: s.slots ? s.overlapped / s.slots : 0 })),
    };
    if (this.#firstAt !== undefined) out.firstAt = this.#firstAt;
    if (n) {
      out.since = since;
      out.lastAt = lastAt;
    }
    if (finals) out.successRate = counts.succeeded / finals;
    const put = <K extends 'durationMs' | 'waitMs' | 'cpuMs' | 'peakRssMb' | 'outputLines'>(key: K, values: Float64Array) => {
      const p = summarizeValues(values, n);
      if (p) out[key] = p;
    };
    put('durationMs', ranToEnd);
    put('waitMs', this.#column(WAIT));
    put('cpuMs', this.#column(CPU));
    put('peakRssMb', this.#column(RSS));
    put('outputLines', this.#column(LINES));
    if (cpuWall > 0) out.cpuPerSecond = cpuSum / cpuWall;
    return out;
  }

  /** The totals since the record began, as an object (read from the header). */
  #totals(): StatsCounts {
    const ring = this.#ring;
    return {
      attempts: ring[ATTEMPTS]!,
      succeeded: ring[SUCCEEDED]!,
      failed: ring[FAILED]!,
      timedOut: ring[TIMED_OUT]!,
      retried: ring[RETRIED]!,
      cancelled: ring[CANCELLED]!,
    };
  }

  /** One field of the filled slots, as a column (for the summary; slot order, not time order). */
  #column(field: number): Float64Array {
    const ring = this.#ring;
    const n = ring[FILL]!;
    const column = new Float64Array(n);
    for (let i = 0; i < n; i++) column[i] = ring[(i + 1) * STRIDE + field]!;
    return column;
  }

  /** The persisted form (see `TaskStatsJSON`); measurements are rounded to 0.001 (a microsecond for durations). */
  toJSON(): TaskStatsJSON {
    const ring = this.#ring;
    const n = ring[FILL]!;
    const start = n < this.capacity ? 0 : ring[HEAD]!;
    const samples: TaskStatsJSON['samples'] = { at: [], outcome: [], cause: [], attempt: [], durationMs: [], waitMs: [], cpuMs: [], peakRssMb: [], outputLines: [] };
    for (let k = 0; k < n; k++) {
      const i = (start + k) % this.capacity;
      const r = (i + 1) * STRIDE;
      samples.at.push(ring[r + AT]!);
      samples.outcome.push(OUTCOMES[ring[r + KIND]! >> 4]!);
      const cause = ring[r + KIND]! & 15;
      samples.cause.push(cause === NO_CAUSE ? null : CAUSES[cause - 1]!);
      samples.attempt.push(ring[r + ATTEMPT]!);
      samples.durationMs.push(round(ring[r + DURATION]!));
      samples.waitMs.push(round(ring[r + WAIT]!));
      samples.cpuMs.push(round(ring[r + CPU]!));
      samples.peakRssMb.push(round(ring[r + RSS]!));
      samples.outputLines.push(round(ring[r + LINES]!));
    }
    return {
      version: 1,
      name: this.name,
      capacity: this.capacity,
      firstAt: this.#firstAt ?? null,
      totals: this.#totals(),
      samples,
      schedules: [...this.#schedules].map(([id, s]) => ({ id, ...s })),
    };
  }

  /**
   * Adds the attempts and schedule slots of a newer record of the same name (one begun while this one was being
   * read from the store), as if they had been observed here after this record's own.
   */
  absorb(newer: TaskStats): void {
    const j = newer.toJSON();
    observeSamples(this, j.samples);
    for (const e of j.schedules ?? []) {
      const mine = this.#schedules.get(e.id);
      this.#schedules.set(e.id, mine ? { slots: mine.slots + e.slots, overlapped: mine.overlapped + e.overlapped } : { slots: e.slots, overlapped: e.overlapped });
    }
  }

  /** Rebuilds a record from `toJSON()` output; throws TROUPE_ERR_STORE_CORRUPT when the shape is wrong. */
  static fromJSON(value: unknown, options: Omit<TaskStatsOptions, 'capacity'> = {}): TaskStats {
    const j = value as TaskStatsJSON;
    const bad = (what: string) => new TroupeError(ErrorCodes.STORE_CORRUPT, `Stored task statistics are not readable: ${what}`);
    if (typeof j !== 'object' || j === null || j.version !== 1) throw bad('unknown version');
    if (typeof j.name !== 'string' || !Number.isInteger(j.capacity) || j.capacity < 1) throw bad('name or capacity');
    const s = j.samples;
    const n = Array.isArray(s?.at) ? s.at.length : -1;
    const columns = ['outcome', 'cause', 'attempt', 'durationMs', 'waitMs', 'cpuMs', 'peakRssMb', 'outputLines'] as const;
    if (n < 0 || n > j.capacity || columns.some((c) => !Array.isArray(s[c]) || s[c].length !== n)) throw bad('sample columns');
    const stats = new TaskStats(j.name, { ...options, capacity: j.capacity });
    for (let k = 0; k < n; k++) if (!OUTCOME_CODE.has(s.outcome[k]!) || typeof s.at[k] !== 'number') throw bad(`sample ${k}`);
    observeSamples(stats, s);
    stats.#firstAt = typeof j.firstAt === 'number' ? j.firstAt : stats.#firstAt;
    const t = j.totals;
    if (typeof t !== 'object' || t === null) throw bad('totals');
    for (let k = 0; k < TOTAL_KEYS.length; k++) {
      const key = TOTAL_KEYS[k]!;
      const v = t[key];
      if (typeof v !== 'number' || !(v >= 0)) throw bad(`totals.${key}`);
      stats.#ring[ATTEMPTS + k] = v;
    }
    for (const e of Array.isArray(j.schedules) ? j.schedules : []) {
      if (typeof e?.id === 'string' && e.slots >= 0 && e.overlapped >= 0) stats.#schedules.set(e.id, { slots: e.slots, overlapped: e.overlapped });
    }
    return stats;
  }
}

/** Observes the samples of a `toJSON()` record, oldest first (a cause the record does not know is dropped). */
function observeSamples(stats: TaskStats, s: TaskStatsJSON['samples']): void {
  for (let k = 0; k < s.at.length; k++) {
    const cause = s.cause[k];
    stats.observe({
      name: stats.name,
      outcome: s.outcome[k]!,
      attempt: s.attempt[k]!,
      at: s.at[k]!,
      ...(cause !== null && cause !== undefined && CAUSE_CODE.has(cause) ? { cause } : {}),
      ...opt('durationMs', s.durationMs[k]),
      ...opt('waitMs', s.waitMs[k]),
      ...opt('cpuMs', s.cpuMs[k]),
      ...opt('peakRssMb', s.peakRssMb[k]),
      ...opt('outputLines', s.outputLines[k]),
    });
  }
}

/** The totals in header order: `ring[ATTEMPTS + k]` is `TOTAL_KEYS[k]`. */
const TOTAL_KEYS = ['attempts', 'succeeded', 'failed', 'timedOut', 'retried', 'cancelled'] as const satisfies ReadonlyArray<keyof StatsCounts>;

function round(v: number): number | null {
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
}

function opt<K extends string>(key: K, v: number | null | undefined): { [P in K]?: number } {
  return (typeof v === 'number' ? { [key]: v } : {}) as { [P in K]?: number };
}
