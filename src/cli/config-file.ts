/**
 * Where the command line finds its config and store: `--config FILE`, else `./troupe.config.ts` (or .mts/.js/.mjs)
 * when present; `--store memory | sqlite:PATH | postgres:URL` overrides the config's store, with a relative
 * SQLite path taken from the current folder (where the user typed it), not the config's.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRuntimeFromConfig, loadConfig, type LoadedConfig } from '../config.ts';
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { Logger, RuntimeOptions } from '../options.ts';
import type { Runtime } from '../runtime.ts';

const DEFAULT_NAMES = ['troupe.config.ts', 'troupe.config.mts', 'troupe.config.js', 'troupe.config.mjs'];

/** Why: `troupe serve` in a project folder just works; an explicit `--config` always wins. */
export function resolveConfigPath(given: string | undefined, cwd = process.cwd()): string | undefined {
  if (given !== undefined) return path.resolve(cwd, given);
  for (const name of DEFAULT_NAMES) {
    const file = path.join(cwd, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Why: one spelling of stores on the command line, checked before anything opens. */
export function parseStoreOption(spec: string, cwd = process.cwd()): string {
  if (spec === 'memory') return spec;
  if (spec.startsWith('sqlite:') && spec.length > 'sqlite:'.length) {
    const file = spec.slice('sqlite:'.length);
    return file === ':memory:' ? spec : `sqlite:${path.resolve(cwd, file)}`;
  }
  if (/^postgres(ql)?:\/\/./.test(spec)) return spec;
  if (/^postgres:postgres(ql)?:\/\/./.test(spec)) return spec.slice('postgres:'.length);
  throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`--store\` to be memory, sqlite:PATH or postgres:URL (e.g. postgres://user@host/db), got \`${spec}\``);
}

/** Why: warnings and errors of a served runtime belong on stderr, one line each. */
export function createStderrLogger(stream: NodeJS.WritableStream = process.stderr): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    stream.write(`${level} ${message}${fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''}\n`);
  };
  return { debug() {}, info() {}, warn: write('warn'), error: write('error') };
}

export interface OpenOptions {
  /** Config file as given on the command line. */
  config?: string | undefined;
  /** `--store` as given. */
  store?: string | undefined;
  /** Store when neither `--store` nor a config names one. */
  defaultStore?: string;
  /** Leave the config's schedules out (a one-shot `troupe run` must not fire them). @default false */
  withoutSchedules?: boolean;
  /** Refuse to start without a config file. @default false */
  requireConfig?: boolean;
  logger?: Logger;
  /** Checks the loaded config before the runtime starts (a mistake it throws starts nothing and saves nothing). */
  check?: (loaded: LoadedConfig | undefined) => void;
}

/** Why: serve, run and repl --config open a runtime the same way. */
export async function openRuntime(o: OpenOptions): Promise<{ rt: Runtime; loaded: LoadedConfig | undefined }> {
  const file = resolveConfigPath(o.config);
  if (file === undefined && o.requireConfig) {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, 'no config file: pass --config FILE or create ./troupe.config.ts here');
  }
  const store = o.store !== undefined ? parseStoreOption(o.store) : undefined;
  const loaded: LoadedConfig | undefined = file !== undefined ? await loadConfig(file) : undefined;
  o.check?.(loaded);
  const base: LoadedConfig = loaded ?? { config: {}, baseDir: process.cwd(), file: '(none)' };
  const overrides: RuntimeOptions = {};
  if (store !== undefined) overrides.store = store;
  else if (base.config.store === undefined && o.defaultStore !== undefined) overrides.store = o.defaultStore;
  if (base.config.logger === undefined && o.logger !== undefined) overrides.logger = o.logger;
  // The config speaks for its schedules only when there is one, and when they are wanted (not for `troupe run`).
  const rt = await createRuntimeFromConfig(base, overrides, { schedules: loaded !== undefined && !o.withoutSchedules });
  return { rt, loaded };
}
