/**
 * Binds the HTTP API: 127.0.0.1:7420 unless configured otherwise. Any address other than loopback needs a
 * bearer token (`http.token`, else `TROUPE_TOKEN`); without one the server refuses to start, so an API that
 * can run commands is never left open on a network by accident.
 */
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { HttpConfig } from '../config.ts';
import { ErrorCodes, invalidOption, TroupeError } from '../errors.ts';
import type { Runtime } from '../runtime.ts';
import { isLoopbackHost } from './auth.ts';
import { plainObject } from '../options.ts';
import { checkServerOptions, createServer, SERVER_OPTION_KEYS, type ServerOptions } from './server.ts';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7420;

export interface StartServerOptions extends HttpConfig, Omit<ServerOptions, 'token' | 'host' | 'bodyLimit'> {
  /** Read the token from here when `token` is not given. @default process.env */
  env?: Record<string, string | undefined>;
}

export interface StartedServer extends AsyncDisposable {
  readonly app: FastifyInstance;
  /** `http://host:port` as clients reach it. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Whether requests need the bearer token. */
  readonly authenticated: boolean;
  /** Ends open event streams and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** The keys `startServer` takes: the config's `http` block, `createServer`'s options and `env`. */
const START_OPTION_KEYS: ReadonlySet<string> = new Set([...SERVER_OPTION_KEYS, 'port', 'env']);

/**
 * Validates the listener settings (an unknown key is refused too) and refuses a non-loopback bind without a token
 * (why: safe by default). The other options are checked by `createServer`, before it builds anything.
 */
export function resolveListen(config: StartServerOptions = {}): { host: string; port: number; token: string | undefined } {
  plainObject(config, '', START_OPTION_KEYS);
  if (config.env !== undefined) plainObject(config.env, 'env');
  const raw = config.host ?? DEFAULT_HOST;
  const host = typeof raw === 'string' ? raw.trim().replace(/^\[(.*)\]$/, '$1') : raw;
  if (typeof host !== 'string' || host.length === 0 || host.length > 255 || /[\s/]/.test(host)) throw invalidOption('http.host', 'a host name or IP address', host);
  const port = config.port ?? DEFAULT_PORT;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535) throw invalidOption('http.port', 'an integer from 0 to 65535', port);
  const env = config.env ?? process.env;
  const fromEnv = env.TROUPE_TOKEN;
  const token = config.token ?? (typeof fromEnv === 'string' && fromEnv.length > 0 ? fromEnv : undefined);
  if (token === undefined && !isLoopbackHost(host)) {
    throw new TroupeError(
      ErrorCodes.INVALID_OPTION,
      `Refusing to serve the HTTP API on \`${host}\` without a token: set TROUPE_TOKEN (or http.token), or bind 127.0.0.1`,
    );
  }
  return { host, port, token };
}

/**
 * Checks every setting `startServer` would read (the listener's, then the server's options), naming them under
 * `http.` as the config file writes them. Why: `troupe serve` calls it before it starts the runtime, so a mistake in
 * the `http` block is refused before any schedule of the config is saved.
 */
export function checkStartOptions(config: StartServerOptions = {}): void {
  const listen = resolveListen(config);
  const { env: _env, token: _t, host: _h, port: _p, ...rest } = config;
  checkServerOptions({ ...rest, ...(listen.token !== undefined ? { token: listen.token } : {}) }, 'http');
}

/** Creates the app and listens (why: the one way `troupe serve` and `npm start` expose a runtime). */
export async function startServer(rt: Runtime, config: StartServerOptions = {}): Promise<StartedServer> {
  const { host, port, token } = resolveListen(config);
  const { env: _env, token: _t, host: _h, port: _p, ...rest } = config;
  const app = createServer(rt, { ...rest, host, ...(token !== undefined ? { token } : {}) });
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close().catch(() => {});
    throw new TroupeError(ErrorCodes.INVALID_OPTION, `Could not listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= app.close().then(() => undefined));
  return {
    app,
    url: `http://${urlHost}:${boundPort}`,
    host,
    port: boundPort,
    authenticated: token !== undefined,
    close,
    [Symbol.asyncDispose]: close,
  };
}
