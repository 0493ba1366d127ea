/**
 * Warning and error thresholds of the health check, their defaults, and the validation of a user's overrides.
 *
 * One rule for every reading: `value >= error` is an error, else `value >= warning` is a warning, else ok.
 * (The system troupe replaces used `<` for the per-check status and `>` for the overall flag, so a value exactly
 * on a threshold was reported both ways.)
 */
import { invalidOption } from '../../src/errors.ts';

/** A reading's two thresholds; `warning <= error`. */
export interface ThresholdPair {
  warning: number;
  error: number;
}

/** Thresholds of every health reading. */
export interface HealthThresholds {
  /** Host memory in use, % of total. @default { warning: 80, error: 95 } */
  memory: ThresholdPair;
  /** Disk space in use where the runtime keeps its data, %. @default { warning: 90, error: 95 } */
  disk: ThresholdPair;
  /** CPU of the runtime process, % of the whole host (normalised by core count). @default { warning: 90, error: 95 } */
  cpu: ThresholdPair;
  /** Event-loop delay, p99 in milliseconds. @default { warning: 200, error: 1000 } */
  eventLoopDelayMs: ThresholdPair;
  /** Tasks in state `queued`. @default { warning: 10000, error: 100000 } */
  queued: ThresholdPair;
  /** Seconds the oldest due task has waited. @default { warning: 300, error: 3600 } */
  oldestDueAgeSec: ThresholdPair;
}

export type HealthCheckName = keyof HealthThresholds;

/** A user's overrides: any reading, either threshold. */
export type HealthThresholdsInput = { [K in HealthCheckName]?: Partial<ThresholdPair> };

export const DEFAULT_HEALTH_THRESHOLDS: Readonly<HealthThresholds> = deepFreeze({
  memory: { warning: 80, error: 95 },
  disk: { warning: 90, error: 95 },
  cpu: { warning: 90, error: 95 },
  eventLoopDelayMs: { warning: 200, error: 1000 },
  queued: { warning: 10_000, error: 100_000 },
  oldestDueAgeSec: { warning: 300, error: 3600 },
});

export const HEALTH_CHECK_NAMES: readonly HealthCheckName[] = Object.freeze(
  Object.keys(DEFAULT_HEALTH_THRESHOLDS) as HealthCheckName[],
);

const PERCENT_CHECKS: ReadonlySet<HealthCheckName> = new Set(['memory', 'disk', 'cpu']);

/** Validates partial threshold overrides over `base`, so evaluation never meets a missing or inverted pair. */
export function resolveHealthThresholds(
  raw: unknown,
  path: string,
  base: Readonly<HealthThresholds> = DEFAULT_HEALTH_THRESHOLDS,
): HealthThresholds {
  const entries = HEALTH_CHECK_NAMES.map((name) => [name, { ...base[name] }]);
  const out = Object.fromEntries(entries) as unknown as HealthThresholds;
  if (raw === undefined) return out;
  if (!isPlainObject(raw)) throw invalidOption(path, `an object with some of ${HEALTH_CHECK_NAMES.join(', ')}`, raw);
  for (const key of Object.keys(raw)) {
    if (!(HEALTH_CHECK_NAMES as readonly string[]).includes(key)) {
      throw invalidOption(`${path}.${key}`, `one of the health readings (${HEALTH_CHECK_NAMES.join(', ')})`, raw[key]);
    }
    const name = key as HealthCheckName;
    const pair = raw[key];
    if (!isPlainObject(pair)) throw invalidOption(`${path}.${name}`, 'an object like { warning, error }', pair);
    for (const level of Object.keys(pair)) {
      if (level !== 'warning' && level !== 'error') {
        throw invalidOption(`${path}.${name}.${level}`, 'one of `warning` and `error`', pair[level]);
      }
      const value = pair[level];
      const max = PERCENT_CHECKS.has(name) ? 100 : Number.MAX_SAFE_INTEGER;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
        const expected = max === 100 ? 'a percentage from 0 to 100' : 'a non-negative number';
        throw invalidOption(`${path}.${name}.${level}`, expected, value);
      }
      out[name][level] = value;
    }
    if (out[name].warning > out[name].error) {
      throw invalidOption(
        `${path}.${name}.warning`,
        `at most \`${path}.${name}.error\` (${out[name].error})`,
        out[name].warning,
      );
    }
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) if (typeof inner === 'object' && inner !== null) Object.freeze(inner);
  return Object.freeze(value);
}
