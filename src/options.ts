/**
 * Runtime options: validated at the door, resolved once, trusted inside. Internal modules take only
 * `ResolvedOptions`. Every message names the option and the value: ``Expected `concurrency` to be a positive
 * integer, got `0` (number)`` with code TROUPE_ERR_INVALID_OPTION.
 */
import os from 'node:os';
import path from 'node:path';
import { systemClock, type Clock } from './clock.ts';
import { describeValue, invalidOption } from './errors.ts';
import { resolveRetryPolicy } from './schedule/backoff.ts';
import { STRATEGIES, type Store, type Strategy } from './store/store.ts';
import type { RetryPolicy } from './task.ts';
import { parseDuration, parseSize, type Duration, type Size } from './units.ts';

/** Where log lines of the runtime itself go. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A user's retry settings. */
export interface RetryOptions {
  /** Total attempts including the first. @default 1 */
  attempts?: number;
  /** @default 'exponential' */
  backoff?: 'fixed' | 'exponential';
  /** Delay before the first retry. @default '1s' */
  delay?: Duration;
  /** Cap of any delay. @default '5m' */
  maxDelay?: Duration;
  /** Random spread of each delay (0.2 = ±20 %). @default 0.2 */
  jitter?: number;
}

export interface PoolOptions {
  /** @default 1 */
  minThreads?: number;
  /** @default os.availableParallelism() */
  maxThreads?: number;
  /** A thread idle this long is ended (down to minThreads). @default '30s' */
  idleTimeout?: Duration;
  /** Jobs waiting for a thread before `run` is refused; `'auto'` = threads². @default 'auto' */
  maxQueue?: number | 'auto';
  /** Worker thread limits; a handler exceeding them fails with TROUPE_ERR_RESOURCE_LIMIT. */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
  /** Most handler jobs sent to a thread in one message when the queue is deep. @default 64 */
  maxBatch?: number;
  /**
   * Replace a thread after `maxTasks` jobs, or when its heap in use is above `maxRssMb` after a job; the jobs in
   * flight finish first, none fails. A batch is then at most `maxTasks` jobs. @default undefined (never recycled)
   */
  recycle?: { maxTasks?: number; maxRssMb?: number };
}

/**
 * What a task keeps of its captured output (a command's lines, `ctx.log` of handler and inline tasks), in every
 * store: its newest lines within both caps, behind one marker line (`[N earlier lines dropped]`) that counts every
 * dropped line and counts against neither cap. The caps hold across the task's attempts. As a runtime option, the
 * default of every definition without its own; src/output-caps.ts has the rule.
 */
export interface OutputOptions {
  /**
   * Most lines kept. The runtime's is also the most any definition keeps (a definition's above it is held to it).
   * @default 10000
   */
  maxLines?: number;
  /**
   * Most UTF-8 bytes of line text kept. A longer line is kept cut to its first `maxBytes` bytes (a command's is cut
   * into pieces of this size as it is read). @default '10MB'
   */
  maxBytes?: Size;
}

export interface RuntimeOptions {
  /** `'sqlite:./path.db'`, `'memory'`, `'postgres://…'`, or a Store. @default 'sqlite:./.troupe/troupe.db' */
  store?: string | Store;
  /** Tasks running at once, all names together. @default 16 */
  concurrency?: number;
  /** Which due task runs next. @default 'priority' */
  strategy?: Strategy;
  pool?: PoolOptions;
  /** Default retry policy of every task (a definition or an enqueue may override it). @default { attempts: 1 } */
  retry?: RetryOptions;
  /** Default timeout of every task; 0 = none. @default 0 */
  timeout?: Duration;
  /** Grace between SIGTERM (or ctx.signal abort) and the hard stop. @default '5s' */
  killGrace?: Duration;
  output?: OutputOptions;
  /** How long a claim holds a task before another node may take it back. @default '30s' */
  lease?: Duration;
  /** How often leases are renewed. @default lease / 3 */
  heartbeat?: Duration;
  /** Most tasks claimed in one store call. @default 64 */
  claimBatch?: number;
  /**
   * Claimed tasks held ready beyond the free slots, so a run that ends starts the next without a store round
   * trip and claims come in large batches. `'auto'`: for SQLite, twice `claimBatch`; for PostgreSQL, four times
   * `claimBatch` (two claims in flight once half of it is left); at least twice the concurrency; none for the
   * memory store. Under load only: the buffer holds about what the slots start in 20 ms. 0 turns it off. Other
   * nodes on a shared store cannot claim the tasks held here. @default 'auto'
   */
  prefetch?: number | 'auto';
  /** Restart intensity of the supervision tree. @default { maxRestarts: 3, within: '5s' } */
  supervisor?: { maxRestarts?: number; within?: Duration };
  /** SQLite durability: `NORMAL` (WAL, fast) or `FULL` (fsync per commit). @default 'NORMAL' */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * SQLite WAL checkpoints: `'thread'` runs them on a worker thread of their own (no commit on the main thread
   * pays for copying the WAL back), `'inline'` leaves them to SQLite, inside the commit that fills the WAL.
   * @default 'thread'
   */
  checkpoints?: 'thread' | 'inline';
  /**
   * Who forks command tasks: `'server'`, the spawn server, a small helper process started once a command task is
   * registered (a fork there costs the same few milliseconds whatever this process's heap, and this event loop does
   * not wait for it), or `'direct'`, this process (through execa). Windows always spawns directly. @default 'server'
   */
  spawn?: 'server' | 'direct';
  /** Root of the runtime's temporary files (cleaned by `cleanup-temp-files`). @default os.tmpdir()/troupe */
  tempDir?: string;
  /**
   * Node identity recorded with claims. It may stay the same across restarts (a pod name): the tasks a crashed
   * process held under it come back when their leases end, as a node renews only the tasks it holds.
   * @default host:pid:start time (base 36):4 random hex digits
   */
  nodeId?: string;
  clock?: Clock;
  /** Randomness for weighted-random and jitter; tests pass a seeded one. @default Math.random */
  random?: () => number;
  logger?: Logger;
  /** Built-in maintenance tasks (`cleanup-runs`, `health-check`, …) are registered. @default true */
  maintenance?: boolean;
  /** OpenTelemetry spans per run when `@opentelemetry/api` is installed and an SDK is registered (see README). @default true */
  telemetry?: boolean;
}

export interface ResolvedOptions {
  store: string | Store;
  concurrency: number;
  strategy: Strategy;
  pool: {
    minThreads: number;
    maxThreads: number;
    idleTimeoutMs: number;
    maxQueue: number | 'auto';
    resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
    maxBatch: number;
    recycle?: { maxTasks?: number; maxRssMb?: number };
  };
  retry: RetryPolicy;
  timeoutMs: number;
  killGraceMs: number;
  output: { maxLines: number; maxBytes: number };
  leaseMs: number;
  heartbeatMs: number;
  claimBatch: number;
  prefetch: number | 'auto';
  supervisor: { maxRestarts: number; withinMs: number };
  synchronous: 'NORMAL' | 'FULL';
  checkpoints: 'thread' | 'inline';
  spawn: 'server' | 'direct';
  tempDir: string;
  nodeId: string | undefined;
  clock: Clock;
  random: () => number;
  logger: Logger;
  maintenance: boolean;
  telemetry: boolean;
}

const silentLogger: Logger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} });

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 1,
  backoff: 'exponential',
  delayMs: 1000,
  maxDelayMs: 300_000,
  jitter: 0.2,
});

export const DEFAULTS = Object.freeze({
  store: 'sqlite:./.troupe/troupe.db',
  concurrency: 16,
  strategy: 'priority' as Strategy,
  killGraceMs: 5000,
  maxLines: 10_000,
  maxBytes: 10 * 1000 * 1000,
  leaseMs: 30_000,
  claimBatch: 64,
  maxBatch: 64,
  idleTimeoutMs: 30_000,
  maxRestarts: 3,
  withinMs: 5000,
});

const KNOWN_KEYS = new Set([
  'store', 'concurrency', 'strategy', 'pool', 'retry', 'timeout', 'killGrace', 'output', 'lease', 'heartbeat',
  'claimBatch', 'prefetch', 'supervisor', 'synchronous', 'checkpoints', 'spawn', 'tempDir', 'nodeId', 'clock', 'random', 'logger', 'maintenance', 'telemetry',
]);

/** Checks `value` is a positive integer (or within [min, max]). */
export function positiveInteger(value: unknown, path: string, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer ≥ ${min}`) : `an integer from ${min} to ${max}`;
    throw invalidOption(path, range, value);
  }
  return value;
}

/** Copies a user object into a null-prototype record, refusing non-objects and unknown keys. */
export function plainObject(value: unknown, path: string, known?: ReadonlySet<string>): Record<string, unknown> {
  if (value === undefined) return Object.create(null) as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidOption(path === '' ? 'options' : path, 'an object', value);
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const keyPath = path === '' ? key : `${path}.${key}`;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      throw invalidOption(keyPath, 'absent (reserved name)', (value as Record<string, unknown>)[key]);
    }
    if (known && !known.has(key)) {
      throw invalidOption(keyPath, `one of the known options (${[...known].join(', ')})`, (value as Record<string, unknown>)[key]);
    }
    out[key] = (value as Record<string, unknown>)[key];
  }
  return out;
}

/** Validates and fills every option; throws TROUPE_ERR_INVALID_OPTION on the first bad one. */
export function resolveOptions(raw: RuntimeOptions = {}): ResolvedOptions {
  const o = plainObject(raw, '', KNOWN_KEYS);
  const store = o.store ?? DEFAULTS.store;
  if (typeof store !== 'string' && (typeof store !== 'object' || store === null || typeof (store as Store).claim !== 'function')) {
    throw invalidOption('store', "'memory', 'sqlite:PATH', 'postgres://…' or a Store", store);
  }
  const concurrency = positiveInteger(o.concurrency ?? DEFAULTS.concurrency, 'concurrency', { max: 100_000 });
  const strategy = (o.strategy ?? DEFAULTS.strategy) as Strategy;
  if (!STRATEGIES.includes(strategy)) throw invalidOption('strategy', `one of ${STRATEGIES.map((s) => `'${s}'`).join(', ')}`, o.strategy);

  const p = plainObject(o.pool, 'pool', new Set(['minThreads', 'maxThreads', 'idleTimeout', 'maxQueue', 'resourceLimits', 'maxBatch', 'recycle']));
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const maxThreads = positiveInteger(p.maxThreads ?? Math.max(1, cores), 'pool.maxThreads', { max: 1024 });
  const minThreads = positiveInteger(p.minThreads ?? 1, 'pool.minThreads', { min: 0, max: 1024 });
  if (minThreads > maxThreads) throw invalidOption('pool.minThreads', `at most pool.maxThreads (${maxThreads})`, minThreads);
  const maxQueue = p.maxQueue ?? 'auto';
  if (maxQueue !== 'auto') positiveInteger(maxQueue, 'pool.maxQueue', { min: 0 });
  const resourceLimits = p.resourceLimits === undefined ? undefined : plainObject(p.resourceLimits, 'pool.resourceLimits', new Set(['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'stackSizeMb']));
  if (resourceLimits) for (const [k, v] of Object.entries(resourceLimits)) positiveInteger(v, `pool.resourceLimits.${k}`);
  const recycle = p.recycle === undefined ? undefined : plainObject(p.recycle, 'pool.recycle', new Set(['maxTasks', 'maxRssMb']));
  if (recycle) for (const [k, v] of Object.entries(recycle)) positiveInteger(v, `pool.recycle.${k}`);

  const out = plainObject(o.output, 'output', new Set(['maxLines', 'maxBytes']));
  const sup = plainObject(o.supervisor, 'supervisor', new Set(['maxRestarts', 'within']));
  const leaseMs = parseDuration(o.lease ?? DEFAULTS.leaseMs, 'lease', { positive: true });
  const heartbeatMs = parseDuration(o.heartbeat ?? Math.max(1, Math.floor(leaseMs / 3)), 'heartbeat', { positive: true });
  if (heartbeatMs >= leaseMs) {
    // With no heartbeat given, the one derived from a 1 ms lease cannot fit: the lease is what is wrong.
    if (o.heartbeat === undefined) throw invalidOption('lease', 'at least 2 ms (a heartbeat must renew it before it ends)', o.lease);
    throw invalidOption('heartbeat', `shorter than lease (${leaseMs} ms)`, o.heartbeat);
  }
  const synchronous = o.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw invalidOption('synchronous', "'NORMAL' or 'FULL'", synchronous);
  const checkpoints = o.checkpoints ?? 'thread';
  if (checkpoints !== 'thread' && checkpoints !== 'inline') throw invalidOption('checkpoints', "'thread' or 'inline'", checkpoints);
  const spawn = o.spawn ?? 'server';
  if (spawn !== 'server' && spawn !== 'direct') throw invalidOption('spawn', "'server' or 'direct'", spawn);
  const clock = (o.clock ?? systemClock) as Clock;
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function') throw invalidOption('clock', 'a Clock', clock);
  const random = (o.random ?? Math.random) as () => number;
  if (typeof random !== 'function') throw invalidOption('random', 'a function returning [0, 1)', random);
  const tempDir = o.tempDir ?? path.join(os.tmpdir(), 'troupe');
  if (typeof tempDir !== 'string' || tempDir.length === 0) throw invalidOption('tempDir', 'a directory path', tempDir);
  if (o.nodeId !== undefined && (typeof o.nodeId !== 'string' || o.nodeId.length === 0 || o.nodeId.length > 200)) {
    throw invalidOption('nodeId', 'a non-empty string', o.nodeId);
  }
  const logger = (o.logger ?? silentLogger) as Logger;
  if (typeof logger.warn !== 'function') throw invalidOption('logger', 'an object with debug/info/warn/error', logger);
  if (o.maintenance !== undefined && typeof o.maintenance !== 'boolean') throw invalidOption('maintenance', 'a boolean', o.maintenance);
  if (o.telemetry !== undefined && typeof o.telemetry !== 'boolean') throw invalidOption('telemetry', 'a boolean', o.telemetry);

  const resolved: ResolvedOptions = {
    store: store as string | Store,
    concurrency,
    strategy,
    pool: {
      minThreads,
      maxThreads,
      idleTimeoutMs: parseDuration(p.idleTimeout ?? DEFAULTS.idleTimeoutMs, 'pool.idleTimeout'),
      maxQueue: maxQueue as number | 'auto',
      maxBatch: positiveInteger(p.maxBatch ?? DEFAULTS.maxBatch, 'pool.maxBatch', { max: 1024 }),
      ...(resourceLimits ? { resourceLimits: resourceLimits as ResolvedOptions['pool']['resourceLimits'] } : {}),
      ...(recycle ? { recycle: { ...recycle } as ResolvedOptions['pool']['recycle'] } : {}),
    },
    retry: resolveRetryPolicy(o.retry, 'retry', DEFAULT_RETRY),
    timeoutMs: parseDuration(o.timeout ?? 0, 'timeout'),
    killGraceMs: parseDuration(o.killGrace ?? DEFAULTS.killGraceMs, 'killGrace'),
    output: {
      maxLines: positiveInteger(out.maxLines ?? DEFAULTS.maxLines, 'output.maxLines', { max: 10_000_000 }),
      maxBytes: parseSize(out.maxBytes ?? DEFAULTS.maxBytes, 'output.maxBytes'),
    },
    leaseMs,
    heartbeatMs,
    claimBatch: positiveInteger(o.claimBatch ?? DEFAULTS.claimBatch, 'claimBatch', { max: 10_000 }),
    prefetch: o.prefetch === undefined || o.prefetch === 'auto' ? 'auto' : integerOrAuto(o.prefetch, 'prefetch'),
    supervisor: {
      maxRestarts: positiveInteger(sup.maxRestarts ?? DEFAULTS.maxRestarts, 'supervisor.maxRestarts', { min: 0 }),
      withinMs: parseDuration(sup.within ?? DEFAULTS.withinMs, 'supervisor.within', { positive: true }),
    },
    synchronous,
    checkpoints,
    spawn,
    tempDir,
    nodeId: o.nodeId as string | undefined,
    clock,
    random,
    logger,
    maintenance: (o.maintenance as boolean | undefined) ?? true,
    telemetry: (o.telemetry as boolean | undefined) ?? true,
  };
  return Object.freeze(resolved);
}

/** `prefetch`: 'auto' or an integer from 0 to 10,000. */
function integerOrAuto(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 10_000) throw invalidOption(path, "'auto' or an integer from 0 to 10000", value);
  return value;
}

/**
 * The prefetch a runtime uses: 'auto' holds tasks ahead on durable stores only, where a claim costs a transaction
 * (SQLite: a commit; PostgreSQL: a network round trip, whose cost is mostly per statement, not per row). On SQLite
 * it is two full claims (`2 × claimBatch`), or twice the concurrency when that is more (at most 10,000): the
 * executor asks again when half of the buffer is left, so each refill is one full claim taken while the rest runs
 * (bench/suites/postgres-prefetch.bench.ts: ≈1.3× the tasks/s of a buffer of one claim on PostgreSQL at
 * concurrency 1 and 8). On PostgreSQL four full claims: half of it is two claims, which the scheduler sends side
 * by side (10,000 no-ops at concurrency 8, alternating runs: 11.5–14.4k → 13.9–16.3k tasks/s). The executor still
 * sizes the buffer to what starts within 20 ms, so slow or sparse work is not held. The memory store has no claim
 * cost: none.
 */
export function resolvePrefetch(prefetch: number | 'auto', storeKind: string, concurrency: number, claimBatch: number): number {
  if (prefetch !== 'auto') return prefetch;
  if (storeKind === 'memory') return 0;
  // PostgreSQL runs two claims side by side (the scheduler's claimsInFlight): the buffer asks for two batches at
  // once when half of it is left.
  const claims = storeKind === 'postgres' ? 4 : 2;
  return Math.min(10_000, Math.max(claims * claimBatch, 2 * concurrency));
}

export { describeValue };
