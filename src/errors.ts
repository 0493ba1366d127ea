/**
 * Errors: one base class, a closed catalogue of codes, the reason in `cause`, and a realm-safe brand.
 *
 * Errors cross worker threads, subprocess boundaries and the store, so `instanceof` is not enough:
 * `isTroupeError()` checks a `Symbol.for` brand, and `serializeError`/`deserializeError` round-trip
 * the code, name, message, stack and cause chain as plain JSON.
 */

const BRAND = Symbol.for('troupe.error');

/** Every code a caller may branch on. Tests assert on these, never on message text. */
export const ErrorCodes = {
  INVALID_OPTION: 'TROUPE_ERR_INVALID_OPTION',
  INVALID_INPUT: 'TROUPE_ERR_INVALID_INPUT',
  UNKNOWN_TASK: 'TROUPE_ERR_UNKNOWN_TASK',
  DUPLICATE_TASK: 'TROUPE_ERR_DUPLICATE_TASK',
  NOT_FOUND: 'TROUPE_ERR_NOT_FOUND',
  CONFLICT: 'TROUPE_ERR_CONFLICT',
  TIMEOUT: 'TROUPE_ERR_TIMEOUT',
  CANCELLED: 'TROUPE_ERR_CANCELLED',
  TASK_FAILED: 'TROUPE_ERR_TASK_FAILED',
  COMMAND_FAILED: 'TROUPE_ERR_COMMAND_FAILED',
  WORKER_CRASHED: 'TROUPE_ERR_WORKER_CRASHED',
  RESOURCE_LIMIT: 'TROUPE_ERR_RESOURCE_LIMIT',
  LEASE_EXPIRED: 'TROUPE_ERR_LEASE_EXPIRED',
  HANDLER_LOAD: 'TROUPE_ERR_HANDLER_LOAD',
  INVALID_SCHEDULE: 'TROUPE_ERR_INVALID_SCHEDULE',
  CLOSED: 'TROUPE_ERR_CLOSED',
  ASK_TIMEOUT: 'TROUPE_ERR_ASK_TIMEOUT',
  UNKNOWN_ACTOR: 'TROUPE_ERR_UNKNOWN_ACTOR',
  ESCALATED: 'TROUPE_ERR_ESCALATED',
  STORE: 'TROUPE_ERR_STORE',
  STORE_CORRUPT: 'TROUPE_ERR_STORE_CORRUPT',
  STORE_VERSION: 'TROUPE_ERR_STORE_VERSION',
  STORE_UNAVAILABLE: 'TROUPE_ERR_STORE_UNAVAILABLE',
  POOL_EXHAUSTED: 'TROUPE_ERR_POOL_EXHAUSTED',
  PAUSED: 'TROUPE_ERR_PAUSED',
  UNAUTHORIZED: 'TROUPE_ERR_UNAUTHORIZED',
  INTERNAL: 'TROUPE_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

export interface TroupeErrorOptions {
  cause?: unknown;
  /** Extra structured facts (exit code, signal, limit…), kept through serialization. */
  details?: Record<string, unknown>;
}

/** The one base class of every error troupe raises or records. */
export class TroupeError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  declare readonly [BRAND]: true;

  constructor(code: ErrorCode, message: string, options: TroupeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TroupeError';
    this.code = code;
    this.details = options.details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  toJSON(): SerializedError {
    return serializeError(this);
  }
}

/** Thrown by task code to say "this will never succeed": the task is dead-lettered at once. */
export class PermanentError extends TroupeError {
  readonly permanent = true;
  constructor(message: string, options: TroupeErrorOptions = {}) {
    super(ErrorCodes.TASK_FAILED, message, options);
    this.name = 'PermanentError';
  }
}

/** Thrown by task code to ask for another attempt even if the definition would not retry this error. */
export class RetryableError extends TroupeError {
  readonly retryable = true;
  constructor(message: string, options: TroupeErrorOptions = {}) {
    super(ErrorCodes.TASK_FAILED, message, options);
    this.name = 'RetryableError';
  }
}

/** Thrown by task code to run again at `until` (epoch ms or Date) without counting a failed attempt's backoff. */
export class DelayError extends TroupeError {
  readonly until: number;
  constructor(until: number | Date, message = 'delayed by the task') {
    const at = typeof until === 'number' ? until : until.getTime();
    super(ErrorCodes.TASK_FAILED, message, { details: { until: at } });
    this.name = 'DelayError';
    this.until = at;
  }
}

/** Realm-safe check: true for any troupe error, also one rebuilt from another thread or the store. */
export function isTroupeError(value: unknown): value is TroupeError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** Plain-JSON form of an error, as stored and as sent over HTTP. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  details?: Record<string, unknown>;
  cause?: SerializedError;
  /** What task code asked for: `permanent`, `retryable` or `delay`. */
  hint?: 'permanent' | 'retryable' | 'delay';
}

/**
 * Turns anything thrown into plain JSON, keeping code, details and the cause chain (depth-limited). Never throws:
 * a value that cannot be read (an object without a prototype, a getter or a Proxy trap that throws) becomes an
 * error saying so, instead of failing whoever reports it (a worker thread, the executor).
 */
export function serializeError(error: unknown, depth = 0): SerializedError {
  try {
    return serializeReadable(error, depth);
  } catch (problem) {
    let why: string;
    try {
      why = problem instanceof Error ? problem.message : safeString(problem);
    } catch {
      why = 'reading it threw';
    }
    return { name: 'Error', message: `The task threw a value that cannot be read (${why})` };
  }
}

function serializeReadable(error: unknown, depth: number): SerializedError {
  if (typeof error !== 'object' || error === null) {
    return { name: 'Error', message: safeString(error) };
  }
  const e = error as Record<string, unknown> & { message?: unknown; name?: unknown; stack?: unknown };
  const out: SerializedError = {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : safeString(error),
  };
  if (typeof e.code === 'string') out.code = e.code;
  if (typeof e.stack === 'string') out.stack = e.stack;
  if (e.details && typeof e.details === 'object') out.details = e.details as Record<string, unknown>;
  if (e.permanent === true || e.hint === 'permanent') out.hint = 'permanent';
  else if (e.retryable === true || e.hint === 'retryable') out.hint = 'retryable';
  else if (typeof e.until === 'number' || e.hint === 'delay') {
    out.hint = 'delay';
    out.details = { ...(out.details ?? {}), until: e.until ?? (out.details?.until as number) };
  }
  if (e.cause !== undefined && depth < 4) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

/** Rebuilds an error from its JSON form: a `TroupeError` when it carries a known code, else a plain `Error`. */
export function deserializeError(data: SerializedError): Error {
  const cause = data.cause ? deserializeError(data.cause) : undefined;
  let error: Error;
  if (data.code && KNOWN_CODES.has(data.code)) {
    error = new TroupeError(data.code as ErrorCode, data.message, { cause, details: data.details });
  } else {
    error = new Error(data.message, cause === undefined ? undefined : { cause });
    if (data.code) (error as Error & { code?: string }).code = data.code;
  }
  error.name = data.name;
  if (data.stack) error.stack = data.stack;
  if (data.hint === 'permanent') Object.defineProperty(error, 'permanent', { value: true });
  if (data.hint === 'retryable') Object.defineProperty(error, 'retryable', { value: true });
  if (data.hint === 'delay') Object.defineProperty(error, 'until', { value: data.details?.until });
  return error;
}

/** Shorthand used across the kernel: ``Expected `x` to be …, got `v` (type)``. */
export function invalidOption(path: string, expected: string, got: unknown): TroupeError {
  return new TroupeError(
    ErrorCodes.INVALID_OPTION,
    `Expected \`${path}\` to be ${expected}, got ${describeValue(got)}`,
  );
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Renders a value the way execa and p-queue do in their messages: `` `0` (number) ``. */
export function describeValue(value: unknown): string {
  if (value === null) return '`null`';
  if (value === undefined) return '`undefined`';
  const type = Array.isArray(value) ? 'array' : typeof value;
  let text: string | undefined;
  try {
    // Numbers and symbols by String(): JSON would print NaN and Infinity as `null`, and a symbol as nothing.
    text = typeof value === 'string' ? value : typeof value === 'function' ? '[function]'
      : typeof value === 'number' || typeof value === 'symbol' ? String(value) : JSON.stringify(value);
  } catch {
    text = undefined;
  }
  text ??= safeString(value);
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  return `\`${text}\` (${type})`;
}
