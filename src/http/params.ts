/**
 * Reading request values the schemas let through. Query strings arrive as text, so the schemas only bound
 * their shape (digits, length) and these helpers turn them into numbers and dates with a coded error naming
 * the parameter; bodies are JSON and are checked by type. Ids of the wrong shape are "not found", never a
 * lookup.
 */
import { ErrorCodes, invalidOption, TroupeError } from '../errors.ts';
import { isTaskId, type TaskId } from '../ids.ts';
import type { EnqueueOptions } from '../runtime.ts';
import { isTaskState, type TaskState } from '../task.ts';

/** Throws NOT_FOUND unless `id` has the shape of a task id (why: junk ids never reach the store). */
export function requireTaskId(id: unknown): TaskId {
  if (!isTaskId(id)) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${String(id).slice(0, 64)}\``);
  return id;
}

const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Throws NOT_FOUND unless `id` has the shape of a schedule id. */
export function requireScheduleId(id: unknown): string {
  if (typeof id !== 'string' || !SCHEDULE_ID.test(id)) throw new TroupeError(ErrorCodes.NOT_FOUND, `No schedule \`${String(id).slice(0, 64)}\``);
  return id;
}

/** Reads an optional integer query parameter in [min, max]. */
export function readIntParam(value: string | undefined, path: string, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = /^-?\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalidOption(path, `an integer from ${min} to ${max}`, value);
  return n;
}

/** Reads a query flag: 1/true on, 0/false/empty off, absent undefined; anything else is refused naming it. */
export function readFlag(value: string | undefined, path: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false' || value === '') return false;
  throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`${path}\` to be 1 or 0 (or true or false)`);
}
/**
 * An ISO-8601 date (`2026-11-23`, midnight UTC) or date-time with its zone (`2026-11-23T08:00:00Z`,
 * `…T09:00:00.250+01:00`; a space may stand for the `T`). A date-time without a zone is refused: `Date.parse`
 * would read it in the server's time zone, so the same request would mean another instant on another host (and a
 * local time that a DST change skips would be moved silently).
 */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** Epoch ms of an ISO date or zoned date-time; `'no zone'` for a date-time without one; undefined when it is not
 * one, or names no real day or time. */
function parseIsoTime(value: string): number | 'no zone' | undefined {
  const m = ISO_TIME.exec(value);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (h !== undefined && zone === undefined) return 'no zone';
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
  if (day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMin = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, ms);
  return utc.getTime() - offsetMin * 60_000;
}

/** Reads a time: epoch milliseconds (number or digits), an ISO-8601 date, or an ISO-8601 date-time with its zone. */
export function readTime(value: unknown, path: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw invalidOption(path, 'epoch milliseconds or an ISO date', value);
    return value;
  }
  if (typeof value === 'string') {
    if (/^\d{1,16}$/.test(value)) return Number(value);
    const t = parseIsoTime(value);
    if (typeof t === 'number' && t >= 0) return t;
    if (t === 'no zone') {
      throw invalidOption(path, 'an ISO date-time with its zone (`Z` or an offset such as `+01:00`; without one it would be read in the server\'s time zone), or epoch milliseconds', value);
    }
  }
  throw invalidOption(path, 'epoch milliseconds, an ISO date (`2026-11-23`) or an ISO date-time with its zone (`2026-11-23T08:00:00Z`)', value);
}

/** Reads `state=failed` or `state=failed,timed_out`. */
export function readStates(value: string | undefined): TaskState | TaskState[] | undefined {
  if (value === undefined || value === '') return undefined;
  const parts = value.split(',').map((s) => s.trim());
  for (const p of parts) if (!isTaskState(p)) throw invalidOption('state', 'a task state (scheduled, queued, running, retrying, succeeded, failed, cancelled, timed_out) or a comma-separated list of them', p);
  return parts.length === 1 ? (parts[0] as TaskState) : (parts as TaskState[]);
}

/** The fields of one enqueue request (`POST /api/tasks` and each bulk item). */
export interface EnqueueBody {
  name: string;
  input?: unknown;
  priority?: number;
  weight?: number;
  delay?: number | string;
  runAt?: number | string;
  key?: string;
  timeout?: number | string;
  group?: string;
  dedup?: { key: string; mode: 'throttle' | 'debounce'; window: number | string };
  /** This task's retry policy (checked by the runtime, as `rt.enqueue`'s `retry` option). */
  retry?: Record<string, unknown>;
}

/** Maps an enqueue body onto the runtime's options (which validates them again, with the same path names). */
export function toEnqueueOptions(body: EnqueueBody, path = 'body'): EnqueueOptions {
  const options: EnqueueOptions = {};
  if (body.priority !== undefined) options.priority = body.priority;
  if (body.weight !== undefined) options.weight = body.weight;
  if (body.delay !== undefined) options.delay = body.delay as EnqueueOptions['delay'];
  if (body.timeout !== undefined) options.timeout = body.timeout as EnqueueOptions['timeout'];
  if (body.key !== undefined) options.key = body.key;
  if (body.runAt !== undefined) options.runAt = readTime(body.runAt, `${path}.runAt`);
  if (body.group !== undefined) options.group = body.group;
  if (body.dedup !== undefined) options.dedup = body.dedup as EnqueueOptions['dedup'];
  if (body.retry !== undefined) options.retry = body.retry as EnqueueOptions['retry'];
  return options;
}

/** JSON schema of one enqueue request. */
export const ENQUEUE_ITEM_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    input: {},
    priority: { type: 'integer' },
    weight: { type: 'number' },
    delay: { type: ['integer', 'string'], maxLength: 32 },
    runAt: { type: ['integer', 'string'], maxLength: 40 },
    key: { type: 'string', minLength: 1, maxLength: 512 },
    timeout: { type: ['integer', 'string'], maxLength: 32 },
    group: { type: 'string', minLength: 1, maxLength: 256 },
    dedup: {
      type: 'object',
      additionalProperties: false,
      required: ['key', 'mode', 'window'],
      properties: {
        key: { type: 'string', minLength: 1, maxLength: 512 },
        mode: { type: 'string', enum: ['throttle', 'debounce'] },
        window: { type: ['integer', 'string'], maxLength: 32 },
      },
    },
    // Its fields are checked by the runtime (TROUPE_ERR_INVALID_OPTION, a 400 naming the field).
    retry: { type: 'object' },
  },
} as const;

/** A body that must be absent or `{}` (actions that take no arguments). An absent body is validated as null. */
export const EMPTY_BODY_SCHEMA = { type: ['object', 'null'], additionalProperties: false, maxProperties: 0 } as const;

/** Querystring schema helper: the named parameters, each a bounded string; nothing else. */
export function querySchema(props: Record<string, number>): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [name, maxLength] of Object.entries(props)) properties[name] = { type: 'string', maxLength };
  return { type: 'object', additionalProperties: false, properties };
}
