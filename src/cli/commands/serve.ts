/**
 * `troupe serve`: loads the config, starts the runtime and the HTTP API, prints the URL it bound (so `--port 0`
 * is usable by scripts and tests), and stops gracefully on SIGINT/SIGTERM: the listener closes (no new work),
 * running tasks get `--grace` to finish, the rest are stopped and given back to the queue. A second signal
 * stops at once (the exit hook of the process layer still ends every subprocess group).
 */
import type { HttpConfig, LoadedConfig } from '../../config.ts';
import { ErrorCodes, TroupeError } from '../../errors.ts';
import type { StartedServer } from '../../http/listen.ts';
import { parseDuration } from '../../units.ts';
import { createStderrLogger, openRuntime } from '../config-file.ts';
import { ExitCodes, onClosedOutput } from '../errors.ts';
import type { Style } from '../format.ts';

export interface ServeOptions {
  config?: string;
  port?: number;
  host?: string;
  store?: string;
  /** How long running tasks may finish after a stop signal. @default '10s' */
  grace?: string;
}

/** Why: one entry point that runs until a signal and then shuts down in order. */
export async function serve(o: ServeOptions, style: Style): Promise<number> {
  const graceMs = parseDuration(o.grace ?? '10s', '--grace');
  // The server's lifetime is not its log reader's: with stdout or stderr gone (`| head`), it keeps serving.
  onClosedOutput([process.stdout, process.stderr], () => {});
  // Imported here, so the client commands never load fastify.
  const { checkStartOptions, startServer } = await import('../../http/listen.ts');
  let http: HttpConfig = {};
  // The `http` block (with --host, --port and TROUPE_TOKEN) is checked before the runtime starts: a mistake there
  // saves no schedule of the config and starts no work.
  const check = (loaded: LoadedConfig | undefined) => {
    http = { ...(loaded?.config.http ?? {}) };
    if (o.host !== undefined) http.host = o.host;
    if (o.port !== undefined) http.port = o.port;
    if (http.token === undefined && process.env.TROUPE_TOKEN) http.token = process.env.TROUPE_TOKEN;
    checkStartOptions(http);
  };
  const { rt, loaded } = await openRuntime({ config: o.config, store: o.store, requireConfig: true, logger: createStderrLogger(), check });
  let server: StartedServer;
  try {
    server = await startServer(rt, http);
  } catch (error) {
    await rt.close({ timeout: 0 }).catch(() => {});
    throw listenError(error, http);
  }
  const names = rt.tasks().filter((t) => !t.builtin).map((t) => t.name);
  process.stdout.write(`troupe serving ${server.url}\n`);
  process.stdout.write(style.dim(`  config ${loaded?.file}\n  store  ${rt.liveness().store}\n  tasks  ${names.join(', ') || '(none)'}\n  press Ctrl-C to stop\n`));

  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`${signal} again: stopping now\n`);
        process.exit(ExitCodes.interrupted);
      }
      stopping = true;
      process.stdout.write(`${signal}: stopping — no new work; running tasks have ${Math.round(graceMs / 1000)} s to finish (Ctrl-C again to stop now)\n`);
      void (async () => {
        await withDeadline(server.close(), graceMs).catch((error: unknown) => process.stderr.write(`warn closing the listener: ${(error as Error).message}\n`));
        await rt.close({ timeout: graceMs }).catch((error: unknown) => process.stderr.write(`warn closing the runtime: ${(error as Error).message}\n`));
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
      })();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  process.stdout.write('stopped\n');
  return ExitCodes.ok;
}

function withDeadline(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function listenError(error: unknown, http: HttpConfig): unknown {
  // startServer wraps the listen error; the system code is on its cause.
  const e = error as { code?: string; cause?: { code?: string } } | undefined;
  const errno = e?.cause?.code ?? e?.code;
  const where = `${http.host ?? '127.0.0.1'}:${http.port ?? 7420}`;
  if (errno === 'EADDRINUSE') return new TroupeError(ErrorCodes.CONFLICT, `cannot listen on ${where}: the address is in use — stop the other server or pick another --port`, { cause: error });
  if (errno === 'EACCES') return new TroupeError(ErrorCodes.CONFLICT, `cannot listen on ${where}: permission denied — use a port above 1023`, { cause: error });
  if (errno === 'EADDRNOTAVAIL') return new TroupeError(ErrorCodes.INVALID_OPTION, `cannot listen on ${where}: no such address on this machine — check --host`, { cause: error });
  return error;
}
