/**
 * Periodic slots: when a schedule fires. Cron expressions are parsed and walked by croner; `every` schedules are
 * aligned to multiples of their interval since the epoch.
 *
 * Every function here is pure in its arguments (never `Date.now()`), so every node of a cluster computes the same
 * slots for the same schedule, and the store can make a slot unique. Catch-up after downtime uses `latestSlot`:
 * run the most recent missed slot once, never every missed one.
 */
import type { Cron } from 'croner';
import { describeValue, ErrorCodes, TroupeError } from '../errors.ts';
import { lazyRequire } from '../lazy-require.ts';
import { parseDuration } from '../units.ts';

/** A validated schedule: exactly one of `cron` and `everyMs`. A `ScheduleRecord` fits this shape. */
export interface ScheduleSpec {
  /** A 5-field (minute precision) or 6-field (leading seconds) cron expression, or a nickname like `@daily`. */
  cron?: string;
  /** Interval in milliseconds (≥ 1000); slots are multiples of it since 1970-01-01T00:00:00Z. */
  everyMs?: number;
  /** IANA time zone the cron expression is read in. @default 'UTC' when omitted */
  timezone?: string;
}

/** The shortest `every` accepted. */
export const MIN_EVERY_MS = 1000;

const SPEC_KEYS = ['cron', 'every', 'timezone'] as const;
const EXPECTED_OBJECT = "an object with `cron` or `every` (e.g. { cron: '0 3 * * *' } or { every: '15m' })";
const EXPECTED_EVERY = "a duration of at least 1 second and at most 100 years (milliseconds or a string like '15m')";
const CACHE_LIMIT = 256;
const UTC_ZONES: ReadonlySet<string> = new Set(['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT']);
const compiled = new Map<string, Cron>();
/** croner, loaded at the first cron expression: a runtime without cron schedules never loads it (lazy-require.ts). */
const loadCroner = lazyRequire<typeof import('croner')>('croner');

/**
 * Validates the timing part of a user's schedule (`{ cron } | { every }`, plus `timezone`), so the scheduler and
 * the stores only ever see a `ScheduleSpec` whose slots can be computed. Other keys (`id`, `overlap`…) are left
 * to the caller.
 */
export function validateScheduleSpec(raw: unknown, path: string): ScheduleSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalidSchedule(path, EXPECTED_OBJECT, raw);
  }
  const input = raw as Record<string, unknown>;
  const [cron, every, timezone] = SPEC_KEYS.map((k) => (Object.hasOwn(input, k) ? input[k] : undefined));
  if ((cron === undefined) === (every === undefined)) {
    throw invalidSchedule(path, 'an object with exactly one of `cron` and `every`', raw);
  }
  if (every !== undefined) {
    if (timezone !== undefined) {
      const expected = 'absent when `every` is used (intervals are counted from the epoch)';
      throw invalidSchedule(`${path}.timezone`, expected, timezone);
    }
    let everyMs: number;
    try {
      everyMs = parseDuration(every, `${path}.every`);
    } catch (error) {
      throw invalidSchedule(`${path}.every`, EXPECTED_EVERY, every, error);
    }
    if (everyMs < MIN_EVERY_MS) {
      throw invalidSchedule(`${path}.every`, EXPECTED_EVERY, every);
    }
    return { everyMs };
  }
  if (typeof cron !== 'string' || cron.trim() === '') {
    throw invalidSchedule(`${path}.cron`, 'a cron expression with 5 or 6 fields', cron);
  }
  let zone: string | undefined;
  if (timezone !== undefined) {
    if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
      throw invalidSchedule(`${path}.timezone`, "an IANA time zone such as 'Europe/Prague' or 'UTC'", timezone);
    }
    zone = timezone;
  }
  const expression = cron.trim();
  let job: Cron;
  try {
    job = compile(expression, zone);
  } catch (error) {
    throw invalidSchedule(`${path}.cron`, 'a cron expression with 5 or 6 fields', cron, error);
  }
  // A valid pattern that matches no date (`0 0 30 2 *`) would never fire; a 5/6-field pattern repeats within
  // 28 years, so one look from the epoch decides it.
  if (job.nextRun(new Date(0)) === null) {
    throw invalidSchedule(`${path}.cron`, 'a cron expression that matches at least one date', cron);
  }
  return zone === undefined ? { cron: expression } : { cron: expression, timezone: zone };
}

/** The first slot strictly after `after` (epoch ms), for arming the next timer. */
export function nextSlot(spec: ScheduleSpec, after: number): number | undefined {
  if (spec.everyMs !== undefined) {
    return (Math.floor(after / spec.everyMs) + 1) * spec.everyMs;
  }
  if (spec.cron === undefined) return undefined;
  const next = compile(spec.cron, spec.timezone).nextRun(new Date(after));
  return next === null ? undefined : next.getTime();
}

/**
 * The latest slot at or before `atOrBefore` (and at or after `notBefore` when given): after downtime the
 * scheduler runs this one slot instead of every missed one.
 */
export function latestSlot(spec: ScheduleSpec, atOrBefore: number, notBefore?: number): number | undefined {
  let slot: number | undefined;
  if (spec.everyMs !== undefined) {
    slot = Math.floor(atOrBefore / spec.everyMs) * spec.everyMs;
  } else if (spec.cron !== undefined) {
    // croner's previousRuns returns runs strictly before the reference; +1 ms makes the bound inclusive.
    const [previous] = compile(spec.cron, spec.timezone).previousRuns(1, new Date(atOrBefore + 1));
    slot = previous?.getTime();
  }
  if (slot === undefined || (notBefore !== undefined && slot < notBefore)) return undefined;
  return slot;
}

/** Compiles (and memoises) a croner job; croner schedules nothing when no function is given. */
function compile(expression: string, timezone: string | undefined): Cron {
  const key = `${timezone ?? ''}\u0000${expression}`;
  let job = compiled.get(key);
  if (job === undefined) {
    // UTC as a fixed offset skips croner's Intl time-zone conversion (~15× faster, same slots).
    const zone = timezone === undefined || UTC_ZONES.has(timezone) ? { utcOffset: 0 } : { timezone };
    const { Cron } = loadCroner();
    job = new Cron(expression, { mode: '5-or-6-parts', paused: true, ...zone });
    if (compiled.size >= CACHE_LIMIT) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, job);
  }
  return job;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function invalidSchedule(path: string, expected: string, got: unknown, cause?: unknown): TroupeError {
  return new TroupeError(
    ErrorCodes.INVALID_SCHEDULE,
    `Expected \`${path}\` to be ${expected}, got ${describeValue(got)}`,
    cause === undefined ? {} : { cause },
  );
}
