/**
 * The config file (`troupe.config.ts`) used by `troupe serve`, `troupe run` and `troupe repl --config`:
 * runtime options, the HTTP listener, the tasks to register and the schedules to keep (none unless written
 * here). Relative handler paths, command cwds and SQLite paths (`sqlite:./x.db`, a bare `./x.db`, and the default
 * `sqlite:./.troupe/troupe.db`) resolve against the config file's folder, so the same config opens the same store
 * from whatever folder the command is typed in.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, TroupeError, invalidOption, isTroupeError } from './errors.ts';
import { DEFAULTS, plainObject } from './options.ts';
import type { TaskDefinition } from './registry.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime, type ScheduleOptions } from './runtime.ts';
import type { RuntimeOptions } from './options.ts';

export interface HttpConfig {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 7420 */
  port?: number;
  /** Bearer token; required when `host` is not a loopback address. @default process.env.TROUPE_TOKEN */
  token?: string;
  /** Largest request body. @default '1MB' */
  bodyLimit?: number | string;
  /** fastify's request logging (pino) to stdout. @default false */
  logger?: boolean;
  /** Interval of SSE heartbeat comments, in ms. @default 15000 */
  heartbeatMs?: number;
  /** Expose prom-client's process metrics on /metrics. @default true */
  processMetrics?: boolean;
  /** Due work waiting this long (ms) with no task started or finished makes /api/health answer 503. @default 300000 */
  stallMs?: number;
  /**
   * Resource-aware admission: while the health check is in error, this node takes no new work (`rt.holdIntake`;
   * the other nodes of a shared store go on). `intervalMs`: how often health is sampled (at least 100). @default off
   */
  admission?: { intervalMs: number };
}

/**
 * The keys of `http`: the listener's and every server option (`ServerOptions`); anything else is a mistake (a
 * misspelt `token` must not leave the API open). The values are checked by `troupe serve` before the runtime starts.
 */
export const HTTP_KEYS: ReadonlySet<string> = new Set(['host', 'port', 'token', 'bodyLimit', 'logger', 'heartbeatMs', 'processMetrics', 'stallMs', 'admission']);

export interface ScheduleConfig extends ScheduleOptions {
  task: string;
  input?: unknown;
}

export interface TroupeConfig extends RuntimeOptions {
  http?: HttpConfig;
  tasks?: Record<string, TaskDefinition<any, any>>;
  schedules?: Record<string, ScheduleConfig>;
}

/** Typed identity for config files: `export default defineConfig({ … })`. */
export function defineConfig(config: TroupeConfig): TroupeConfig {
  return config;
}

export interface LoadedConfig {
  config: TroupeConfig;
  /** Folder relative paths resolve against. */
  baseDir: string;
  file: string;
}

/**
 * Imports a config module (TS or JS) and checks its shape. Every mistake is INVALID_OPTION naming the file: not
 * found, does not compile, throws while loading, no default export, a default export that is not an object, or
 * unknown keys under `http` (the runtime checks the other keys).
 */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const absolute = path.resolve(file);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(absolute);
    throw new TroupeError(ErrorCodes.INVALID_OPTION, missing ? `Config file not found: ${absolute}` : `Config file ${absolute} could not be loaded: ${(error as Error).message}`, { cause: error });
  }
  const config = defaultExport(mod);
  if (config === undefined) {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, `Config file ${absolute} has no default export: write \`export default defineConfig({ … })\``);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw invalidOption(`the default export of ${absolute}`, 'an object (defineConfig({ … }))', config);
  }
  const http = (config as TroupeConfig).http;
  if (http !== undefined) plainObject(http, 'http', HTTP_KEYS);
  return { config: config as TroupeConfig, baseDir: path.dirname(absolute), file: absolute };
}

/**
 * The config object of an imported module. A `.ts` file in CommonJS scope (a package.json without
 * `"type": "module"`, or none) is compiled to CommonJS by tsx, and `import()` of a CommonJS module gives
 * `module.exports` as its default — `{ default: config }`, marked `__esModule` — so that one is unwrapped.
 */
function defaultExport(mod: { default?: unknown }): unknown {
  const value = mod.default;
  if (typeof value === 'object' && value !== null && (value as { __esModule?: unknown }).__esModule === true) {
    return (value as { default?: unknown }).default;
  }
  return value;
}

/**
 * Why: a relative SQLite path written in the config means "next to the config", like its handler paths; a path
 * given on the command line (`--store`, already absolute) or a non-SQLite store is left as it is.
 */
export function resolveStorePath(store: RuntimeOptions['store'], baseDir: string): RuntimeOptions['store'] {
  if (typeof store !== 'string') return store;
  let file: string;
  if (store.startsWith('sqlite:')) file = store.slice('sqlite:'.length);
  else if (/\.(db|sqlite3?)$/i.test(store) && !store.includes('://')) file = store;
  else return store;
  if (file === '' || file === ':memory:' || path.isAbsolute(file)) return store;
  return `sqlite:${path.resolve(baseDir, file)}`;
}

/** A config schedule's keys: the task and its input, then what `rt.schedule` takes (named in a mistake's message). */
const CONFIG_SCHEDULE_KEYS: ReadonlySet<string> = new Set(['task', 'input', 'cron', 'every', 'timezone', 'overlap', 'id']);

/**
 * Creates a runtime from a loaded config: registers its tasks and upserts its schedules, and removes the schedules
 * an earlier config defined that this one does not (`Runtime.replaceConfigSchedules`). With `schedules: false`
 * (`troupe run`), the config's schedules are neither created nor removed.
 */
export async function createRuntimeFromConfig(loaded: LoadedConfig, overrides: RuntimeOptions = {}, { schedules: withSchedules = true } = {}): Promise<Runtime> {
  const { http: _http, tasks, schedules, ...options } = loaded.config;
  const runtimeOptions: CreateRuntimeOptions = { ...options, ...overrides, baseDir: loaded.baseDir };
  // The default store is a relative SQLite path too: without this, `serve --config app/troupe.config.ts` typed in
  // another folder would open a different, empty queue there.
  if (overrides.store === undefined) runtimeOptions.store = resolveStorePath(runtimeOptions.store ?? DEFAULTS.store, loaded.baseDir);
  if (tasks !== undefined) runtimeOptions.tasks = plainObject(tasks, 'tasks') as Record<string, TaskDefinition>;
  const rt = await createRuntime(runtimeOptions);
  try {
    if (withSchedules) {
      const defined = Object.entries(plainObject(schedules, 'schedules')).map(([id, raw]) => {
        const { task, input, ...spec } = plainObject(raw, `schedules.${id}`, CONFIG_SCHEDULE_KEYS) as unknown as ScheduleConfig;
        return { id, task, input, spec: { ...spec, id } };
      });
      // All checked before the first is saved: a mistake in one schedule leaves the stored ones as they were.
      for (const { id, task, input, spec } of defined) {
        await rt.checkSchedule(task, spec, input, `schedules.${id}`).catch((error: unknown) => {
          throw scheduleMistake(error, `schedules.${id}`);
        });
      }
      for (const { task, input, spec } of defined) await rt.schedule(task, spec, input);
      await rt.replaceConfigSchedules(defined.map(({ id }) => id));
    }
  } catch (error) {
    await rt.close();
    throw error;
  }
  return rt;
}

/** The codes of a schedule the runtime refuses as written: in a config file, a config mistake like any other. */
const SCHEDULE_MISTAKES: ReadonlySet<string> = new Set([ErrorCodes.INVALID_SCHEDULE, ErrorCodes.INVALID_OPTION, ErrorCodes.INVALID_INPUT, ErrorCodes.UNKNOWN_TASK]);

/**
 * Why: a schedule the config gets wrong is INVALID_OPTION (exit 2 from the command line, as any config mistake) and
 * names the schedule (`schedules.nightly`), so the message says which of several to fix. A store failure passes
 * through as it is.
 */
function scheduleMistake(error: unknown, path: string): unknown {
  if (!isTroupeError(error) || !SCHEDULE_MISTAKES.has(error.code)) return error;
  const message = error.message.includes(`\`${path}`) ? error.message : `${path}: ${error.message}`;
  return new TroupeError(ErrorCodes.INVALID_OPTION, message, { cause: error, ...(error.details ? { details: error.details } : {}) });
}
