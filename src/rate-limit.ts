/**
 * The `rateLimit` option of a task definition: at most `max` starts per `per` window, for the whole name or for
 * each group of it, held in the store (so across nodes on PostgreSQL). See src/store/claim-gate.ts for the
 * counting and docs/features.md for examples.
 */
import { invalidOption } from './errors.ts';
import { plainObject, positiveInteger } from './options.ts';
import type { RateLimit } from './store/store.ts';
import { parseDuration, type Duration } from './units.ts';

/** Definition option `rateLimit`. */
export interface RateLimitOptions {
  /** Starts allowed per window (a positive integer). */
  max: number;
  /** The window: `'1s'`, `'1m'`, `500`, … */
  per: Duration;
  /** `name`: one window for all tasks of the name; `group`: one per group key. @default 'name' */
  by?: 'name' | 'group';
}

const KEYS = new Set(['max', 'per', 'by']);

/** Why: validate at registration, so a claim never meets a malformed limit. */
export function resolveRateLimit(value: unknown, path: string): RateLimit {
  const o = plainObject(value, path, KEYS);
  const max = positiveInteger(o.max, `${path}.max`);
  const perMs = parseDuration(o.per, `${path}.per`, { positive: true });
  const by = o.by ?? 'name';
  if (by !== 'name' && by !== 'group') throw invalidOption(`${path}.by`, "'name' or 'group'", o.by);
  return { max, perMs, by };
}
