/**
 * Built-in task `log-statistics`: a snapshot of what the runtime has been doing — tasks per state, how many
 * finished in the last window (an hour by default), the failure rate, run-time and wait-time percentiles of
 * those tasks, and how long the oldest due task has waited. Computed only through the Store port, so it works
 * the same on every store.
 *
 * Two reads with different guarantees:
 * - throughput and failure rate are exact: the store counts the tasks finished in the window by final state in
 *   one aggregate read (`countFinished`). A store without that optional method (one written against an older
 *   port) gets them from the scan below instead, and then they stop where the scan stops (`throughputExact`).
 * - the percentiles come from a sample: `list` pages come newest-created first and the window is about finish
 *   times, so the scan reads final tasks until it has seen `maxScan` of them; `truncated` says when it stopped
 *   early (then older-created tasks that finished inside the window are not in the sample).
 */
import type { Clock } from '../../src/clock.ts';
import type { FinishedCounts, Store } from '../../src/store/store.ts';
import { FINAL_STATES, type TaskState } from '../../src/task.ts';
import type { HealthSampler, SamplePids } from '../health/health-sampler.ts';
import { readInputObject, readPositiveNumber } from './maintenance-input.ts';

export interface LogStatisticsInput {
  /** The window that throughput, failure rate and percentiles cover, in minutes. @default 60 */
  windowMinutes: number;
}

export interface LogStatisticsDeps {
  /** `countFinished` is used when the store has it (exact throughput); else the scan counts. */
  store: Pick<Store, 'list' | 'counts' | 'countFinished'>;
  clock: Clock;
  /** When given, the snapshot includes the runtime's CPU, memory, load and event-loop delay. */
  sampler?: HealthSampler;
  /** The pids to sample. @default the current process only */
  pids?: SamplePids | (() => SamplePids);
  /** Receives a one-line summary (the task's `ctx.log`). */
  log?: (line: string) => void;
  /** Final tasks the percentiles' sample reads at most (and the throughput of a store without `countFinished`). @default 10000 */
  maxScan?: number;
}

/** Nearest-rank percentiles of a sample, in ms. */
export interface Percentiles {
  /** The sample's size: the sampled tasks that had a value. */
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Tasks that finished in the window (finishedAt from the window's start to `at`, both included), by final state. */
export interface Throughput {
  /** succeeded + failed + timedOut + cancelled. */
  finished: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  cancelled: number;
  /** finished / windowMinutes, to two decimals. */
  perMinute: number;
}

export interface SystemSnapshot {
  /** % of the whole host. */
  cpu: number | undefined;
  memoryRss: number;
  hostMemoryPercentUsed: number;
  loadavg: [number, number, number];
  eventLoopP99Ms: number | undefined;
}

export interface LogStatisticsResult {
  /** When the snapshot was taken (epoch ms): the window is [at − windowMinutes, at]. */
  at: number;
  windowMinutes: number;
  /** Every task in the store, per state, now. */
  counts: Record<TaskState, number>;
  /** Exact when `throughputExact`; else counted from the scanned sample. */
  throughput: Throughput;
  /** (failed + timed out) / (succeeded + failed + timed out) in the window, to four decimals; null when none of those finished. */
  failureRate: number | null;
  /**
   * true: `throughput` and `failureRate` count every task finished in the window (the store's `countFinished`, or a
   * scan that read them all). false: a store without `countFinished` whose scan stopped early (`truncated`); they
   * count only the scanned tasks.
   */
  throughputExact: boolean;
  /**
   * Run time of the latest attempt (finishedAt − startedAt, ms) of the sampled tasks that finished in the window,
   * cancelled ones left out; undefined when there were none. A sample: `count` is its size, short of `throughput`
   * when `truncated`.
   */
  durationsMs: Percentiles | undefined;
  /** From due (runAt) to the start of the latest attempt, ms, same tasks. */
  waitMs: Percentiles | undefined;
  oldestDueAgeSec: number;
  /** Final tasks the percentiles' sample read, newest-created first (any finish time). */
  scanned: number;
  /** true: the sample stopped at `maxScan` before the oldest final task, so the percentiles may miss some of the window's tasks. */
  truncated: boolean;
  /** The runtime's own readings, when a sampler was given. */
  system?: SystemSnapshot;
}

export const MAX_WINDOW_MINUTES = 7 * 24 * 60;
const PAGE = 1000;
const FINAL: readonly TaskState[] = Object.freeze([...FINAL_STATES]);

/** Validates `{ windowMinutes? }` at the door: INVALID_INPUT on anything else. */
export function parseLogStatisticsInput(raw: unknown): LogStatisticsInput {
  const input = readInputObject(raw, ['windowMinutes']);
  return { windowMinutes: readPositiveNumber(input.windowMinutes, 'windowMinutes', MAX_WINDOW_MINUTES, 60) };
}

/** Summarises recent throughput, failures and latency for operators, from the store alone. */
export async function logStatistics(
  input: Partial<LogStatisticsInput> | undefined,
  deps: LogStatisticsDeps,
): Promise<LogStatisticsResult> {
  const { windowMinutes } = parseLogStatisticsInput(input);
  const now = deps.clock.now();
  const windowStart = now - windowMinutes * 60_000;
  const maxScan = Math.max(1, deps.maxScan ?? 10_000);

  const counts = await deps.store.counts(now);
  const exact = await deps.store.countFinished?.(windowStart, now);
  const sampled: FinishedCounts = { succeeded: 0, failed: 0, timed_out: 0, cancelled: 0 };
  const runTimes: number[] = [];
  const waits: number[] = [];
  let scanned = 0;
  let cursor: string | undefined;
  let truncated = false;
  for (;;) {
    const limit = Math.min(PAGE, maxScan - scanned);
    const page = await deps.store.list(cursor === undefined ? { state: FINAL, limit } : { state: FINAL, limit, cursor });
    for (const task of page.tasks) {
      scanned++;
      if (task.finishedAt === undefined || task.finishedAt < windowStart || task.finishedAt > now) continue;
      if (Object.hasOwn(sampled, task.state)) sampled[task.state as keyof FinishedCounts]++;
      if (task.state === 'cancelled' || task.startedAt === undefined) continue;
      runTimes.push(Math.max(0, task.finishedAt - task.startedAt));
      waits.push(Math.max(0, task.startedAt - Math.min(task.runAt, task.startedAt)));
    }
    cursor = page.nextCursor;
    if (cursor === undefined || page.tasks.length === 0) break;
    if (scanned >= maxScan) {
      truncated = true;
      break;
    }
  }

  const finished = exact ?? sampled;
  const succeeded = finished.succeeded;
  const failed = finished.failed;
  const timedOut = finished.timed_out;
  const cancelled = finished.cancelled;
  const total = succeeded + failed + timedOut + cancelled;
  const judged = succeeded + failed + timedOut;
  const result: LogStatisticsResult = {
    at: now,
    windowMinutes,
    counts: { ...counts.byState },
    throughput: { finished: total, succeeded, failed, timedOut, cancelled, perMinute: round2(total / windowMinutes) },
    failureRate: judged === 0 ? null : round4((failed + timedOut) / judged),
    throughputExact: exact !== undefined || !truncated,
    durationsMs: percentiles(runTimes),
    waitMs: percentiles(waits),
    oldestDueAgeSec: counts.oldestDueAt === undefined ? 0 : Math.max(0, Math.floor((now - counts.oldestDueAt) / 1000)),
    scanned,
    truncated,
  };

  if (deps.sampler !== undefined) {
    const listed = deps.pids ?? { runtime: process.pid, threads: [], subprocesses: [] };
    const pids = typeof listed === 'function' ? listed() : listed;
    const s = await deps.sampler.sample(pids);
    result.system = {
      cpu: s.process.cpu,
      memoryRss: s.process.memoryRss,
      hostMemoryPercentUsed: s.host.memoryPercentUsed,
      loadavg: s.host.loadavg,
      eventLoopP99Ms: s.eventLoop?.p99Ms,
    };
  }

  deps.log?.(summarise(result));
  return result;
}

/** Nearest-rank percentiles. */
function percentiles(values: number[]): Percentiles | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

function summarise(r: LogStatisticsResult): string {
  const states = Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state}=${n}`)
    .join(' ');
  const rate = r.failureRate === null ? 'n/a' : `${(r.failureRate * 100).toFixed(1)}%`;
  const d = r.durationsMs;
  const run = d === undefined ? 'n/a' : `p50=${d.p50}ms p95=${d.p95}ms p99=${d.p99}ms`;
  return (
    `tasks ${states || 'none'}; last ${r.windowMinutes} min: ${r.throughput.finished} finished ` +
    `(${r.throughput.perMinute}/min), failure rate ${rate}, run ${run}; oldest due ${r.oldestDueAgeSec}s` +
    (r.truncated
      ? ` (percentiles from the ${r.scanned} newest-created final tasks${r.throughputExact ? '' : ', throughput too'})`
      : '')
  );
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
