/**
 * Turns a health sample and the queue counts into a report: each reading against its warning and error
 * thresholds, and an overall status that is the worst of them. Pure, so the boundaries are tested exactly.
 */
import type { TaskState } from '../../src/task.ts';
import type {
  DiskReading,
  EventLoopReading,
  HealthReadingError,
  HealthSample,
  HostReading,
  ProcessReading,
  SubprocessReading,
} from './health-sampler.ts';
import { HEALTH_CHECK_NAMES, type HealthCheckName, type HealthThresholds } from './health-thresholds.ts';

export const HealthStatuses = { ok: 'ok', warning: 'warning', error: 'error' } as const;
export type HealthStatus = (typeof HealthStatuses)[keyof typeof HealthStatuses];
/** `unknown`: the reading could not be taken; it does not change the overall status. */
export type CheckStatus = HealthStatus | 'unknown';

export interface HealthCheckResult {
  /** null when the reading could not be taken. */
  value: number | null;
  unit: '%' | 'ms' | 'tasks' | 's';
  status: CheckStatus;
  warning: number;
  error: number;
}

/** Queue figures the check needs (a `QueueCounts` from the store fits). */
export interface HealthCounts {
  byState: Partial<Record<TaskState, number>>;
  oldestDueAt?: number;
}

export interface HealthReport {
  status: HealthStatus;
  at: number;
  checks: Record<HealthCheckName, HealthCheckResult>;
  process: ProcessReading;
  subprocesses: SubprocessReading[];
  vanished: number[];
  host: HostReading;
  disk: DiskReading | undefined;
  eventLoop: EventLoopReading | undefined;
  /** The queue counts used; undefined when the store could not be read. */
  tasks: HealthCounts | undefined;
  /** Readings that failed, with their error code. */
  errors: HealthReadingError[];
}

const UNITS: Record<HealthCheckName, HealthCheckResult['unit']> = {
  memory: '%',
  disk: '%',
  cpu: '%',
  eventLoopDelayMs: 'ms',
  queued: 'tasks',
  oldestDueAgeSec: 's',
};

const RANK: Record<CheckStatus, number> = { unknown: -1, ok: 0, warning: 1, error: 2 };

/** The status of one reading: the single comparison used everywhere (`>=`, error before warning). */
export function statusOf(value: number | null, pair: { warning: number; error: number }): CheckStatus {
  if (value === null || !Number.isFinite(value)) return 'unknown';
  if (value >= pair.error) return 'error';
  if (value >= pair.warning) return 'warning';
  return 'ok';
}

/**
 * Evaluates a sample and the queue counts at `now` against the thresholds; the worst check wins. Without counts
 * (the store did not answer) the queue checks are `unknown`.
 */
export function evaluateHealth(
  sample: HealthSample,
  counts: HealthCounts | undefined,
  thresholds: HealthThresholds,
  now: number,
): HealthReport {
  const values: Record<HealthCheckName, number | null> = {
    memory: sample.host.memoryPercentUsed,
    disk: sample.disk?.percentUsed ?? null,
    cpu: sample.process.cpu ?? null,
    eventLoopDelayMs: sample.eventLoop?.p99Ms ?? null,
    queued: counts === undefined ? null : (counts.byState.queued ?? 0),
    oldestDueAgeSec: counts === undefined ? null : ageSec(counts.oldestDueAt, now),
  };
  let status: HealthStatus = 'ok';
  const checks = {} as Record<HealthCheckName, HealthCheckResult>;
  for (const name of HEALTH_CHECK_NAMES) {
    const pair = thresholds[name];
    const checkStatus = statusOf(values[name], pair);
    const value = values[name];
    checks[name] = { value, unit: UNITS[name], status: checkStatus, warning: pair.warning, error: pair.error };
    if (checkStatus !== 'unknown' && RANK[checkStatus] > RANK[status]) status = checkStatus;
  }
  let tasks: HealthCounts | undefined;
  if (counts !== undefined) {
    tasks = { byState: { ...counts.byState } };
    if (counts.oldestDueAt !== undefined) tasks.oldestDueAt = counts.oldestDueAt;
  }
  return {
    status,
    at: now,
    checks,
    process: sample.process,
    subprocesses: sample.subprocesses,
    vanished: sample.vanished,
    host: sample.host,
    disk: sample.disk,
    eventLoop: sample.eventLoop,
    tasks,
    errors: sample.errors,
  };
}

/** Whole seconds since `since` (0 when nothing waits or the time is in the future). */
function ageSec(since: number | undefined, now: number): number {
  return since === undefined ? 0 : Math.max(0, Math.floor((now - since) / 1000));
}
