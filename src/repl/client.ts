/**
 * A small typed client for troupe's HTTP API, used by the CLI and the REPL: requests with a per-request deadline,
 * the bearer token, and one error rule — whatever goes wrong becomes a `TroupeError` whose message is one line
 * saying what happened and what to do (server not running, bad token, unknown task…). Output is followed through
 * the server-sent events of `GET /api/tasks/:id/output`.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { TaskAdvice } from '../advice/recommend.ts';
import type { TreeNode } from '../actor/actor.ts';
import { ErrorCodes, TroupeError, type ErrorCode, type SerializedError } from '../errors.ts';
import type { TaskView } from '../runtime.ts';
import type { ScheduleRecord } from '../store/store.ts';
import type { OutputLine, TaskState } from '../task.ts';
import { readSse, type SseEvent } from './sse.ts';

export const DEFAULT_URL = 'http://127.0.0.1:7420';

export interface ClientOptions {
  /** Base URL of a running `troupe serve`. @default 'http://127.0.0.1:7420' */
  url?: string;
  /** Bearer token, when the server asks for one. */
  token?: string;
  /** Deadline of one request (not of a followed stream). @default 30_000 */
  timeoutMs?: number;
}

export interface SubmitOptions {
  priority?: number;
  /** Milliseconds or a string like `'5m'`. */
  delay?: number | string;
  key?: string;
}

export interface ListQuery {
  state?: TaskState | string;
  name?: string;
  limit?: number;
  cursor?: string;
}

/** How a followed task ended (the stream's final `end` event). */
export interface FollowEnd {
  state: TaskState;
  result?: unknown;
  error?: SerializedError;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'timed out while connecting',
  UND_ERR_SOCKET: 'the connection closed unexpectedly',
};

/** Why: a bad `--url` must be a usage error before any request is tried. */
export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`--url\` to be an http(s) URL such as ${DEFAULT_URL}, got \`${url}\``);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`--url\` to be an http(s) URL such as ${DEFAULT_URL}, got \`${url}\``);
  }
  return parsed.href.replace(/\/+$/, '');
}

export class TroupeClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: ClientOptions = {}) {
    this.url = normalizeUrl(options.url ?? DEFAULT_URL);
    this.#token = options.token || undefined;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Sends one request and returns its JSON body, or throws a one-line TroupeError. */
  async request<T>(
    method: 'GET' | 'POST',
    path: string,
    { body, query, okStatuses }: { body?: unknown; query?: Record<string, string | number | undefined>; okStatuses?: readonly number[] } = {},
  ): Promise<T> {
    const response = await this.#fetch(method, path, { body, query, accept: 'application/json', signal: AbortSignal.timeout(this.#timeoutMs), ...(okStatuses ? { okStatuses } : {}) });
    const text = await response.text();
    if (text.length === 0) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new TroupeError(ErrorCodes.INTERNAL, `${this.url} answered ${method} ${path} with something that is not JSON — is it a troupe server?`);
    }
  }

  /** Opens a server-sent event stream; it ends when the server ends it or `signal` aborts. */
  async *events(path: string, signal?: AbortSignal): AsyncGenerator<SseEvent> {
    const response = await this.#fetch('GET', path, { accept: 'text/event-stream', ...(signal ? { signal } : {}) });
    if (!response.body) return;
    try {
      yield* readSse(response.body);
    } catch (error) {
      if (signal?.aborted) return;
      throw this.#networkError(error);
    }
  }

  // ── routes ─────────────────────────────────────────────────────────────────────────────────────────────

  async enqueue(name: string, input?: unknown, options: SubmitOptions = {}): Promise<string> {
    const body: Record<string, unknown> = { name };
    if (input !== undefined) body.input = input;
    if (options.priority !== undefined) body.priority = options.priority;
    if (options.delay !== undefined) body.delay = options.delay;
    if (options.key !== undefined) body.key = options.key;
    return (await this.request<{ id: string }>('POST', '/api/tasks', { body })).id;
  }

  getTask(id: string): Promise<TaskView> {
    return this.request<TaskView>('GET', `/api/tasks/${encodeURIComponent(id)}`);
  }

  listTasks(query: ListQuery = {}): Promise<{ tasks: TaskView[]; nextCursor?: string }> {
    return this.request('GET', '/api/tasks', { query: { ...query } });
  }

  async cancel(id: string): Promise<boolean> {
    return (await this.request<{ cancelled: boolean }>('POST', `/api/tasks/${encodeURIComponent(id)}/cancel`)).cancelled === true;
  }

  retry(id: string): Promise<unknown> {
    return this.request('POST', `/api/tasks/${encodeURIComponent(id)}/retry`);
  }

  /** Every captured line, read in pages of `pageSize`. */
  async output(id: string, pageSize = 5000): Promise<OutputLine[]> {
    const all: OutputLine[] = [];
    let after: number | undefined;
    for (;;) {
      const body = await this.request<{ lines?: OutputLine[] }>('GET', `/api/tasks/${encodeURIComponent(id)}/output`, { query: { after, limit: pageSize } });
      const lines = body?.lines ?? [];
      all.push(...lines);
      const last = lines.findLast((l) => l.seq >= 0)?.seq;
      if (lines.length < pageSize || last === undefined) return all;
      after = last;
    }
  }

  taskTypes(): Promise<unknown> {
    return this.request('GET', '/api/task-types');
  }

  async schedules(): Promise<ScheduleRecord[]> {
    const body = await this.request<ScheduleRecord[] | { schedules?: ScheduleRecord[] }>('GET', '/api/schedules');
    return Array.isArray(body) ? body : (body?.schedules ?? []);
  }

  scheduleAction(id: string, action: 'pause' | 'resume' | 'trigger'): Promise<unknown> {
    return this.request('POST', `/api/schedules/${encodeURIComponent(id)}/${action}`);
  }

  queueAction(name: string, action: 'pause' | 'resume'): Promise<unknown> {
    return this.request('POST', `/api/queues/${encodeURIComponent(name)}/${action}`);
  }

  async maintenance(name: string, input?: unknown): Promise<string> {
    return (await this.request<{ id: string }>('POST', `/api/system/maintenance/${encodeURIComponent(name)}`, { body: input ?? {} })).id;
  }

  /** Recommendations for a registered task from its measured history (`GET /api/tasks/advice`). */
  advice(name: string): Promise<TaskAdvice> {
    return this.request('GET', '/api/tasks/advice', { query: { name } });
  }

  /** Liveness (and with `full` the health report); a 503 answer is an unhealthy status, not an error. */
  health(full = true): Promise<Record<string, unknown>> {
    return this.request('GET', '/api/health', { query: full ? { full: 1 } : {}, okStatuses: [503] });
  }

  actors(): Promise<TreeNode> {
    return this.request('GET', '/api/actors');
  }

  restartActor(address: string): Promise<unknown> {
    return this.request('POST', `/api/actors/${encodeURIComponent(address)}/restart`);
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────

  async #fetch(
    method: string,
    path: string,
    o: { body?: unknown; query?: Record<string, string | number | undefined>; accept: string; signal?: AbortSignal; okStatuses?: readonly number[] },
  ): Promise<Response> {
    const target = new URL(this.url + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined && v !== '') target.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: o.accept };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await send(target, { method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    } catch (error) {
      throw this.#networkError(error);
    }
    if (!response.ok && !o.okStatuses?.includes(response.status)) throw await this.#httpError(response, method, path);
    return response;
  }

  #networkError(error: unknown): TroupeError {
    const e = error as { name?: string; code?: string; cause?: { code?: string; message?: string }; message?: string };
    if (e?.name === 'TimeoutError') {
      return new TroupeError(ErrorCodes.TIMEOUT, `${this.url} did not answer within ${Math.round(this.#timeoutMs / 1000)} s — is the server overloaded or stuck?`, { cause: error });
    }
    if (e?.name === 'AbortError') return new TroupeError(ErrorCodes.CANCELLED, 'The request was stopped', { cause: error });
    const code = e?.cause?.code ?? e?.code;
    const reason = (code && NETWORK_REASONS[code]) ?? e?.cause?.message ?? e?.message ?? String(error);
    // CLOSED is the closest catalogue code for "nothing is serving there".
    return new TroupeError(ErrorCodes.CLOSED, `cannot reach ${this.url}: ${reason} — is \`troupe serve\` running? (set --url or TROUPE_URL)`, { cause: error, details: { url: this.url } });
  }

  async #httpError(response: Response, method: string, path: string): Promise<TroupeError> {
    let body: { error?: { code?: string; message?: string } } | undefined;
    try {
      body = (await response.json()) as typeof body;
    } catch {
      body = undefined;
    }
    if (response.status === 401) {
      const why = this.#token ? 'the token was refused' : 'it needs a token';
      return new TroupeError(ErrorCodes.UNAUTHORIZED, `${this.url} answered 401 Unauthorized: ${why} — pass --token or set TROUPE_TOKEN`, { details: { status: 401 } });
    }
    const code = body?.error?.code;
    const message = body?.error?.message;
    if (code && KNOWN_CODES.has(code) && message) return new TroupeError(code as ErrorCode, message, { details: { status: response.status } });
    if (response.status === 404) {
      return new TroupeError(ErrorCodes.NOT_FOUND, message ?? `${this.url} has no ${method} ${path.split('?')[0]} — is it a troupe server of the same version?`, { details: { status: 404 } });
    }
    return new TroupeError(ErrorCodes.INTERNAL, `${this.url} answered ${response.status} ${response.statusText}${message ? `: ${message}` : ''}`, { details: { status: response.status } });
  }
}

/** Statuses whose response has no body (a `Response` refuses one for them). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * One HTTP request over node:http(s), answered as a fetch `Response`. Not `fetch`: it refuses the Fetch spec's
 * "bad ports" (6000, 10080, 6665–6669…), which `troupe serve --port` accepts, so a client could not reach such a
 * server. An abort by a deadline (`AbortSignal.timeout`) rejects with the signal's TimeoutError, as fetch does.
 */
function send(url: URL, o: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }): Promise<Response> {
  return new Promise((resolve, reject) => {
    const signal = o.signal;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const headers = { ...o.headers, ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}) };
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: o.method, headers });
    const onAbort = () => request.destroy(signal?.reason instanceof Error ? signal.reason : new DOMException('The request was stopped', 'AbortError'));
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    request.on('response', (incoming) => {
      const status = incoming.statusCode ?? 500;
      const responseHeaders = new Headers();
      for (const [k, v] of Object.entries(incoming.headers)) {
        if (Array.isArray(v)) for (const one of v) responseHeaders.append(k, one);
        else if (v !== undefined) responseHeaders.set(k, v);
      }
      // A deadline also stops reading the body (a followed stream passes no deadline, only Ctrl-C's signal).
      incoming.on('close', () => signal?.removeEventListener('abort', onAbort));
      if (NULL_BODY.has(status)) incoming.resume();
      const body = NULL_BODY.has(status) ? null : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>);
      resolve(new Response(body, { status, statusText: incoming.statusMessage ?? '', headers: responseHeaders }));
    });
    request.end(o.body);
  });
}
