/**
 * Durations and sizes as users write them: milliseconds or `'30s'`, `'5m'`, `'1h'`, `'2d'`, `'250ms'`;
 * bytes or `'10MB'`, `'512KiB'`. Parsing is strict: anything else is a coded error naming the option.
 */
import { invalidOption } from './errors.ts';

/** A duration: milliseconds, or a string such as `'30s'`. */
export type Duration = number | `${number}${DurationUnit}` | `${number} ${DurationUnit}`;
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';
/** A size: bytes, or a string such as `'10MB'`. */
export type Size = number | string;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

/**
 * The longest duration accepted: 100 years. Why: a time this far ahead is a mistake, and every store must keep
 * `now + duration` as a timestamp (PostgreSQL's bigint refuses `1e300`; a JavaScript Date ends near year 275760).
 */
export const MAX_DURATION_MS = 100 * 365.25 * 86_400_000;

/** Parses a duration; `path` names the option in the error. Accepts 0 unless `positive` is set. At most 100 years. */
export function parseDuration(value: unknown, path: string, { positive = false } = {}): number {
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
    if (m) ms = Number(m[1]) * DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()]!;
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (positive && ms === 0) || ms > MAX_DURATION_MS) {
    throw invalidOption(path, `a ${positive ? 'positive' : 'non-negative'} duration of at most 100 years (milliseconds or a string like '30s')`, value);
  }
  return Math.round(ms);
}

/** Parses a size in bytes; `path` names the option in the error. */
export function parseSize(value: unknown, path: string): number {
  let bytes: number | undefined;
  if (typeof value === 'number') bytes = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(value);
    if (m) bytes = Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]!;
  }
  // Checked after flooring: 0.5 bytes would otherwise become a size of 0.
  if (bytes === undefined || !Number.isFinite(bytes) || Math.floor(bytes) <= 0) {
    throw invalidOption(path, "a positive size (bytes or a string like '10MB')", value);
  }
  return Math.floor(bytes);
}
