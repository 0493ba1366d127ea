/**
 * The SQLite Store (better-sqlite3, WAL): the embedded default. One process, no server.
 *
 * better-sqlite3 is synchronous; each method runs its statements at once and resolves. Writes run in
 * `BEGIN IMMEDIATE` transactions, and a batch (enqueue of many tasks, a claim of many, a settle of many ops)
 * is one transaction: group commit is how the durable path reaches tens of thousands of tasks per second.
 * `synchronous=NORMAL` (default) may lose the last transactions on power loss but never corrupts the file;
 * `FULL` makes each commit durable at the cost of an fsync.
 *
 * `open()` refuses, with a coded error and without writing a byte, a file that is not a database or fails
 * `PRAGMA quick_check` (STORE_CORRUPT), one it cannot read or write (STORE_UNAVAILABLE), and one whose schema
 * is newer than this code (STORE_VERSION). All SQL lives in ./queries, one file per verb.
 */
import Database from 'better-sqlite3';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Clock } from '../../clock.ts';
import { ErrorCodes, TroupeError, invalidOption } from '../../errors.ts';
import type { TaskId } from '../../ids.ts';
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
  PurgeRequest,
  QueueCounts,
  ScheduleRecord,
  SettleOp,
  Store,
  StoreChange,
  StoreOptions,
  Strategy,
} from '../store.ts';
import { APPLICATION_ID, SCHEMA_VERSION, STRATEGY_INDEXES, ensureStrategyIndex, migrate } from './migrations.ts';
import { prepareCancel } from './queries/cancel.ts';
import { prepareClaim } from './queries/claim.ts';
import { prepareCountFinished } from './queries/count-finished.ts';
import { prepareCounts } from './queries/counts.ts';
import { prepareEnqueue } from './queries/enqueue.ts';
import { prepareEnqueueAndClaim } from './queries/enqueue-start.ts';
import { prepareFlow } from './queries/flow.ts';
import { prepareGet } from './queries/get.ts';
import { prepareHeartbeat } from './queries/heartbeat.ts';
import { prepareList } from './queries/list.ts';
import { prepareMeta } from './queries/meta.ts';
import { prepareNextRunAt } from './queries/next-run-at.ts';
import { prepareOutput } from './queries/output.ts';
import { PURGE_BATCH, preparePurge } from './queries/purge.ts';
import { prepareTransitionWriter } from './queries/record-transition.ts';
import { prepareRecoverExpired } from './queries/recover-expired.ts';
import { prepareRetry } from './queries/retry.ts';
import { prepareSchedules } from './queries/schedules.ts';
import { prepareSettle } from './queries/settle.ts';
import { jsonProblem } from '../json-value.ts';
import { Checkpointer, type CheckpointerOptions, type CheckpointStats } from './checkpointer.ts';

export interface SqliteStoreOptions extends StoreOptions {
  /** `NORMAL` survives a process crash; `FULL` also a power loss, at one fsync per commit. @default 'NORMAL' */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock before failing (ms). @default 5000 */
  busyTimeoutMs?: number;
  /**
   * Where WAL checkpoints run. `'thread'`: on a worker thread with its own connection (see checkpointer.ts), so no
   * commit on the main thread pays for one (the main connection checkpoints by itself only past 4000 pages, as a
   * backstop). `'inline'`: SQLite's default, inside the commit that fills the WAL to 1000 pages. A `:memory:`
   * database has no WAL. @default 'thread'
   */
  checkpoints?: 'thread' | 'inline';
  /** Tuning of the checkpoint thread: its intervals; `source` replaces its script (tests make it fail). */
  checkpointThread?: Partial<Omit<CheckpointerOptions, 'busyTimeoutMs'>>;
  /** Unused by the logic (every method takes its time), kept for symmetry with the other stores. */
  clock?: Clock;
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
/** SQLite's automatic checkpoint threshold (WAL pages). */
const DEFAULT_CHECKPOINT_PAGES = 1000;
/** The main connection's threshold while the checkpoint thread runs: reached only if the thread falls behind. */
const BACKSTOP_CHECKPOINT_PAGES = 4000;

const Status = { idle: 'idle', open: 'open', closed: 'closed' } as const;
type Status = (typeof Status)[keyof typeof Status];

type Prepared = ReturnType<typeof prepareAll>;

/** Why: the durable embedded store; `path` is a file (its directory is created) or `:memory:`. */
export function createSqliteStore(path: string, options: SqliteStoreOptions = {}): Store & AsyncDisposable & { readonly checkpointStats: CheckpointStats | undefined } {
  const synchronous = options.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw invalidOption('store.synchronous', "'NORMAL' or 'FULL'", synchronous);
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const checkpoints = options.checkpoints ?? 'thread';
  if (checkpoints !== 'thread' && checkpoints !== 'inline') throw invalidOption('store.checkpoints', "'thread' or 'inline'", checkpoints);
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw invalidOption('store.busyTimeoutMs', 'a non-negative integer', busyTimeoutMs);
  if (typeof path !== 'string' || path === '') throw invalidOption('store', 'a SQLite file path', path);
  return new SqliteStore(path, resolveStoreOptions(options), synchronous, busyTimeoutMs, checkpoints === 'thread' ? (options.checkpointThread ?? {}) : undefined);
}

function prepareAll(db: Database.Database, options: ResolvedStoreOptions) {
  const writer = prepareTransitionWriter(db);
  const { record } = writer;
  const flow = prepareFlow(db, record);
  /** A write transaction that also writes the state counts its transitions changed. */
  const tx = <A extends unknown[], R>(fn: (...args: A) => R) =>
    db.transaction((...args: A): R => {
      try {
        const result = fn(...args);
        writer.flush();
        return result;
      } catch (error) {
        writer.discard();
        flow.discard();
        throw error;
      }
    });
  const enqueue = prepareEnqueue(db, writer, flow);
  const claim = prepareClaim(db, options.strategy, options.random, writer, flow);
  const output = prepareOutput(db, options.maxOutputLines);
  const settle = prepareSettle(db, writer, output, flow);
  const schedules = prepareSchedules(db);
  const meta = prepareMeta(db);
  return {
    ...prepareGet(db),
    output,
    list: prepareList(db),
    // the oldest due task is read through the claim index of the strategy (the one the file is sure to have)
    counts: prepareCounts(db, STRATEGY_INDEXES[options.strategy].name),
    nextRunAt: prepareNextRunAt(db),
    countFinished: prepareCountFinished(db),
    schedules,
    meta,
    // Control changes move the control version in their own transaction (Store.controlVersion).
    saveSchedule: tx((schedule: ScheduleRecord) => {
      schedules.save(schedule);
      meta.bump();
    }),
    deleteSchedule: tx((id: string) => {
      const removed = schedules.delete(id);
      if (removed) meta.bump();
      return removed;
    }),
    editMetaSet: tx((key: string, member: string, present: boolean) => {
      const members = meta.editSet(key, member, present);
      meta.bump();
      return members;
    }),
    flow,
    enqueue: tx(enqueue),
    claim: tx(claim),
    enqueueAndClaim: tx(prepareEnqueueAndClaim(db, options.strategy, enqueue, claim)),
    settle: tx(settle),
    cancel: tx(prepareCancel(db, record, flow)),
    retry: tx(prepareRetry(db, record)),
    recover: tx(prepareRecoverExpired(db, record, flow)),
    heartbeat: tx(prepareHeartbeat(db)),
    purge: tx(preparePurge(db, writer)),
    markSlot: tx((id: string, slot: number) => schedules.markSlot(id, slot)),
  };
}

class SqliteStore implements Store, AsyncDisposable {
  readonly kind = 'sqlite' as const;
  readonly strategy: Strategy;
  readonly #path: string;
  readonly #options: ResolvedStoreOptions;
  readonly #synchronous: 'NORMAL' | 'FULL';
  readonly #busyTimeoutMs: number;
  #status: Status = Status.idle;
  #db: Database.Database | undefined;
  #q: Prepared | undefined;
  #listeners = new Set<(change: StoreChange) => void>();
  /** Options of the checkpoint thread; undefined: checkpoints stay inline. */
  readonly #checkpointThread: Partial<CheckpointerOptions> | undefined;
  #checkpointer: Checkpointer | undefined;

  constructor(path: string, options: ResolvedStoreOptions, synchronous: 'NORMAL' | 'FULL', busyTimeoutMs: number, checkpointThread: Partial<CheckpointerOptions> | undefined) {
    this.#checkpointThread = checkpointThread;
    this.#path = path === ':memory:' ? path : resolve(path);
    this.#options = options;
    this.strategy = options.strategy;
    this.#synchronous = synchronous;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  async open(): Promise<void> {
    if (this.#status === Status.open) return;
    if (this.#status === Status.closed) throw this.#closedError();
    const existing = this.#path === ':memory:' ? undefined : this.#checkFile();
    let db: Database.Database;
    try {
      db = new Database(this.#path, { timeout: this.#busyTimeoutMs });
    } catch (error) {
      throw this.#storeError(error, 'open');
    }
    try {
      this.#checkDatabase(db, existing);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.#synchronous}`);
      // Off: a parent lookup per output row is measurable; purge deletes a task's output itself.
      db.pragma('foreign_keys = OFF');
      migrate(db);
      ensureStrategyIndex(db, this.strategy);
      this.#q = prepareAll(db, this.#options);
    } catch (error) {
      db.close();
      throw this.#storeError(error, 'open');
    }
    this.#db = db;
    this.#status = Status.open;
  }

  /** The checkpoint thread starts with the first write of the hot paths: a store opened to read never has one. */
  #wrote(): void {
    if (this.#checkpointer === undefined && this.#checkpointThread && this.#db && this.#path !== ':memory:') this.#startCheckpointer(this.#db, this.#checkpointThread);
  }

  /** WAL checkpoints move to a thread; the main connection keeps a far backstop, and SQLite's own if the thread fails. */
  #startCheckpointer(db: Database.Database, options: Partial<CheckpointerOptions>): void {
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
    this.#checkpointer = new Checkpointer(this.#path, { ...options, busyTimeoutMs: this.#busyTimeoutMs }, () => {
      if (this.#db === db && db.open) db.pragma(`wal_autocheckpoint = ${DEFAULT_CHECKPOINT_PAGES}`);
    });
  }

  /** Where checkpoints run now, and what the thread did (undefined: `checkpoints: 'inline'` or `:memory:`). */
  get checkpointStats(): CheckpointStats | undefined {
    return this.#checkpointer?.stats;
  }

  async enqueue(tasks: readonly NewTask[]): Promise<EnqueueResult[]> {
    if (tasks.length === 0) return this.#run(() => []);
    this.#wrote();
    return this.#run((q) => q.enqueue.immediate(tasks));
  }

  async enqueueAndClaim(tasks: readonly NewTask[], request: ClaimRequest): Promise<EnqueueAndClaimResult> {
    this.#wrote();
    return this.#run((q) => q.enqueueAndClaim.immediate(tasks, request));
  }

  async claim(request: ClaimRequest): Promise<TaskRecord[]> {
    if (!(request.limit > 0)) return this.#run(() => []);
    return this.#run((q) => q.claim.immediate(request));
  }

  async heartbeat(owner: string, leaseUntil: number, ids?: readonly TaskId[]): Promise<number> {
    return this.#run((q) => q.heartbeat.immediate(owner, leaseUntil, ids));
  }

  async settle(ops: readonly SettleOp[]): Promise<boolean[]> {
    if (ops.length === 0) return this.#run(() => []);
    this.#wrote();
    return this.#run((q) => q.settle.immediate(ops));
  }

  async cancel(id: TaskId, at: number, reason?: string): Promise<CancelResult> {
    return this.#run((q) => q.cancel.immediate(id, at, reason));
  }

  async retry(id: TaskId, at: number): Promise<TaskRecord | undefined> {
    return this.#run((q) => q.retry.immediate(id, at));
  }

  async recoverExpired(now: number): Promise<TaskRecord[]> {
    return this.#run((q) => q.recover.immediate(now));
  }

  async get(id: TaskId): Promise<TaskRecord | undefined> {
    return this.#run((q) => q.get(id));
  }

  async states(ids: readonly TaskId[]): Promise<Map<TaskId, TaskState>> {
    return this.#run((q) => q.states(ids));
  }

  async history(id: TaskId): Promise<Transition[]> {
    return this.#run((q) => q.history(id));
  }

  async output(id: TaskId, after?: number, limit?: number): Promise<OutputLine[]> {
    return this.#run((q) => q.output.read(id, after, limit));
  }

  async list(filter?: ListFilter): Promise<ListPage> {
    return this.#run((q) => q.list(filter));
  }

  async counts(now: number): Promise<QueueCounts> {
    return this.#run((q) => q.counts(now));
  }

  async nextRunAt(after?: number): Promise<number | undefined> {
    return this.#run((q) => q.nextRunAt(after));
  }

  async countFinished(from: number, to: number): Promise<FinishedCounts> {
    return this.#run((q) => q.countFinished(from, to));
  }

  /** Deletes in transactions of PURGE_BATCH tasks, handing the event loop back between them. */
  async purge(request: PurgeRequest): Promise<number> {
    let removed = 0;
    for (;;) {
      const n = this.#run((q) => q.purge.immediate(request, PURGE_BATCH));
      removed += n;
      if (n < PURGE_BATCH) return removed;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async saveSchedule(schedule: ScheduleRecord): Promise<void> {
    this.#run((q) => q.saveSchedule.immediate(schedule));
    this.#emit([{ type: 'schedule.changed', id: schedule.id }]);
  }

  async getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    return this.#run((q) => q.schedules.get(id));
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.#run((q) => q.schedules.list());
  }

  async deleteSchedule(id: string): Promise<boolean> {
    const removed = this.#run((q) => q.deleteSchedule.immediate(id));
    if (removed) this.#emit([{ type: 'schedule.changed', id }]);
    return removed;
  }

  async markScheduleSlot(id: string, slot: number): Promise<boolean> {
    return this.#run((q) => q.markSlot.immediate(id, slot));
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.#run((q) => q.meta.get(key));
  }

  async setMeta(key: string, value: string | undefined): Promise<void> {
    this.#run((q) => q.meta.set(key, value));
  }

  /** One IMMEDIATE transaction: other processes on the file wait for it (busy timeout) instead of interleaving. */
  async editMetaSet(key: string, member: string, present: boolean): Promise<string[]> {
    const members = this.#run((q) => q.editMetaSet.immediate(key, member, present));
    this.#emit([{ type: 'meta.changed', key }]);
    return members;
  }

  async controlVersion(): Promise<number> {
    return this.#run((q) => q.meta.version());
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Inputs and results are stored as JSON text: a BigInt, a cycle, a function or a symbol cannot be. */
  unstorable(value: unknown, input = false): string | undefined {
    return jsonProblem(value, undefined, input);
  }

  async close(): Promise<void> {
    if (this.#status === Status.closed) return;
    this.#status = Status.closed;
    this.#listeners.clear();
    const db = this.#db;
    this.#db = undefined;
    this.#q = undefined;
    const checkpointer = this.#checkpointer;
    this.#checkpointer = undefined;
    await checkpointer?.close();
    if (db?.open) {
      try {
        db.pragma('optimize');
      } finally {
        db.close();
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #run<T>(fn: (q: Prepared) => T): T {
    const q = this.#q;
    if (this.#status !== Status.open || !q) {
      throw this.#status === Status.closed
        ? this.#closedError()
        : new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `The SQLite store ${this.#path} is not open: call open() first`);
    }
    let result: T;
    try {
      result = fn(q);
    } catch (error) {
      throw this.#storeError(error, 'query');
    }
    const changes = q.flow.take();
    if (changes.length > 0) this.#emit(changes);
    return result;
  }

  /** Hands committed changes (flow parents, debounced tasks) to the listeners. */
  #emit(changes: readonly StoreChange[]): void {
    for (const change of changes) {
      for (const fn of this.#listeners) {
        try {
          fn(change);
        } catch {
          // a listener's failure must not fail the verb that was committed
        }
      }
    }
  }

  /** Checks that need no SQLite: the directory, the file kind, permissions, and the header bytes. */
  #checkFile(): Stats | undefined {
    const dir = dirname(this.#path);
    try {
      makeDirectory(dir);
    } catch (error) {
      throw new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `Cannot create the directory ${dir} of the SQLite store: ${codeOf(error)}`, { cause: error });
    }
    let stat: Stats | undefined;
    try {
      stat = statSync(this.#path);
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') {
        throw new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `Cannot read the SQLite store ${this.#path}: ${codeOf(error)}`, { cause: error });
      }
    }
    const target = stat ? this.#path : dir;
    try {
      accessSync(target, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `The SQLite store ${target} is not readable and writable: ${codeOf(error)}`, { cause: error });
    }
    if (!stat) return undefined;
    if (!stat.isFile()) throw new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `The SQLite store ${this.#path} is not a regular file`);
    if (stat.size > 0) {
      const header = Buffer.alloc(SQLITE_HEADER.length);
      const fd = openSync(this.#path, 'r');
      try {
        readSync(fd, header, 0, header.length, 0);
      } finally {
        closeSync(fd);
      }
      if (!header.equals(SQLITE_HEADER)) {
        throw new TroupeError(ErrorCodes.STORE_CORRUPT, `The SQLite store ${this.#path} is not a SQLite database (bad header); it was left untouched`);
      }
    }
    return stat;
  }

  /** Read-only checks on an existing database, before anything is written to it. */
  #checkDatabase(db: Database.Database, existing: Stats | undefined): void {
    if (!existing || existing.size === 0) return;
    const version = db.pragma('user_version', { simple: true }) as number;
    const appId = db.pragma('application_id', { simple: true }) as number;
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      throw new TroupeError(ErrorCodes.STORE_CORRUPT, `The SQLite store ${this.#path} failed its integrity check (${String(check)}); it was left untouched`);
    }
    if (appId !== APPLICATION_ID && (appId !== 0 || version !== 0 || this.#hasTables(db))) {
      throw new TroupeError(ErrorCodes.STORE_CORRUPT, `${this.#path} is a SQLite database of another application; it was left untouched`);
    }
    if (version > SCHEMA_VERSION) {
      throw new TroupeError(
        ErrorCodes.STORE_VERSION,
        `The SQLite store ${this.#path} has schema version ${version}, newer than this troupe's ${SCHEMA_VERSION}; upgrade troupe to open it`,
        { details: { version, supported: SCHEMA_VERSION } },
      );
    }
  }

  #hasTables(db: Database.Database): boolean {
    return db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' LIMIT 1").get() !== undefined;
  }

  #closedError(): TroupeError {
    return new TroupeError(ErrorCodes.CLOSED, `The SQLite store ${this.#path} is closed`);
  }

  /** Maps SQLite failures onto the store codes a caller can branch on. */
  #storeError(error: unknown, during: 'open' | 'query'): TroupeError {
    if (error instanceof TroupeError) return error;
    const code = codeOf(error) ?? '';
    const message = error instanceof Error ? error.message : String(error);
    if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT_')) {
      return new TroupeError(ErrorCodes.STORE_CORRUPT, `The SQLite store ${this.#path} is corrupt: ${message}`, { cause: error });
    }
    if (/^SQLITE_(BUSY|LOCKED|READONLY|CANTOPEN|FULL|IOERR|PERM|AUTH)/.test(code)) {
      return new TroupeError(ErrorCodes.STORE_UNAVAILABLE, `The SQLite store ${this.#path} is unavailable (${code}) during ${during}: ${message}`, { cause: error });
    }
    return new TroupeError(ErrorCodes.STORE, `The SQLite store ${this.#path} failed during ${during}: ${message}`, { cause: error });
  }
}

/**
 * `mkdir -p`, one level at a time: Node 20's `mkdirSync(…, { recursive: true })` never returns for a path the
 * kernel refuses with ENOENT (e.g. under /proc).
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let current = dir; !existsSync(current); current = dirname(current)) {
    missing.push(current);
    if (dirname(current) === current) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') throw error;
    }
  }
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
