/**
 * The PostgreSQL Store: several runtime processes share one database.
 *
 * - Claims take rows with `FOR UPDATE SKIP LOCKED`, so nodes never wait on or double-take each other's tasks.
 * - Each store lives in its own schema (default `troupe`), created and migrated on `open()` under an advisory
 *   lock, so many nodes may start at once.
 * - Wake-ups travel by LISTEN/NOTIFY: `enqueue` (and a release, a recovered lease, a retried dead letter)
 *   notifies `<schema>_wake`; cancelling a running task notifies `<schema>_cancel` with its id. `onWake` /
 *   `onCancel` subscribe; one dedicated connection listens and reconnects with backoff when it drops, and
 *   `health()` says so meanwhile. Flow parents made due or failed by a child (a trigger, see migrations.ts)
 *   notify `<schema>_flow`, and so do control changes (a schedule saved or deleted, a paused set edited: the
 *   statement that makes one moves the control version in `meta` and notifies); `onChange` hears those from every
 *   node, this node's debounced enqueues, and a `resync` when the LISTEN connection came back. A task that a node
 *   awaits is marked (`awaitEnd`) when another node runs it or any node may still claim it, and the statement that
 *   ends it (settle, cancel, lease recovery) notifies `<schema>_ended`.
 * - Claims under group or rate limits, and enqueues with dedup modes or keyed flow parents, run in a transaction
 *   (queries/claim-gated.ts, queries/enqueue-features.ts); every other call keeps its single statement.
 * - Settles use two connections of their own, and claims with a name list two more, whose sessions keep generic
 *   plans (connection-options.ts).
 * - A lost connection makes a call fail with STORE_UNAVAILABLE (the driver's error as cause); the pool replaces
 *   broken connections by itself, so the next call works once the server is back.
 *
 * SQL lives in queries/<verb>.ts; this file owns the connections, the lifecycle and error mapping.
 */
import type { CustomTypesConfig, Pool, PoolClient } from 'pg';
import { systemClock, type Clock } from '../../clock.ts';
import { ErrorCodes, TroupeError, invalidOption } from '../../errors.ts';
import type { TaskId } from '../../ids.ts';
import { lazyRequire } from '../../lazy-require.ts';
import type { NewTask, OutputLine, TaskRecord, TaskState, Transition } from '../../task.ts';
import { resolveStoreOptions, type ResolvedStoreOptions } from '../pick.ts';
import type {
  CancelResult,
  ClaimRequest,
  EnqueueAndClaimResult,
  EnqueueResult,
  FinishedCounts,
  ListFilter,
  ListPage,
  LiveCounts,
  PurgeRequest,
  QueueCounts,
  ScheduleRecord,
  SettleOp,
  Store,
  StoreChange,
  StoreOptions,
  Strategy,
} from '../store.ts';
import { CLAIM_OPTIONS, SETTLE_OPTIONS, STARTUP_OPTIONS, withStartupOptions } from './connection-options.ts';
import { NotifyListener } from './listener.ts';
import { migrate } from './migrations.ts';
import { isAbortedToRetry, isConnectionError, toStoreError } from './pg-errors.ts';
import { cancel } from './queries/cancel.ts';
import { claim } from './queries/claim.ts';
import { claimWeighted, claimWeightedOne, createDraws, type Draws } from './queries/claim-weighted.ts';
import { claimGated } from './queries/claim-gated.ts';
import { attachChildren } from './queries/children.ts';
import { enqueueWithFeatures, needsFeatureEnqueue } from './queries/enqueue-features.ts';
import { needsGate } from '../claim-gate.ts';
import { countFinished } from './queries/count-finished.ts';
import { counts, liveCounts } from './queries/counts.ts';
import { enqueue } from './queries/enqueue.ts';
import { enqueueAndStart, planStart } from './queries/enqueue-start.ts';
import { startsInInsert } from '../start-plan.ts';
import { awaitEnd, get, states } from './queries/get.ts';
import { heartbeat } from './queries/heartbeat.ts';
import { history } from './queries/history.ts';
import { list } from './queries/list.ts';
import { controlVersion, editMetaSet, getMeta, setMeta } from './queries/meta.ts';
import { nextRunAt } from './queries/next-run-at.ts';
import { output } from './queries/output.ts';
import { purge } from './queries/purge.ts';
import { recoverExpired } from './queries/recover-expired.ts';
import { retry } from './queries/retry.ts';
import { deleteSchedule, getSchedule, listSchedules, markScheduleSlot, saveSchedule } from './queries/schedules.ts';
import { needsTransaction, settle } from './queries/settle.ts';
import { createNames, type PgNames } from './sql.ts';
import { jsonProblem, postgresTextProblem } from '../json-value.ts';

export interface PostgresStoreOptions extends StoreOptions {
  /** Time source for reconnect backoff. @default systemClock */
  clock?: Clock;
  /** Schema holding this store's tables; created if missing. @default 'troupe' */
  schema?: string;
  /**
   * Connections in the pool (the LISTEN connection, the two settle connections and the two claim connections come
   * on top). @default 10
   */
  poolSize?: number;
  /** Open the LISTEN connection for `onWake`/`onCancel`. @default true */
  listen?: boolean;
  /** How long to wait for a new connection before failing with STORE_UNAVAILABLE (ms). @default 10000 */
  connectionTimeoutMs?: number;
  /** `application_name` of the connections (the listener adds `:listen`), as seen in `pg_stat_activity`. @default 'troupe' */
  applicationName?: string;
}

export const StoreStatus = { idle: 'idle', running: 'running', stopping: 'stopping', stopped: 'stopped' } as const;
export type StoreStatus = (typeof StoreStatus)[keyof typeof StoreStatus];

export interface StoreHealth {
  healthy: boolean;
  lastError?: string;
}

/** A Store on PostgreSQL, plus the cluster signals only a shared database can give. */
export interface PostgresStore extends Store, AsyncDisposable {
  readonly kind: 'postgres';
  readonly schema: string;
  readonly status: StoreStatus;
  /** Called when another node (or this one) enqueued or released work. Returns an unsubscribe function. */
  onWake(fn: () => void): () => void;
  /** Called with the id of a running task that was cancelled anywhere in the cluster. */
  onCancel(fn: (id: TaskId) => void): () => void;
  /** Flow parents made due or failed anywhere in the cluster (with `listen`), and this node's debounced enqueues. */
  onChange(fn: (change: StoreChange) => void): () => void;
  /** false while the LISTEN connection is down or the last query could not reach the server. */
  health(): StoreHealth;
}

/**
 * Connections of the settle pool. The tracker has one write in flight at a time; a second connection lets a
 * settle start while the previous one's connection is being handed back.
 */
const SETTLE_POOL_SIZE = 2;

/** Connections of the claim pool: the scheduler sends up to two claims side by side (its `claimsInFlight`). */
const CLAIM_POOL_SIZE = 2;

/**
 * How many times an operation runs when PostgreSQL aborts it to break a deadlock. Cycles are rare (the heartbeat
 * cannot close one; a flow's children settled on two nodes, each batch holding children of two parents in the
 * other order, can): the victim runs again once the other side has its locks.
 */
const ABORT_TRIES = 3;

/** The driver, loaded when the first PostgreSQL store is created (see lazy-require.ts). */
const loadPg = lazyRequire<typeof import('pg')>('pg');

/** BIGINT (epoch ms, counts) as numbers for this store's connections only, not for the whole process. */
function createTypes(pg: typeof import('pg')): CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(20, (value: string) => Number(value));
  return types as unknown as CustomTypesConfig;
}

/** Why: the store for several runtime nodes on one database. */
export function createPostgresStore(url: string, options: PostgresStoreOptions = {}): PostgresStore {
  if (typeof url !== 'string' || url.length === 0) throw invalidOption('store', 'a postgres:// connection string', url);
  const poolSize = options.poolSize ?? 10;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) throw invalidOption('store.poolSize', 'a positive integer', poolSize);
  const timeout = options.connectionTimeoutMs ?? 10_000;
  if (!Number.isFinite(timeout) || timeout <= 0) throw invalidOption('store.connectionTimeoutMs', 'a positive number', timeout);
  return new PgStore(url, resolveStoreOptions(options), {
    names: createNames(options.schema ?? 'troupe'),
    clock: options.clock ?? systemClock,
    poolSize,
    listen: options.listen ?? true,
    connectionTimeoutMs: timeout,
    applicationName: options.applicationName ?? 'troupe',
  });
}

interface Settings {
  names: PgNames;
  clock: Clock;
  poolSize: number;
  listen: boolean;
  connectionTimeoutMs: number;
  applicationName: string;
}

class PgStore implements PostgresStore {
  readonly kind = 'postgres' as const;
  readonly strategy: Strategy;
  readonly #url: string;
  readonly #options: ResolvedStoreOptions;
  readonly #s: Settings;
  readonly #n: PgNames;
  readonly #pg = loadPg();
  readonly #types = createTypes(this.#pg);
  readonly #pool: Pool;
  /** Connections for `settle` only, with generic plans (connection-options.ts `SETTLE_OPTIONS`). */
  readonly #settlePool: Pool;
  /** Connections for the claim with a name list, with generic plans (connection-options.ts `CLAIM_OPTIONS`). */
  readonly #claimPool: Pool;
  readonly #draws: Draws;
  #status: StoreStatus = StoreStatus.idle;
  #opening: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #listener: NotifyListener | undefined;
  #wake = new Set<() => void>();
  #cancel = new Set<(id: TaskId) => void>();
  #changes = new Set<(change: StoreChange) => void>();
  #poolError: string | undefined;

  constructor(url: string, options: ResolvedStoreOptions, settings: Settings) {
    this.#url = url;
    this.#options = options;
    this.#s = settings;
    this.#n = settings.names;
    this.strategy = options.strategy;
    this.#draws = createDraws(options.random);
    const pool = (options: string, max: number): Pool => {
      const p = new this.#pg.Pool({
        ...withStartupOptions(url, options),
        max,
        types: this.#types,
        application_name: settings.applicationName,
        connectionTimeoutMillis: settings.connectionTimeoutMs,
        keepAlive: true,
      });
      // An idle connection that dies (server restart, terminate) is dropped by the pool; without a listener the
      // 'error' event would crash the process.
      p.on('error', (error) => {
        this.#poolError = error.message;
      });
      return p;
    };
    this.#pool = pool(STARTUP_OPTIONS, settings.poolSize);
    this.#settlePool = pool(SETTLE_OPTIONS, SETTLE_POOL_SIZE);
    this.#claimPool = pool(CLAIM_OPTIONS, CLAIM_POOL_SIZE);

  }

  get schema(): string {
    return this.#n.schema;
  }

  get status(): StoreStatus {
    return this.#status;
  }

  open(): Promise<void> {
    if (this.#status === StoreStatus.stopping || this.#status === StoreStatus.stopped) return Promise.reject(this.#closedError());
    this.#opening ??= this.#open().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    try {
      await this.#withClient(this.#pool, (client) => migrate(client, this.#n, this.strategy));
    } catch (error) {
      throw this.#fail(error, 'open');
    }
    if (this.#s.listen) {
      const listener = new NotifyListener({
        createClient: () =>
          new this.#pg.Client({
            ...withStartupOptions(this.#url, STARTUP_OPTIONS),
            types: this.#types,
            application_name: `${this.#s.applicationName}:listen`,
            connectionTimeoutMillis: this.#s.connectionTimeoutMs,
            keepAlive: true,
          }),
        channels: [this.#n.wakeChannel, this.#n.cancelChannel, this.#n.flowChannel, this.#n.endedChannel],
        onNotification: (channel, payload) => this.#dispatch(channel, payload),
        onReconnect: () => {
          this.#dispatch(this.#n.wakeChannel, '');
          // Control changes notified while the connection was down were lost: every node reads them again.
          this.#emitChange({ type: 'resync' });
        },
        clock: this.#s.clock,
      });
      try {
        await listener.start();
      } catch (error) {
        throw this.#fail(error, 'listen');
      }
      this.#listener = listener;
    }
    if (this.#status === StoreStatus.idle) this.#status = StoreStatus.running;
  }

  onWake(fn: () => void): () => void {
    this.#wake.add(fn);
    return () => this.#wake.delete(fn);
  }

  onCancel(fn: (id: TaskId) => void): () => void {
    this.#cancel.add(fn);
    return () => this.#cancel.delete(fn);
  }

  onChange(fn: (change: StoreChange) => void): () => void {
    this.#changes.add(fn);
    return () => this.#changes.delete(fn);
  }

  health(): StoreHealth {
    const listenerDown = this.#listener !== undefined && !this.#listener.healthy;
    const healthy = this.#status === StoreStatus.running && !listenerDown && this.#poolError === undefined;
    const lastError = (listenerDown ? this.#listener?.lastError : undefined) ?? this.#poolError;
    return lastError === undefined ? { healthy } : { healthy, lastError };
  }

  async enqueue(tasks: readonly NewTask[]): Promise<EnqueueResult[]> {
    if (!needsFeatureEnqueue(tasks)) return this.#use('enqueue', (db) => enqueue(db, this.#n, tasks));
    const { results, changes } = await this.#transaction('enqueue', (client) => enqueueWithFeatures(client, this.#n, tasks));
    for (const change of changes) this.#emitChange(change);
    return results;
  }

  /**
   * Enqueues `tasks` and claims as `claim(request)` would right after. When the claim would take only tasks of the
   * batch (nothing of its names was due before), they start in the insert itself: one statement and one row
   * version each (enqueue-start.ts). Otherwise the enqueue and the claim are two statements, one after the other.
   */
  async enqueueAndClaim(tasks: readonly NewTask[], request: ClaimRequest): Promise<EnqueueAndClaimResult> {
    const plan = needsFeatureEnqueue(tasks) ? undefined : planStart(tasks, this.strategy, request);
    if (plan !== undefined) {
      const { results, claimed, blocked, drained } = await this.#use('enqueue', (db) => enqueueAndStart(db, this.#n, tasks, plan, request), this.#claimPool);
      if (!blocked) return { results, claimed, drained };
      return { results, claimed: await this.claim(request) };
    }
    const results = await this.enqueue(tasks);
    return { results, claimed: request.limit >= 1 ? await this.claim(request) : [] };
  }

  /** Claims with group or rate limits, without a name list, or on a weighted-random store take a second statement. */
  claimsInEnqueue(request: Omit<ClaimRequest, 'now'>): boolean {
    return startsInInsert(this.strategy, request);
  }

  async claim(request: ClaimRequest): Promise<TaskRecord[]> {
    const strategy = this.strategy;
    let tasks: TaskRecord[];
    if (needsGate(request)) tasks = await this.#transaction('claim', (client) => claimGated(client, this.#n, strategy, this.#draws, request));
    else if (strategy === 'weighted-random') tasks = await this.#claimWeighted(request);
    else tasks = await this.#use('claim', (db) => claim(db, this.#n, strategy, request), request.names === undefined ? this.#pool : this.#claimPool);
    // Children are final by the time their parent is due: read outside the claim's statement.
    return tasks.some((t) => t.flow !== undefined) ? this.#use('claim', (db) => attachChildren(db, this.#n, tasks)) : tasks;
  }

  async #claimWeighted(request: ClaimRequest): Promise<TaskRecord[]> {
    const limit = Math.floor(request.limit);
    if (!(limit >= 1)) return this.#use('claim', async () => []);
    if (limit === 1) {
      const one = await this.#use('claim', (db) => claimWeightedOne(db, this.#n, this.#draws, request));
      if (one) return one;
    }
    return this.#transaction('claim', (client) => claimWeighted(client, this.#n, this.#draws, request));
  }

  heartbeat(owner: string, leaseUntil: number, ids?: readonly TaskId[]): Promise<number> {
    return this.#use('heartbeat', (db) => heartbeat(db, this.#n, owner, leaseUntil, ids));
  }

  settle(ops: readonly SettleOp[]): Promise<boolean[]> {
    if (ops.length === 0) return this.#use('settle', async () => []);
    if (!needsTransaction(ops)) return this.#use('settle', (db) => settle(db, this.#n, this.#options.maxOutputLines, ops), this.#settlePool);
    return this.#transaction('settle', (client) => settle(client, this.#n, this.#options.maxOutputLines, ops), this.#settlePool);
  }

  announceStopped(stop: { id: TaskId; name: string; at: number; owner: string }): Promise<void> {
    const payload = JSON.stringify({ type: 'task.stopped', id: stop.id, name: stop.name, at: stop.at, owner: stop.owner });
    return this.#use('announceStopped', (db) => db.query('SELECT pg_notify($1, $2)', [this.#n.flowChannel, payload])).then(() => undefined);
  }

  cancel(id: TaskId, at: number, reason?: string): Promise<CancelResult> {
    return this.#use('cancel', (db) => cancel(db, this.#n, id, at, reason));
  }

  retry(id: TaskId, at: number): Promise<TaskRecord | undefined> {
    return this.#use('retry', (db) => retry(db, this.#n, id, at));
  }

  recoverExpired(now: number): Promise<TaskRecord[]> {
    return this.#transaction('recoverExpired', (client) => recoverExpired(client, this.#n, now));
  }

  get(id: TaskId): Promise<TaskRecord | undefined> {
    return this.#use('get', (db) => get(db, this.#n, id));
  }

  awaitEnd(ids: readonly TaskId[], owner: string): Promise<Set<TaskId>> {
    return this.#use('awaitEnd', (db) => awaitEnd(db, this.#n, ids, owner, this.#s.clock.now()));
  }

  states(ids: readonly TaskId[]): Promise<Map<TaskId, TaskState>> {
    return this.#use('states', (db) => states(db, this.#n, ids));
  }

  history(id: TaskId): Promise<Transition[]> {
    return this.#use('history', (db) => history(db, this.#n, id));
  }

  output(id: TaskId, after?: number, limit?: number): Promise<OutputLine[]> {
    return this.#use('output', (db) => output(db, this.#n, id, after, limit));
  }

  list(filter?: ListFilter): Promise<ListPage> {
    return this.#use('list', (db) => list(db, this.#n, filter));
  }

  counts(now: number): Promise<QueueCounts> {
    return this.#use('counts', (db) => counts(db, this.#n, now));
  }

  liveCounts(now: number): Promise<LiveCounts> {
    return this.#use('counts', (db) => liveCounts(db, this.#n, now));
  }

  nextRunAt(after?: number): Promise<number | undefined> {
    return this.#use('nextRunAt', (db) => nextRunAt(db, this.#n, after));
  }

  countFinished(from: number, to: number): Promise<FinishedCounts> {
    return this.#use('countFinished', (db) => countFinished(db, this.#n, from, to));
  }

  purge(request: PurgeRequest): Promise<number> {
    return this.#use('purge', (db) => purge(db, this.#n, request));
  }

  saveSchedule(schedule: ScheduleRecord): Promise<void> {
    return this.#use('saveSchedule', (db) => saveSchedule(db, this.#n, schedule));
  }

  getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    return this.#use('getSchedule', (db) => getSchedule(db, this.#n, id));
  }

  listSchedules(): Promise<ScheduleRecord[]> {
    return this.#use('listSchedules', (db) => listSchedules(db, this.#n));
  }

  deleteSchedule(id: string): Promise<boolean> {
    return this.#use('deleteSchedule', (db) => deleteSchedule(db, this.#n, id));
  }

  markScheduleSlot(id: string, slot: number): Promise<boolean> {
    return this.#use('markScheduleSlot', (db) => markScheduleSlot(db, this.#n, id, slot));
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.#use('getMeta', (db) => getMeta(db, this.#n, key));
  }

  setMeta(key: string, value: string | undefined): Promise<void> {
    return this.#use('setMeta', (db) => setMeta(db, this.#n, key, value));
  }

  editMetaSet(key: string, member: string, present: boolean): Promise<string[]> {
    return this.#use('editMetaSet', (db) => editMetaSet(db, this.#n, key, member, present));
  }

  controlVersion(): Promise<number> {
    return this.#use('controlVersion', (db) => controlVersion(db, this.#n));
  }

  /**
   * Inputs and results are stored as jsonb: besides what JSON cannot carry, a NUL character or an unpaired
   * surrogate in any string or key is refused (PostgreSQL's text cannot hold NUL; jsonb refuses both escapes).
   */
  unstorable(value: unknown, input = false): string | undefined {
    return jsonProblem(value, postgresTextProblem, input);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#status = StoreStatus.stopping;
    await this.#opening?.catch(() => undefined);
    try {
      await this.#listener?.close();
    } catch {
      // ending a dead connection can fail; the pool must still be ended
    }
    for (const pool of [this.#pool, this.#settlePool, this.#claimPool]) {
      try {
        await pool.end();
      } catch {
        // same: nothing left to release
      }
    }
    this.#wake.clear();
    this.#cancel.clear();
    this.#changes.clear();
    this.#status = StoreStatus.stopped;
  }

  /**
   * Runs one operation on the pool once open, mapping driver errors and tracking reachability. An operation that
   * PostgreSQL aborted to break a deadlock runs again, up to `ABORT_TRIES` times in all: each operation is one
   * statement, one transaction, or statements that can run twice (a heartbeat), so nothing is applied twice.
   */
  async #use<T>(operation: string, fn: (db: Pool) => Promise<T>, pool: Pool = this.#pool): Promise<T> {
    if (this.#status === StoreStatus.stopping || this.#status === StoreStatus.stopped) throw this.#closedError();
    await this.open();
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await fn(pool);
        this.#poolError = undefined;
        return result;
      } catch (error) {
        if (attempt < ABORT_TRIES && isAbortedToRetry(error)) continue;
        throw this.#fail(error, operation);
      }
    }
  }

  /** Runs `fn` inside BEGIN … COMMIT on one connection; a broken connection is discarded, not reused. */
  #transaction<T>(operation: string, fn: (client: PoolClient) => Promise<T>, pool: Pool = this.#pool): Promise<T> {
    return this.#use(operation, () =>
      this.#withClient(pool, async (client) => {
        await client.query('BEGIN');
        try {
          const result = await fn(client);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          if (!isConnectionError(error)) await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
    );
  }

  /**
   * Checks a client out for several statements. Out of the pool a client has no 'error' listener, and a
   * connection that drops between two statements would emit an unhandled 'error' (a crash): one is attached
   * meanwhile, and a client whose connection failed is destroyed on release instead of going back.
   */
  async #withClient<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    const onError = (error: Error): void => {
      broken = error;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (error) {
      if (isConnectionError(error)) broken ??= error as Error;
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  #fail(error: unknown, operation: string): TroupeError {
    const mapped = toStoreError(error, operation);
    if (mapped.code === ErrorCodes.STORE_UNAVAILABLE) this.#poolError = mapped.message;
    return mapped;
  }

  #closedError(): TroupeError {
    return new TroupeError(ErrorCodes.CLOSED, `The PostgreSQL store (schema "${this.#n.schema}") is closed`);
  }

  #dispatch(channel: string, payload: string): void {
    if (channel === this.#n.wakeChannel) {
      for (const fn of [...this.#wake]) {
        try {
          fn();
        } catch {
          // a subscriber's failure must not stop the others or the listener
        }
      }
    } else if (channel === this.#n.cancelChannel) {
      for (const fn of [...this.#cancel]) {
        try {
          fn(payload);
        } catch {
          // same as above
        }
      }
    } else if (channel === this.#n.endedChannel) {
      const ids = payload.split(' ').filter((id) => id.length > 0);
      if (ids.length > 0) this.#emitChange({ type: 'task.ended', ids });
    } else if (channel === this.#n.flowChannel) {
      let change: StoreChange;
      try {
        change = JSON.parse(payload) as StoreChange;
      } catch {
        return;
      }
      this.#emitChange(change);
    }
  }

  #emitChange(change: StoreChange): void {
    for (const fn of [...this.#changes]) {
      try {
        fn(change);
      } catch {
        // a subscriber's failure must not stop the others or the listener
      }
    }
  }
}
