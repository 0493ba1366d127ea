/**
 * How errors leave the HTTP API: always `{ error: { code, message, details? } }` with a status that says what
 * the caller did wrong (4xx) or that the runtime cannot answer now (503). A troupe code maps to one status; a
 * fastify error (bad JSON, schema failure, body too large, a URL the router cannot read) is given the troupe code
 * of its kind; anything else is a 500 whose message says nothing about the server's insides (no stack, no paths).
 */
import { ErrorCodes, isTroupeError, type ErrorCode, type SerializedError } from '../errors.ts';

/** Longest path segment the router matches (`routerOptions.maxParamLength`); a longer one is a 404. */
export const MAX_PARAM_LENGTH = 300;

/** The JSON body of every error answer. */
export interface HttpErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.INVALID_INPUT]: 422,
  [ErrorCodes.INVALID_OPTION]: 400,
  [ErrorCodes.INVALID_SCHEDULE]: 400,
  [ErrorCodes.UNKNOWN_TASK]: 404,
  [ErrorCodes.NOT_FOUND]: 404,
  [ErrorCodes.UNKNOWN_ACTOR]: 404,
  [ErrorCodes.CONFLICT]: 409,
  [ErrorCodes.DUPLICATE_TASK]: 409,
  [ErrorCodes.CLOSED]: 503,
  [ErrorCodes.ESCALATED]: 503,
  [ErrorCodes.STORE_UNAVAILABLE]: 503,
  [ErrorCodes.UNAUTHORIZED]: 401,
  [ErrorCodes.RESOURCE_LIMIT]: 413,
};

/** The HTTP status of a troupe error code (why: one table, used by every route and the tests). */
export function statusOfCode(code: string): number {
  return STATUS[code as ErrorCode] ?? 500;
}

/** Builds an error body; `details` only when given. */
export function errorBody(code: string, message: string, details?: Record<string, unknown>): HttpErrorBody {
  return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
}

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: ReadonlyArray<{ instancePath?: string; message?: string; params?: unknown; keyword?: string }>;
  validationContext?: string;
}

/**
 * Turns anything a route threw into a status and body (why: the one place that decides what a client sees;
 * troupe codes are mapped, fastify's own errors are named in troupe terms, the rest becomes an opaque 500).
 */
export function toHttpError(error: unknown): { status: number; body: HttpErrorBody } {
  if (isTroupeError(error)) {
    const status = statusOfCode(error.code);
    // A coded failure inside the server keeps its code; its text (which may name files or hosts) stays here.
    if (status === 500) return { status, body: errorBody(error.code, 'The server failed to answer this request') };
    return { status, body: errorBody(error.code, error.message, publicDetails(error.details)) };
  }
  const e = (typeof error === 'object' && error !== null ? error : {}) as FastifyLikeError;
  if (Array.isArray(e.validation)) {
    const where = typeof e.validationContext === 'string' ? e.validationContext : 'request';
    const issues = e.validation.slice(0, 10).map((v) => ({ path: `${where}${v.instancePath ?? ''}`, message: v.message ?? 'is invalid', ...(v.keyword === 'additionalProperties' ? { params: v.params } : {}) }));
    const first = issues[0];
    return {
      status: 400,
      body: errorBody(ErrorCodes.INVALID_OPTION, first ? `Invalid ${first.path}: ${first.message}` : `Invalid ${where}`, { issues }),
    };
  }
  const code = typeof e.code === 'string' ? e.code : '';
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: errorBody(ErrorCodes.RESOURCE_LIMIT, 'The request body is larger than the server accepts') };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: errorBody(ErrorCodes.INVALID_OPTION, 'Send the request body as application/json') };
    // The router's own refusals (fastify's `frameworkErrors`), answered before any route or hook runs. The
    // path is not echoed: it is the caller's text, and may be long.
    case 'FST_ERR_BAD_URL':
      return { status: 400, body: errorBody(ErrorCodes.INVALID_OPTION, 'The URL path is not valid: a `%` must start a percent-encoded UTF-8 byte (`%2F`)') };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      // No id, name or address is this long, so nothing is there: the same 404 as any id of the wrong shape.
      return { status: 404, body: errorBody(ErrorCodes.NOT_FOUND, `Nothing here: a path segment is longer than ${MAX_PARAM_LENGTH} characters`) };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, body: errorBody(ErrorCodes.INVALID_OPTION, 'The request body is not valid JSON') };
    default:
      break;
  }
  if (error instanceof SyntaxError || code.startsWith('FST_ERR_CTP')) {
    return { status: 400, body: errorBody(ErrorCodes.INVALID_OPTION, 'The request body is not valid JSON') };
  }
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
  if (status !== 500) return { status, body: errorBody(ErrorCodes.INVALID_OPTION, typeof e.message === 'string' ? e.message.slice(0, 200) : 'Bad request') };
  return { status: 500, body: errorBody(ErrorCodes.INTERNAL, 'The server failed to answer this request') };
}

/** Keeps details that are plain data; drops anything that looks like a stack or a cause chain. */
function publicDetails(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (details === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(details)) {
    if (key === 'stack' || key === 'cause') continue;
    out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A task's recorded error without its stack (and its causes' stacks), as the API shows it. */
export function publicError(error: SerializedError, depth = 0): SerializedError {
  const { stack: _stack, cause, ...rest } = error;
  return { ...rest, ...(cause !== undefined && depth < 4 ? { cause: publicError(cause, depth + 1) } : {}) };
}
