/**
 * Input validation shared by the built-in maintenance tasks. Their input arrives from the HTTP API, the REPL or
 * `rt.enqueue`, so it is checked like any user input: a plain object, known keys only, numbers in range, and a
 * `TroupeError` with code INVALID_INPUT naming the field. Numeric strings are accepted so that query parameters
 * (`?maxAgeHours=24`) work as they are.
 */
import { describeValue, ErrorCodes, TroupeError } from '../../src/errors.ts';

/** The largest age threshold: ten years, in hours. */
export const MAX_AGE_HOURS_LIMIT = 87_600;
/** The age threshold when none is given, as in the system troupe replaces. */
export const DEFAULT_MAX_AGE_HOURS = 24;

/** Builds the coded error for a bad field: ``Expected `maxAgeHours` to be …, got `0` (number)``. */
export function invalidInput(path: string, expected: string, got: unknown): TroupeError {
  return new TroupeError(ErrorCodes.INVALID_INPUT, `Expected \`${path}\` to be ${expected}, got ${describeValue(got)}`);
}

/** Reads an optional input object: undefined and null mean "all defaults"; unknown keys are rejected. */
export function readInputObject(raw: unknown, keys: readonly string[]): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalidInput('input', `an object with ${keys.length > 0 ? `some of ${keys.join(', ')}` : 'no fields'}`, raw);
  }
  const input = raw as Record<string, unknown>;
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!keys.includes(key)) {
      throw invalidInput(key, `one of the known fields (${keys.join(', ') || 'none'})`, input[key]);
    }
    out[key] = input[key];
  }
  return out;
}

/**
 * A number written as plain decimal digits (`24`, `0.5`): the one text form the HTTP query string and the CLI
 * accept, so that both read the same text the same way (no `1e2`, `0x10` or `Infinity`). Undefined otherwise.
 */
export function decimalFromText(text: string): number | undefined {
  return /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : undefined;
}

/** Reads a positive number no larger than `max`, from a number or a decimal string. */
export function readPositiveNumber(value: unknown, path: string, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' ? (decimalFromText(value) ?? value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > max) {
    throw invalidInput(path, `a positive number of at most ${max}`, value);
  }
  return n;
}

/** Reads `maxAgeHours` (positive, at most ten years, 24 when absent). */
export function readMaxAgeHours(value: unknown): number {
  return readPositiveNumber(value, 'maxAgeHours', MAX_AGE_HOURS_LIMIT, DEFAULT_MAX_AGE_HOURS);
}
