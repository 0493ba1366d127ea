/**
 * Registers the built-in maintenance tasks — `cleanup-runs`, `cleanup-temp-files`, `health-check`,
 * `log-statistics` — as inline tasks, so they are enqueued, tracked, retried and listed like any other task.
 * Nothing runs by itself: they run when enqueued (HTTP maintenance endpoints, the REPL's `maint`, a schedule
 * the user creates).
 */
import type { Clock } from '../../src/clock.ts';
import { isTroupeError } from '../../src/errors.ts';
import type { Registry, StandardSchema } from '../../src/registry.ts';
import type { QueueCounts, Store } from '../../src/store/store.ts';
import type { HealthReport } from '../health/evaluate-health.ts';
import { createHealthSampler, type HealthSampler, type SamplePids } from '../health/health-sampler.ts';
import { DEFAULT_HEALTH_THRESHOLDS, type HealthThresholds } from '../health/health-thresholds.ts';
import { cleanupRuns, parseCleanupRunsInput } from './cleanup-runs.ts';
import { cleanupTempFiles, parseCleanupTempFilesInput } from './cleanup-temp-files.ts';
import { healthCheck, parseHealthCheckInput } from './health-check.ts';
import { logStatistics, parseLogStatisticsInput } from './log-statistics.ts';

export const BUILTIN_TASKS = ['cleanup-runs', 'cleanup-temp-files', 'health-check', 'log-statistics'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASKS)[number];

export interface BuiltinDeps {
  store: Store;
  clock: Clock;
  tempRoot: string;
  pids: () => SamplePids;
  counts: () => Promise<QueueCounts>;
  thresholds?: HealthThresholds;
  /** Where disk usage is read (the store's folder). @default process.cwd() */
  diskPath?: string;
}

/** What the runtime keeps of the built-ins: the shared sampler and a direct health check for `GET /api/health`. */
export interface BuiltinServices {
  sampler: HealthSampler;
  thresholds: HealthThresholds;
  healthCheck(): Promise<HealthReport>;
  close(): void;
}

/** Wraps a `parseX(raw)` validator as a Standard Schema so the registry validates at the door. */
function schemaOf<T>(parse: (raw: unknown) => T): StandardSchema<T> {
  return {
    '~standard': {
      version: 1,
      vendor: 'troupe',
      validate(value: unknown) {
        try {
          return { value: parse(value ?? undefined) };
        } catch (error) {
          if (isTroupeError(error)) return { issues: [{ message: error.message }] };
          throw error;
        }
      },
    },
  };
}

/** Adds the four built-in tasks to the registry and returns the services they share. */
export function registerBuiltinTasks(registry: Registry, deps: BuiltinDeps): BuiltinServices {
  const sampler = createHealthSampler({ clock: deps.clock, ...(deps.diskPath ? { diskPath: deps.diskPath } : {}) });
  const thresholds = deps.thresholds ?? DEFAULT_HEALTH_THRESHOLDS;
  const healthDeps = { sampler, store: deps.store, thresholds, pids: deps.pids, clock: deps.clock };
  const check = () => healthCheck(undefined, healthDeps);
  const options = { builtin: true };
  registry.register('cleanup-runs', {
    description: 'Deletes finished tasks older than maxAgeHours (default 24), with their history and output',
    input: schemaOf(parseCleanupRunsInput),
    retry: { attempts: 3, backoff: 'exponential', delay: '1s' },
    run: (input) => cleanupRuns(input as ReturnType<typeof parseCleanupRunsInput>, { store: deps.store, clock: deps.clock }),
  }, options);
  registry.register('cleanup-temp-files', {
    description: "Removes files older than maxAgeHours (default 24) under the runtime's temp folder",
    input: schemaOf(parseCleanupTempFilesInput),
    retry: { attempts: 3, backoff: 'exponential', delay: '1s' },
    run: (input) => cleanupTempFiles(input as ReturnType<typeof parseCleanupTempFilesInput>, { clock: deps.clock, tempRoot: deps.tempRoot }),
  }, options);
  registry.register('health-check', {
    description: 'Samples CPU, memory, disk, event-loop delay and queue counts against warning/error thresholds',
    input: schemaOf(parseHealthCheckInput),
    timeout: '30s',
    run: (input) => healthCheck(input as ReturnType<typeof parseHealthCheckInput>, healthDeps),
  }, options);
  registry.register('log-statistics', {
    description: 'Throughput, failure rate and duration percentiles of recent tasks, with a resource snapshot',
    input: schemaOf(parseLogStatisticsInput),
    timeout: '30s',
    run: (input, ctx) => logStatistics(input as ReturnType<typeof parseLogStatisticsInput>, { store: deps.store, clock: deps.clock, sampler, pids: deps.pids, log: (line) => ctx.log(line) }),
  }, options);
  return { sampler, thresholds, healthCheck: check, close: () => sampler.close() };
}
