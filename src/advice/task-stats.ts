/**
 * Rolling statistics of one task name: what its runs measured, kept so the advisor can reason from facts.
 *
 * Structure: a ring of the last `capacity` attempts (default 1024), one typed-array column per field, filled in
 * place — an observation writes one slot and allocates nothing. Percentiles, rates and means are computed when
 * read, over that ring: they describe the most recent attempts, not all time, and they are exact over that sample
 * (no sketch). Totals since the record began are plain counters kept beside it. Schedule overlap is counted per
 * schedule id and halved every 1024 slots, so old slots fade.
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
export const DEFAULT_STATS_CAPACITY = 1024;

const emptyCounts = (): StatsCounts => ({ attempts: 0, succeeded: 0, failed: 0, timedOut: 0, retried: 0, cancelled: 0 });
const num = (v: number | undefined): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : Number.NaN);

/** Rolling statistics of one task name (see the file header). */
export class TaskStats {
  readonly name: string;
  readonly capacity: number;
  readonly #clock: Clock;
  #n = 0;
  #head = 0;
  #firstAt: number | undefined;
  readonly #totals: StatsCounts = emptyCounts();
  readonly #at: Float64Array;
  readonly #outcome: Uint8Array;
  readonly #cause: Uint8Array;
  readonly #attempt: Uint32Array;
  readonly #duration: Float64Array;
  readonly #wait: Float64Array;
  readonly #cpu: Float64Array;
  readonly #rss: Float64Array;
  readonly #lines: Float64Array;
  readonly #schedules = new Map<string, { slots: number; overlapped: number }>();

  constructor(name: string, options: TaskStatsOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_STATS_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`capacity\` to be a positive integer, got ${capacity}`);
    this.name = name;
    this.capacity = capacity;
    this.#clock = options.clock ?? systemClock;
    this.#at = new Float64Array(capacity);
    this.#outcome = new Uint8Array(capacity);
    this.#cause = new Uint8Array(capacity);
    this.#attempt = new Uint32Array(capacity);
    this.#duration = new Float64Array(capacity);
    this.#wait = new Float64Array(capacity);
    this.#cpu = new Float64Array(capacity);
    this.#rss = new Float64Array(capacity);
    this.#lines = new Float64Array(capacity);
  }

  /** Attempts in the window. */
  get size(): number {
    return this.#n;
  }

  /** Records one ended attempt: O(1), writes one ring slot, allocates nothing. */
  observe(obs: RunObservation): void {
    const outcome = OUTCOME_CODE.get(obs.outcome);
    if (outcome === undefined) return;
    const at = obs.at ?? this.#clock.now();
    const i = this.#head;
    this.#head = i + 1 === this.capacity ? 0 : i + 1;
    if (this.#n < this.capacity) this.#n++;
    this.#firstAt ??= at;
    this.#at[i] = at;
    this.#outcome[i] = outcome;
    this.#cause[i] = outcome === S || outcome === C ? NO_CAUSE
      : CAUSE_CODE.get(obs.cause ?? (outcome === T ? 'timeout' : 'error')) ?? CAUSE_CODE.get('error')!;
    this.#attempt[i] = Math.max(1, Math.min(0xffffffff, Math.floor(obs.attempt) || 1));
    this.#duration[i] = num(obs.durationMs);
    this.#wait[i] = num(obs.waitMs);
    this.#cpu[i] = num(obs.cpuMs);
    this.#rss[i] = num(obs.peakRssMb);
    this.#lines[i] = num(obs.outputLines);
    const t = this.#totals;
    t.attempts++;
    if (outcome === S) t.succeeded++;
    else if (outcome === F) t.failed++;
    else if (outcome === T) t.timedOut++;
    else if (outcome === R) t.retried++;
    else t.cancelled++;
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
    const n = this.#n;
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
      const o = this.#outcome[i]!;
      const cause = this.#cause[i]!;
      counts.attempts++;
      if (o === S) counts.succeeded++;
      else if (o === F) counts.failed++;
      else if (o === T) counts.timedOut++;
      else if (o === R) counts.retried++;
      else counts.cancelled++;
      if (cause !== NO_CAUSE) causes[CAUSES[cause - 1]!]++;
      if (o === S && this.#attempt[i]! > 1) recovered++;
      if (o === F && this.#attempt[i]! > 1 && cause !== PERMANENT) exhausted++;
      ranToEnd[i] = (o === S || o === F || (o === R && cause !== TIMEOUT)) ? this.#duration[i]! : Number.NaN;
      const cpu = this.#cpu[i]!;
      const d = this.#duration[i]!;
      if (Number.isFinite(cpu) && Number.isFinite(d) && d > 0) {
        cpuSum += cpu;
        cpuWall += d;
      }
      if (this.#at[i]! < since) since = this.#at[i]!;
      if (this.#at[i]! > lastAt) lastAt = this.#at[i]!;
    }
    const finals = counts.succeeded + counts.failed + counts.timedOut;
    const out: TaskStatsSummary = {
      name: this.name,
      runs: this.#totals.attempts,
      window: n,
      counts,
      totals: { ...this.#totals },
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
    put('waitMs', this.#wait);
    put('cpuMs', this.#cpu);
    put('peakRssMb', this.#rss);
    put('outputLines', this.#lines);
    if (cpuWall > 0) out.cpuPerSecond = cpuSum / cpuWall;
    return out;
  }

  /** The persisted form (see `TaskStatsJSON`); measurements are rounded to 0.001 (a microsecond for durations). */
  toJSON(): TaskStatsJSON {
    const n = this.#n;
    const start = n < this.capacity ? 0 : this.#head;
    const samples: TaskStatsJSON['samples'] = { at: [], outcome: [], cause: [], attempt: [], durationMs: [], waitMs: [], cpuMs: [], peakRssMb: [], outputLines: [] };
    for (let k = 0; k < n; k++) {
      const i = (start + k) % this.capacity;
      samples.at.push(this.#at[i]!);
      samples.outcome.push(OUTCOMES[this.#outcome[i]!]!);
      const cause = this.#cause[i]!;
      samples.cause.push(cause === NO_CAUSE ? null : CAUSES[cause - 1]!);
      samples.attempt.push(this.#attempt[i]!);
      samples.durationMs.push(round(this.#duration[i]!));
      samples.waitMs.push(round(this.#wait[i]!));
      samples.cpuMs.push(round(this.#cpu[i]!));
      samples.peakRssMb.push(round(this.#rss[i]!));
      samples.outputLines.push(round(this.#lines[i]!));
    }
    return {
      version: 1,
      name: this.name,
      capacity: this.capacity,
      firstAt: this.#firstAt ?? null,
      totals: { ...this.#totals },
      samples,
      schedules: [...this.#schedules].map(([id, s]) => ({ id, ...s })),
    };
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
    for (let k = 0; k < n; k++) {
      const outcome = s.outcome[k]!;
      if (!OUTCOME_CODE.has(outcome) || typeof s.at[k] !== 'number') throw bad(`sample ${k}`);
      const cause = s.cause[k];
      stats.observe({
        name: j.name,
        outcome,
        attempt: s.attempt[k]!,
        at: s.at[k]!,
        ...(cause !== null && CAUSE_CODE.has(cause!) ? { cause: cause! } : {}),
        ...opt('durationMs', s.durationMs[k]),
        ...opt('waitMs', s.waitMs[k]),
        ...opt('cpuMs', s.cpuMs[k]),
        ...opt('peakRssMb', s.peakRssMb[k]),
        ...opt('outputLines', s.outputLines[k]),
      });
    }
    stats.#firstAt = typeof j.firstAt === 'number' ? j.firstAt : stats.#firstAt;
    const t = j.totals;
    if (typeof t !== 'object' || t === null) throw bad('totals');
    for (const key of Object.keys(stats.#totals) as Array<keyof StatsCounts>) {
      const v = t[key];
      if (typeof v !== 'number' || !(v >= 0)) throw bad(`totals.${key}`);
      stats.#totals[key] = v;
    }
    for (const e of Array.isArray(j.schedules) ? j.schedules : []) {
      if (typeof e?.id === 'string' && e.slots >= 0 && e.overlapped >= 0) stats.#schedules.set(e.id, { slots: e.slots, overlapped: e.overlapped });
    }
    return stats;
  }
}

function round(v: number): number | null {
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
}

function opt<K extends string>(key: K, v: number | null | undefined): { [P in K]?: number } {
  return (typeof v === 'number' ? { [key]: v } : {}) as { [P in K]?: number };
}
