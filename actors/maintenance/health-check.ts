/**
 * Built-in task `health-check`: one sample of the runtime, its workers and subprocesses, the host and the disk,
 * plus the queue counts, judged against warning and error thresholds. A store that cannot answer makes the
 * report an error (the runtime cannot track work), but never makes the check itself throw.
 */
import type { Clock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError, TroupeError } from '../../src/errors.ts';
import type { Store } from '../../src/store/store.ts';
import { evaluateHealth, type HealthCounts, type HealthReport } from '../health/evaluate-health.ts';
import type { HealthSampler, SamplePids } from '../health/health-sampler.ts';
import {
  resolveHealthThresholds,
  type HealthThresholds,
  type HealthThresholdsInput,
} from '../health/health-thresholds.ts';
import { readInputObject } from './maintenance-input.ts';

export interface HealthCheckInput {
  /** Overrides of the runtime's thresholds for this one check. */
  thresholds?: HealthThresholdsInput;
}

export interface HealthCheckDeps {
  sampler: HealthSampler;
  store: Pick<Store, 'counts'>;
  /** The runtime's resolved thresholds. */
  thresholds: HealthThresholds;
  /** The pids to sample, listed at the time of the check. */
  pids: SamplePids | (() => SamplePids);
  clock: Clock;
}

/** Validates `{ thresholds? }` at the door: INVALID_INPUT on anything else. */
export function parseHealthCheckInput(raw: unknown): HealthCheckInput {
  const input = readInputObject(raw, ['thresholds']);
  if (input.thresholds === undefined) return {};
  try {
    resolveHealthThresholds(input.thresholds, 'thresholds');
  } catch (error) {
    if (isTroupeError(error)) throw new TroupeError(ErrorCodes.INVALID_INPUT, error.message, { cause: error });
    throw error;
  }
  return { thresholds: input.thresholds as HealthThresholdsInput };
}

/** Samples and evaluates the runtime's health once, for the HTTP health endpoint and the maintenance task. */
export async function healthCheck(input: HealthCheckInput | undefined, deps: HealthCheckDeps): Promise<HealthReport> {
  const parsed = parseHealthCheckInput(input);
  const thresholds =
    parsed.thresholds === undefined
      ? deps.thresholds
      : resolveHealthThresholds(parsed.thresholds, 'thresholds', deps.thresholds);
  const pids = typeof deps.pids === 'function' ? deps.pids() : deps.pids;
  const now = deps.clock.now();
  const [sample, counts] = await Promise.all([
    deps.sampler.sample(pids),
    deps.store.counts(now).then(
      (c): HealthCounts | Error => c,
      (error: unknown): Error => (error instanceof Error ? error : new Error(String(error))),
    ),
  ]);
  if (counts instanceof Error) {
    const raw = (counts as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : 'UNKNOWN';
    const report = evaluateHealth(sample, undefined, thresholds, now);
    return { ...report, status: 'error', errors: [...report.errors, { reading: 'store', code }] };
  }
  return evaluateHealth(sample, counts, thresholds, now);
}
