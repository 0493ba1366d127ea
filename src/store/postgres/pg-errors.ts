/**
 * Driver errors become coded troupe errors. A lost or refused connection is `STORE_UNAVAILABLE` (the caller
 * may retry once the pool has reconnected); anything else the database says is `STORE`. The driver's error is
 * always kept as `cause`.
 */
import { ErrorCodes, TroupeError, isTroupeError } from '../../errors.ts';

/** SQLSTATE classes that mean "the server is not reachable or not accepting work right now". */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-3]|53300)/;

/** Node socket error codes that mean the same. */
const UNAVAILABLE_SYSCALL = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN',
]);

/** pg raises these without a code; its message is the only signal it gives. */
const UNAVAILABLE_MESSAGE = /connection terminated|terminating connection|not queryable|timeout exceeded when trying to connect|connection timeout|server closed the connection/i;

/** True when `error` says the database could not be reached (as opposed to rejecting a statement). */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (UNAVAILABLE_SYSCALL.has(e.code)) return true;
    if (/^[0-9A-Z]{5}$/.test(e.code)) return UNAVAILABLE_SQLSTATE.test(e.code);
  }
  if (Array.isArray(e.errors) && e.errors.some(isConnectionError)) return true; // AggregateError of a dual-stack connect
  return typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message);
}

/**
 * True when PostgreSQL aborted the statement (and its transaction) to break a deadlock (`40P01`) or a
 * serialization conflict (`40001`): nothing it did was kept, and running it again is the documented remedy.
 */
export function isAbortedToRetry(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/** Wraps whatever the driver threw in a `TroupeError` with the right code, keeping the original as cause. */
export function toStoreError(error: unknown, operation: string): TroupeError {
  if (isTroupeError(error)) return error;
  const message = typeof (error as { message?: unknown })?.message === 'string' ? (error as Error).message : String(error);
  if (isConnectionError(error)) {
    return new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `PostgreSQL is unavailable (${operation}): ${message}`, { cause: error });
  }
  const code = (error as { code?: unknown })?.code;
  return new TroupeError(ErrorCodes.STORE, `PostgreSQL ${operation} failed: ${message}`, {
    cause: error,
    details: typeof code === 'string' ? { sqlstate: code } : undefined,
  });
}
