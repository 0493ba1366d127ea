/**
 * The HTTP API's app factory: builds a fastify instance over a runtime and does NOT listen (tests inject or
 * listen on port 0; `startServer` in listen.ts binds it for real).
 *
 * Order of a request:
 *   1. host guard — without a token, the `Host` header must name this machine (a DNS-rebinding page cannot
 *      reach a loopback API through its own domain);
 *   2. origin guard — a state-changing request sent by a page of another origin is refused (CSRF);
 *   3. bearer token — when one is set, every route except the dashboard page and its assets needs it;
 *   4. JSON body (size-limited, parsed by fastify's prototype-poisoning-safe parser) and schema validation
 *      (unknown properties are refused, not dropped; no type coercion);
 *   5. the route, which calls the runtime (which validates again).
 * Every error leaves as `{ error: { code, message, details? } }` (errors.ts), also the router's refusals of a
 * URL it cannot read, which come before step 1 (`frameworkErrors`). Closing the server sends each open event
 * stream a `shutdown` event before ending it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, invalidOption } from '../errors.ts';
import { lazyRequire } from '../lazy-require.ts';
import { plainObject, positiveInteger } from '../options.ts';
import type { Runtime } from '../runtime.ts';
import { parseSize } from '../units.ts';
import { createAdmission, type AdmissionOptions } from './admission.ts';
import { createAuthHook, isLoopbackHost, validateToken } from './auth.ts';
import { errorBody, MAX_PARAM_LENGTH, toHttpError } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerMaintenanceRoutes } from './routes/maintenance.ts';
import { registerQueueRoutes } from './routes/queues.ts';
import { registerScheduleRoutes } from './routes/schedules.ts';
import { registerSystemRoutes } from './routes/system.ts';
import { registerTaskRoutes, type RouteContext } from './routes/tasks.ts';
import { SseHub } from './sse.ts';

export interface ServerOptions {
  /** Bearer token every API request must carry. @default none: no token is asked for */
  token?: string;
  /** The address the server will be bound to; without a token, `Host` headers must name it or loopback. @default '127.0.0.1' */
  host?: string;
  /** Largest request body, in bytes or as `'1MB'`. @default '1MB' */
  bodyLimit?: number | string;
  /** fastify's request logging (pino) to stdout. @default false */
  logger?: boolean;
  /** Interval of SSE heartbeat comments. @default 15000 */
  heartbeatMs?: number;
  /** Expose prom-client's process metrics on /metrics. @default true */
  processMetrics?: boolean;
  /** Due work waiting this long with no task started or finished makes /api/health answer 503. @default 300000 */
  stallMs?: number;
  /** Resource-aware admission: pause intake while the health check is in error. @default off */
  admission?: AdmissionOptions;
}

/** The keys of `ServerOptions`; anything else is a mistake, refused as the config's `http` block refuses one. */
export const SERVER_OPTION_KEYS: ReadonlySet<string> = new Set(['token', 'host', 'bodyLimit', 'logger', 'heartbeatMs', 'processMetrics', 'stallMs', 'admission']);
/** The longest timer Node keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The `reason` of the `shutdown` event open event streams get when the server closes. */
export const SERVER_CLOSING = 'the server is shutting down; reconnect later';
/** fastify, loaded by the first server: a runtime that serves no HTTP never loads it (lazy-require.ts). */
const loadFastify = lazyRequire<typeof import('fastify')>('fastify');

/** Builds the app (why: a factory that does not listen lets tests and embedders choose how it is served). */
export function createServer(rt: Runtime, options: ServerOptions = {}): FastifyInstance {
  checkServerOptions(options);
  const token = options.token === undefined ? undefined : validateToken(options.token, 'token');
  const host = options.host ?? '127.0.0.1';
  const bodyLimit = parseSize(options.bodyLimit ?? '1MB', 'bodyLimit');
  const app = loadFastify().default({
    logger: options.logger ?? false,
    bodyLimit,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router refuses a path it cannot decode (`%zz`) or a segment over maxParamLength before any hook or
    // the error handler runs; without this its answer would be fastify's own shape, not troupe's (why: clients
    // branch on `error.code`). No route matched, so there is no schema to serialise by: the body is sent as text.
    frameworkErrors: (error, _request, reply) => {
      const { status, body } = toHttpError(error);
      void (reply as FastifyReply).code(status).type('application/json; charset=utf-8').header('x-content-type-options', 'nosniff').send(JSON.stringify(body));
    },
  });
  // fastify parses text/plain bodies by default: a JSON body sent as text would reach the schema as a string and
  // be refused as "must be object". Without the parser it is a 415 like any other type that is not JSON.
  app.removeContentTypeParser('text/plain');
  const hub = new SseHub();
  const metrics = createMetrics(rt, { processMetrics: options.processMetrics ?? true, sseClients: () => hub.size });
  const ctx: RouteContext = { rt, hub, sse: { clock: rt.options.clock, heartbeatMs: options.heartbeatMs ?? 15_000 } };
  const admission = options.admission ? createAdmission(rt, options.admission) : undefined;

  app.setErrorHandler((error, request, reply) => {
    const { status, body } = toHttpError(error);
    if (status === 500) request.log.error({ err: error }, 'request failed');
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(ErrorCodes.NOT_FOUND, `No route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`));
  });

  if (token === undefined) app.addHook('onRequest', hostGuard(host));
  app.addHook('onRequest', originGuard);
  if (token !== undefined) app.addHook('onRequest', createAuthHook(token));
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    return payload;
  });

  registerTaskRoutes(app, ctx);
  registerScheduleRoutes(app, ctx);
  registerQueueRoutes(app, ctx);
  registerMaintenanceRoutes(app, ctx);
  registerSystemRoutes(app, ctx, { metrics, ...(options.stallMs !== undefined ? { stallMs: options.stallMs } : {}) });
  registerDashboardRoutes(app);

  // Before the listener stops: every open stream is told why it ends (a `shutdown` event), then closed, since
  // an open stream would hold `close()` and a silent close looks like a network cut to the client.
  app.addHook('preClose', async () => {
    hub.closeAll(SERVER_CLOSING);
  });
  app.addHook('onClose', async () => {
    admission?.stop();
    metrics.close();
  });
  return app;
}

/**
 * Refuses unknown keys and values of the wrong type before anything is built (why: a misspelt or mistyped option
 * would otherwise be dropped without a word). `token` and `bodyLimit` are checked where they are read.
 */
/**
 * Checks every server option (why: `troupe serve` checks the config's `http` block before it starts the runtime,
 * so a mistake there changes nothing). `path` prefixes the names in a mistake's message (`http` for the config).
 */
export function checkServerOptions(options: ServerOptions, path = ''): void {
  const name = (key: string) => (path === '' ? key : `${path}.${key}`);
  const o = plainObject(options, path, SERVER_OPTION_KEYS);
  if (o.token !== undefined) validateToken(o.token, name('token'));
  if (o.host !== undefined && typeof o.host !== 'string') throw invalidOption(name('host'), 'a host name or IP address', o.host);
  if (o.bodyLimit !== undefined) parseSize(o.bodyLimit as number | string, name('bodyLimit'));
  for (const key of ['logger', 'processMetrics']) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidOption(name(key), 'a boolean', o[key]);
  }
  if (o.heartbeatMs !== undefined) positiveInteger(o.heartbeatMs, name('heartbeatMs'), { max: MAX_TIMER_MS });
  if (o.stallMs !== undefined) positiveInteger(o.stallMs, name('stallMs'));
  if (o.admission !== undefined) {
    const admission = plainObject(o.admission, name('admission'), new Set(['intervalMs']));
    positiveInteger(admission.intervalMs, name('admission.intervalMs'), { min: 100 });
  }
}

/** Without a token, only requests addressed to this machine (or the configured host) are served. */
function hostGuard(boundHost: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const bound = boundHost.toLowerCase();
  return async (request, reply) => {
    const header = request.headers.host;
    const name = typeof header === 'string' ? hostnameOf(header) : '';
    if (name && (isLoopbackHost(name) || name === bound)) return;
    await reply.code(403).send(errorBody(ErrorCodes.UNAUTHORIZED, 'This server answers only requests addressed to its own host; set a token to serve other names'));
  };
}

/** A browser page of another origin may not change anything (it cannot read answers anyway: no CORS). */
async function originGuard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (SAFE_METHODS.has(request.method)) return;
  const site = request.headers['sec-fetch-site'];
  const origin = request.headers.origin;
  let crossSite = site === 'cross-site';
  if (!crossSite && typeof origin === 'string' && origin !== 'null') {
    try {
      crossSite = new URL(origin).host.toLowerCase() !== String(request.headers.host ?? '').toLowerCase();
    } catch {
      crossSite = true;
    }
  } else if (origin === 'null') crossSite = true;
  if (!crossSite) return;
  await reply.code(403).send(errorBody(ErrorCodes.UNAUTHORIZED, 'Cross-origin requests may not change anything here'));
}

function hostnameOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}
