/**
 * The task registry: name → how to run it. It is the security boundary: the API, the CLI and the REPL can only
 * run what is registered here, and input is validated here before any state changes.
 *
 * Three kinds of task:
 * - handler: a module whose default export is `(input, ctx) => result`, run on a worker thread;
 * - command: a program run as a subprocess, argv built from the validated input, never through a shell;
 * - inline: a function on the main thread, for I/O-bound work inside the embedding service.
 */
import { jsonProblem } from './store/json-value.ts';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, TroupeError, invalidOption } from './errors.ts';
import { plainObject, positiveInteger, type OutputOptions, type ResolvedOptions, type RetryOptions } from './options.ts';
import { resolveRateLimit, type RateLimitOptions } from './rate-limit.ts';
import { resolveRetryPolicy } from './schedule/backoff.ts';
import type { RateLimit } from './store/store.ts';
import type { FlowChild, Progress, RetryPolicy } from './task.ts';
import { parseDuration, parseSize, type Duration } from './units.ts';

/** What running code gets: its identity, a cancel signal, and ways to report. */
export interface TaskContext {
  id: string;
  name: string;
  /** 1 on the first attempt. */
  attempt: number;
  /** Aborts on cancel, timeout or shutdown; `signal.reason` says which. */
  signal: AbortSignal;
  /** Reports progress: a fraction in [0, 1] or `{ done, total }`. */
  progress(value: number | { done: number; total: number }): void;
  /** Adds a line to the task's output. */
  log(line: string): void;
  /**
   * A flow parent's children, in the order they were given (`ignore` leaves out those that did not succeed); inline
   * and handler tasks. A command parent reads the same array from the JSON file named by `TROUPE_CHILDREN_FILE`.
   */
  children?: readonly FlowChild[];
}

/** A Standard Schema validator (zod, valibot, arktype…): only its `~standard.validate` is used. */
export interface StandardSchema<I = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown):
      | { value: I; issues?: undefined }
      | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> }> }
      | Promise<{ value: I; issues?: undefined } | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> }> }>;
  };
}

interface CommonDefinition<I> {
  /** Soft timeout: ctx.signal aborts (SIGTERM for commands); the hard stop follows after `killGrace`. */
  timeout?: Duration;
  killGrace?: Duration;
  retry?: RetryOptions;
  /** At most this many of this name at once, or `{ adaptive: true, min, max }` to let the executor find the limit. */
  concurrency?: number | ({ adaptive: true } & Record<string, unknown>);
  /** Validates input before anything is stored. */
  input?: StandardSchema<I>;
  /** Default priority of enqueues of this name. */
  priority?: number;
  output?: OutputOptions;
  description?: string;
  /** At most this many tasks of this name run at once per group key (enqueue option `group`), over all nodes. */
  groupConcurrency?: number;
  /** At most `max` starts per `per` window, for the whole name or per group (`by: 'group'`), over all nodes. */
  rateLimit?: RateLimitOptions;
}

export interface HandlerDefinition<I = unknown> extends CommonDefinition<I> {
  /** The module: a file URL, or a path (relative paths resolve against `baseDir`). */
  handler: URL | string;
}

export interface CommandDefinition<I = unknown> extends CommonDefinition<I> {
  command: string;
  /** A fixed argv, or a function of the validated input returning one. Never run through a shell. */
  args?: readonly string[] | ((input: I) => readonly string[]);
  cwd?: string;
  env?: Record<string, string>;
}

export interface InlineDefinition<I = unknown, O = unknown> extends CommonDefinition<I> {
  run: (input: I, ctx: TaskContext) => O | Promise<O>;
}

export type TaskDefinition<I = unknown, O = unknown> = HandlerDefinition<I> | CommandDefinition<I> | InlineDefinition<I, O>;

interface ResolvedCommon {
  name: string;
  description?: string;
  timeoutMs: number;
  killGraceMs: number;
  retry: RetryPolicy;
  concurrency?: number;
  /** Adaptive concurrency bounds (validated by the runtime), when `concurrency: { adaptive: true, … }`. */
  adaptive?: Record<string, unknown>;
  groupConcurrency?: number;
  rateLimit?: RateLimit;
  priority: number;
  output: { maxLines: number; maxBytes: number };
  validate?: (input: unknown) => Promise<unknown>;
  builtin: boolean;
}

export type ResolvedTask =
  | (ResolvedCommon & { kind: 'handler'; handler: string })
  | (ResolvedCommon & { kind: 'command'; command: string; args: (input: unknown) => string[]; cwd?: string; env?: Record<string, string> })
  | (ResolvedCommon & { kind: 'inline'; run: (input: unknown, ctx: TaskContext) => unknown });

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const COMMON_KEYS = ['timeout', 'killGrace', 'retry', 'concurrency', 'input', 'priority', 'output', 'description', 'groupConcurrency', 'rateLimit'];
const HANDLER_KEYS = new Set([...COMMON_KEYS, 'handler']);
const COMMAND_KEYS = new Set([...COMMON_KEYS, 'command', 'args', 'cwd', 'env']);
const INLINE_KEYS = new Set([...COMMON_KEYS, 'run']);

export class Registry {
  readonly #tasks = new Map<string, ResolvedTask>();
  /** The tasks with a concurrency cap, built on first use after a change (see {@link capped}). */
  #capped: readonly ResolvedTask[] | undefined;
  readonly #defaults: ResolvedOptions;
  readonly #baseDir: string;

  readonly #checkAdaptive: ((bounds: Record<string, unknown>, path: string) => void) | undefined;

  /** `checkAdaptive` validates adaptive-concurrency bounds at registration (the executor owns their meaning). */
  constructor(defaults: ResolvedOptions, baseDir = process.cwd(), checkAdaptive?: (bounds: Record<string, unknown>, path: string) => void) {
    this.#defaults = defaults;
    this.#baseDir = baseDir;
    this.#checkAdaptive = checkAdaptive;
  }

  /** Validates a definition and adds it. A second registration of a name is refused. */
  register(name: string, definition: TaskDefinition<any, any>, { builtin = false, baseDir = this.#baseDir } = {}): ResolvedTask {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalidOption('name', 'a task name of letters, digits, ".", "_", ":" or "-" (at most 128)', name);
    }
    if (this.#tasks.has(name)) {
      throw new TroupeError(ErrorCodes.DUPLICATE_TASK, `A task named \`${name}\` is already registered`);
    }
    const resolved = this.#resolve(name, definition, builtin, baseDir);
    this.#tasks.set(name, resolved);
    this.#capped = undefined;
    return resolved;
  }

  /** Removes a name (its stored tasks stay; they fail as unknown if claimed later). */
  unregister(name: string): boolean {
    this.#capped = undefined;
    return this.#tasks.delete(name);
  }

  get(name: string): ResolvedTask | undefined {
    return this.#tasks.get(name);
  }

  /** The definition, or TROUPE_ERR_UNKNOWN_TASK listing what is registered. */
  require(name: unknown): ResolvedTask {
    const task = typeof name === 'string' ? this.#tasks.get(name) : undefined;
    if (!task) {
      const known = [...this.#tasks.keys()].filter((n) => !this.#tasks.get(n)!.builtin);
      throw new TroupeError(
        ErrorCodes.UNKNOWN_TASK,
        `No task named ${describeName(name)} is registered${known.length ? ` (registered: ${known.slice(0, 20).join(', ')})` : ''}`,
      );
    }
    return task;
  }

  names(): string[] {
    return [...this.#tasks.keys()];
  }

  list(): ResolvedTask[] {
    return [...this.#tasks.values()];
  }

  /**
   * The tasks with a concurrency cap (a number or adaptive), in registration order. The same frozen array until
   * the registry changes. Why: the executor reads it each time it asks for work, once per run on an idle node.
   */
  capped(): readonly ResolvedTask[] {
    return (this.#capped ??= Object.freeze([...this.#tasks.values()].filter((t) => t.adaptive !== undefined || t.concurrency !== undefined)));
  }

  /**
   * Runs the task's validator (if any), then `check` on the value it returned: by default, that it can be stored
   * as JSON (the runtime passes its store's own check).
   */
  async validateInput(task: ResolvedTask, input: unknown, check: (value: unknown, name: string) => void = assertJson): Promise<unknown> {
    const value = task.validate ? await task.validate(input) : input;
    check(value, task.name);
    return value;
  }

  #resolve(name: string, raw: TaskDefinition, builtin: boolean, baseDir: string): ResolvedTask {
    const isHandler = raw !== null && typeof raw === 'object' && 'handler' in raw;
    const isCommand = raw !== null && typeof raw === 'object' && 'command' in raw;
    const isInline = raw !== null && typeof raw === 'object' && 'run' in raw;
    if ([isHandler, isCommand, isInline].filter(Boolean).length !== 1) {
      throw invalidOption(`tasks.${name}`, 'a definition with exactly one of `handler`, `command` or `run`', raw);
    }
    const keys = isHandler ? HANDLER_KEYS : isCommand ? COMMAND_KEYS : INLINE_KEYS;
    const d = plainObject(raw, `tasks.${name}`, keys);
    const p = `tasks.${name}`;
    const out = plainObject(d.output, `${p}.output`, new Set(['maxLines', 'maxBytes']));
    const common: ResolvedCommon = {
      name,
      timeoutMs: d.timeout === undefined ? this.#defaults.timeoutMs : parseDuration(d.timeout, `${p}.timeout`),
      killGraceMs: d.killGrace === undefined ? this.#defaults.killGraceMs : parseDuration(d.killGrace, `${p}.killGrace`),
      retry: d.retry === undefined ? this.#defaults.retry : resolveRetryPolicy(d.retry, `${p}.retry`, this.#defaults.retry),
      priority: d.priority === undefined ? 0 : integer(d.priority, `${p}.priority`),
      output: {
        // The runtime's `output.maxLines` bounds every task (the store keeps no more per task): a definition may
        // lower it, and one above it is held to it, so that `def.output` says what is kept.
        maxLines: out.maxLines === undefined ? this.#defaults.output.maxLines : Math.min(positiveInteger(out.maxLines, `${p}.output.maxLines`), this.#defaults.output.maxLines),
        maxBytes: out.maxBytes === undefined ? this.#defaults.output.maxBytes : parseSize(out.maxBytes, `${p}.output.maxBytes`),
      },
      builtin,
    };
    if (d.description !== undefined) {
      if (typeof d.description !== 'string') throw invalidOption(`${p}.description`, 'a string', d.description);
      common.description = d.description;
    }
    if (d.concurrency !== undefined) {
      if (typeof d.concurrency === 'object' && d.concurrency !== null && (d.concurrency as { adaptive?: unknown }).adaptive === true) {
        const { adaptive: _a, ...bounds } = d.concurrency as Record<string, unknown>;
        this.#checkAdaptive?.(bounds, `${p}.concurrency`);
        common.adaptive = bounds;
      } else common.concurrency = positiveInteger(d.concurrency, `${p}.concurrency`);
    }
    if (d.input !== undefined) common.validate = createValidator(d.input, name, `${p}.input`);
    if (d.groupConcurrency !== undefined) common.groupConcurrency = positiveInteger(d.groupConcurrency, `${p}.groupConcurrency`);
    if (d.rateLimit !== undefined) common.rateLimit = resolveRateLimit(d.rateLimit, `${p}.rateLimit`);

    if (isHandler) {
      const h = d.handler;
      let href: string;
      if (h instanceof URL) href = h.href;
      else if (typeof h === 'string' && h.length > 0) {
        href = /^file:/.test(h) ? h : pathToFileURL(path.resolve(baseDir, h)).href;
      } else throw invalidOption(`${p}.handler`, 'a file URL or a module path', h);
      if (!href.startsWith('file:')) throw invalidOption(`${p}.handler`, 'a file: URL', h);
      return { ...common, kind: 'handler', handler: href };
    }
    if (isCommand) {
      // NUL bytes cannot reach exec(): refused here, not as a failed run of every task of the name.
      if (typeof d.command !== 'string' || d.command.length === 0 || d.command.includes('\0')) {
        throw invalidOption(`${p}.command`, 'a program name or path (without NUL bytes)', d.command);
      }
      const args = d.args;
      let build: (input: unknown) => string[];
      if (args === undefined) build = () => [];
      else if (Array.isArray(args)) {
        const fixed = checkArgs(args, `${p}.args`);
        // A copy per run: a caller that appends to its argv must not change the next run's.
        build = () => [...fixed];
      } else if (typeof args === 'function') {
        build = (input) => {
          let argv: unknown;
          try {
            argv = (args as (i: unknown) => unknown)(input);
          } catch (error) {
            // The same input would throw again: not retried.
            const message = error instanceof Error ? error.message : String(error);
            throw new TroupeError(ErrorCodes.INVALID_INPUT, `\`${name}\`: args(input) threw: ${message}`, { cause: error, details: { permanent: true } });
          }
          return checkArgs(argv, `${p}.args(input)`, ErrorCodes.INVALID_INPUT);
        };
      } else throw invalidOption(`${p}.args`, 'an array of strings or a function of the input', args);
      let cwd: string | undefined;
      if (d.cwd !== undefined) {
        if (typeof d.cwd !== 'string' || d.cwd.includes('\0')) throw invalidOption(`${p}.cwd`, 'a directory path (without NUL bytes)', d.cwd);
        cwd = path.resolve(baseDir, d.cwd);
      } else cwd = baseDir;
      let env: Record<string, string> | undefined;
      if (d.env !== undefined) {
        env = plainObject(d.env, `${p}.env`) as Record<string, string>;
        for (const [k, v] of Object.entries(env)) {
          // An environment entry is `NAME=value`: a name with `=` would set another variable than the one written.
          if (k === '' || k.includes('=') || k.includes('\0')) throw invalidOption(`${p}.env`, 'variable names that are not empty and hold no `=` or NUL', k);
          if (typeof v !== 'string' || v.includes('\0')) throw invalidOption(`${p}.env.${k}`, 'a string without NUL bytes', v);
        }
      }
      return { ...common, kind: 'command', command: d.command, args: build, cwd, ...(env ? { env } : {}) };
    }
    if (typeof d.run !== 'function') throw invalidOption(`${p}.run`, 'a function', d.run);
    return { ...common, kind: 'inline', run: d.run as (input: unknown, ctx: TaskContext) => unknown };
  }
}

function describeName(name: unknown): string {
  return typeof name === 'string' ? `\`${name.slice(0, 100)}\`` : `of type ${typeof name}`;
}

function integer(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > 2 ** 31) {
    throw invalidOption(path, 'an integer', value);
  }
  return value;
}

function checkArgs(value: unknown, path: string, code: typeof ErrorCodes.INVALID_OPTION | typeof ErrorCodes.INVALID_INPUT = ErrorCodes.INVALID_OPTION): string[] {
  if (!Array.isArray(value) || value.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    const error = invalidOption(path, 'an array of strings without NUL bytes', value);
    if (code === ErrorCodes.INVALID_OPTION) throw error;
    // Built from the input at run time: the same input would build it again, so it is not retried.
    throw new TroupeError(code, error.message, { details: { permanent: true } });
  }
  return [...value] as string[];
}

function createValidator(schema: unknown, name: string, path: string): (input: unknown) => Promise<unknown> {
  const std = (schema as StandardSchema | undefined)?.['~standard'];
  if (!std || typeof std.validate !== 'function') {
    throw invalidOption(path, 'a Standard Schema validator (zod, valibot, arktype…)', schema);
  }
  return async (input) => {
    const result = await std.validate(input);
    if (result.issues) {
      const issues = result.issues.map((i) => ({
        message: i.message,
        path: (i.path ?? []).map((seg) => (typeof seg === 'object' && seg !== null ? String(seg.key) : String(seg))).join('.'),
      }));
      throw new TroupeError(
        ErrorCodes.INVALID_INPUT,
        `Input of \`${name}\` is invalid: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
        { details: { issues } },
      );
    }
    return result.value;
  };
}

/** Input and results are stored as JSON: refuse what JSON cannot carry (functions, cycles, BigInt). */
export function assertJson(value: unknown, name: string): void {
  const problem = jsonProblem(value);
  if (problem !== undefined) throw new TroupeError(ErrorCodes.INVALID_INPUT, `Input of \`${name}\` cannot be stored: ${problem}`);
}

/** Normalises what `ctx.progress()` was given into a Progress, or undefined when it makes no sense. */
export function normalizeProgress(value: unknown): Progress | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return { fraction: Math.min(1, Math.max(0, value)) };
  if (value && typeof value === 'object') {
    const { done, total, fraction } = value as { done?: unknown; total?: unknown; fraction?: unknown };
    if (typeof done === 'number' && typeof total === 'number' && Number.isFinite(done) && Number.isFinite(total) && total > 0) {
      return { fraction: Math.min(1, Math.max(0, done / total)), done, total };
    }
    if (typeof fraction === 'number' && Number.isFinite(fraction)) return { fraction: Math.min(1, Math.max(0, fraction)) };
  }
  return undefined;
}
