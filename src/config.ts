/**
 * The config file (`troupe.config.ts`) used by `troupe serve`, `troupe run` and `troupe repl --config`:
 * runtime options, the HTTP listener, the tasks to register and the schedules to keep (none unless written
 * here). Relative handler paths and command cwds resolve against the config file's folder.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, TroupeError, invalidOption } from './errors.ts';
import { plainObject } from './options.ts';
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
}

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

/** Imports a config module (TS or JS) and checks its shape. */
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
  const config = mod.default;
  if (typeof config !== 'object' || config === null) {
    throw invalidOption('config', 'a module whose default export is an object (defineConfig({ … }))', config);
  }
  return { config: config as TroupeConfig, baseDir: path.dirname(absolute), file: absolute };
}

/** Creates a runtime from a loaded config: registers its tasks and upserts its schedules. */
export async function createRuntimeFromConfig(loaded: LoadedConfig, overrides: RuntimeOptions = {}): Promise<Runtime> {
  const { http: _http, tasks, schedules, ...options } = loaded.config;
  const runtimeOptions: CreateRuntimeOptions = { ...options, ...overrides, baseDir: loaded.baseDir };
  if (typeof runtimeOptions.store === 'string' && runtimeOptions.store.startsWith('sqlite:')) {
    const file = runtimeOptions.store.slice('sqlite:'.length);
    if (file !== ':memory:' && !path.isAbsolute(file) && overrides.store === undefined) runtimeOptions.store = `sqlite:${path.resolve(loaded.baseDir, file)}`;
  }
  if (tasks !== undefined) runtimeOptions.tasks = plainObject(tasks, 'tasks') as Record<string, TaskDefinition>;
  const rt = await createRuntime(runtimeOptions);
  try {
    for (const [id, raw] of Object.entries(plainObject(schedules, 'schedules'))) {
      const s = plainObject(raw, `schedules.${id}`) as unknown as ScheduleConfig;
      const { task, input, ...spec } = s;
      await rt.schedule(task, { ...spec, id }, input);
    }
  } catch (error) {
    await rt.close();
    throw error;
  }
  return rt;
}
