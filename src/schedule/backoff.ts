/**
 * Retry backoff: how long a failed attempt waits before the next one, and the validation of the user's
 * `retry` option into a resolved `RetryPolicy`.
 *
 * The delay is a pure function of the policy, the attempt number and a random source, so the task machine can
 * compute it without a clock and tests can pin it with a seeded random:
 *
 *   fixed        delay
 *   exponential  delay × 2^(attempt − 1)
 *   then         min(…, maxDelay) × U[1 − jitter, 1 + jitter], capped at maxDelay again, rounded, ≥ 0
 */
import { invalidOption } from '../errors.ts';
import type { BackoffKind, RetryPolicy } from '../task.ts';
import { parseDuration } from '../units.ts';

const BACKOFF_KINDS: readonly BackoffKind[] = Object.freeze(['fixed', 'exponential']);
const RETRY_KEYS: readonly string[] = Object.freeze(['attempts', 'backoff', 'delay', 'maxDelay', 'jitter']);

/** Milliseconds to wait after failed attempt number `attempt` (1 = the first run) before the next one. */
export function computeBackoff(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const cap = Math.max(0, policy.maxDelayMs);
  const base = Math.max(0, policy.delayMs);
  // 2 ** 1100 is Infinity and 0 × Infinity is NaN: cap before multiplying out of range.
  const exponential = policy.backoff === 'exponential' && base > 0;
  let delay = exponential ? Math.min(cap, base * 2 ** Math.min(n - 1, 1023)) : Math.min(cap, base);
  if (policy.jitter > 0 && delay > 0) {
    const r = Math.min(1, Math.max(0, random()));
    const factor = 1 - policy.jitter + 2 * policy.jitter * r;
    delay = Math.min(cap, delay * factor);
  }
  return Number.isFinite(delay) ? Math.max(0, Math.round(delay)) : cap;
}

/**
 * Validates a user's `retry` option (`{ attempts, backoff, delay, maxDelay, jitter }`, every key optional)
 * against `defaults`, so the kernel only ever sees a complete `RetryPolicy`.
 */
export function resolveRetryPolicy(raw: unknown, path: string, defaults: RetryPolicy): RetryPolicy {
  if (raw === undefined) return { ...defaults };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalidOption(path, 'an object like { attempts, backoff, delay, maxDelay, jitter }', raw);
  }
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!RETRY_KEYS.includes(key)) {
      throw invalidOption(`${path}.${key}`, `one of the known retry options (${RETRY_KEYS.join(', ')})`, input[key]);
    }
  }
  const own = (key: string): unknown => (Object.hasOwn(input, key) ? input[key] : undefined);

  let attempts = defaults.attempts;
  const rawAttempts = own('attempts');
  if (rawAttempts !== undefined) {
    if (typeof rawAttempts !== 'number' || !Number.isSafeInteger(rawAttempts) || rawAttempts < 1) {
      throw invalidOption(`${path}.attempts`, 'a positive integer', rawAttempts);
    }
    attempts = rawAttempts;
  }

  let backoff = defaults.backoff;
  const rawBackoff = own('backoff');
  if (rawBackoff !== undefined) {
    if (!(BACKOFF_KINDS as readonly unknown[]).includes(rawBackoff)) {
      throw invalidOption(`${path}.backoff`, `one of ${BACKOFF_KINDS.map((k) => `'${k}'`).join(', ')}`, rawBackoff);
    }
    backoff = rawBackoff as BackoffKind;
  }

  const rawDelay = own('delay');
  const delayMs = rawDelay === undefined ? defaults.delayMs : parseDuration(rawDelay, `${path}.delay`);

  const rawMaxDelay = own('maxDelay');
  let maxDelayMs: number;
  if (rawMaxDelay === undefined) {
    // An explicit delay above the default cap raises the cap rather than being silently cut.
    maxDelayMs = Math.max(defaults.maxDelayMs, delayMs);
  } else {
    maxDelayMs = parseDuration(rawMaxDelay, `${path}.maxDelay`);
    if (maxDelayMs < delayMs) {
      throw invalidOption(`${path}.maxDelay`, `a duration of at least \`${path}.delay\` (${delayMs} ms)`, rawMaxDelay);
    }
  }

  let jitter = defaults.jitter;
  const rawJitter = own('jitter');
  if (rawJitter !== undefined) {
    if (typeof rawJitter !== 'number' || !Number.isFinite(rawJitter) || rawJitter < 0 || rawJitter > 1) {
      throw invalidOption(`${path}.jitter`, 'a number from 0 to 1', rawJitter);
    }
    jitter = rawJitter;
  }

  return { attempts, backoff, delayMs, maxDelayMs, jitter };
}
