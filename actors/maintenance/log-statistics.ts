/**
 * Built-in task `log-statistics`: a snapshot of what the runtime has been doing — tasks per state, how many
 * finished in the last window (an hour by default), the failure rate, run-time and wait-time percentiles of
 * those tasks, and how long the oldest due task has waited. Computed only through the Store port (`counts`
 * and `list` pages), so it works the same on every store.
 *
 * `list` pages come newest-created first and the window is about finish times, so the scan reads final tasks
 * until it has seen `maxScan` of them; `truncated` says when it stopped early (then older-created tasks that
 * finished inside the window are not counted).
 */
import type { Clock } from '../../src/clock.ts';
import type { Store } from '../../src/store/store.ts';
import { FINAL_STATES, type TaskState } from '../../src/task.ts';
import type { HealthSampler, SamplePids } from '../health/health-sampler.ts';
import { readInputObject, readPositiveNumber } from './maintenance-input.ts';

export interface LogStatisticsInput {
  /** The window that throughput, failure rate and percentiles cover, in minutes. @default 60 */
  windowMinutes: number;
}

export interface LogStatisticsDeps {
  store: Pick<Store, 'list' | 'counts'>;
  clock: Clock;
  /** When given, the snapshot includes the runtime's CPU, memory, load and event-loop delay. */
  sampler?: HealthSampler;
  /** The pids to sample. @default the current process only */
  pids?: SamplePids | (() => SamplePids);
  /** Receives a one-line summary (the task's `ctx.log`). */
  log?: (line: string) => void;
  /** Final tasks read at most. @default 10000 */
  maxScan?: number;
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Tasks that finished in the window, by outcome. */
export interface Throughput {
  finished: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  cancelled: number;
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
  at: number;
  windowMinutes: number;
  counts: Record<TaskState, number>;
  throughput: Throughput;
  /** (failed + timed out) / (succeeded + failed + timed out) in the window; null when none of those finished. */
  failureRate: number | null;
  /** Run time of the latest attempt of tasks that finished in the window (ms); undefined when there were none. */
  durationsMs: Percentiles | undefined;
  /** From due to start of the latest attempt, same tasks (ms). */
  waitMs: Percentiles | undefined;
  oldestDueAgeSec: number;
  scanned: number;
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
  const finished = { succeeded: 0, failed: 0, timed_out: 0, cancelled: 0 } as Record<TaskState, number>;
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
      finished[task.state] = (finished[task.state] ?? 0) + 1;
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
    (r.truncated ? ` (scan stopped at ${r.scanned} tasks)` : '')
  );
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
