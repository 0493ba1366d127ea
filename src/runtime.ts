/**
 * The Runtime facade: one object over all the patterns (run, start, runAll, enqueue, schedule, advise). It
 * validates at the door — unknown names, bad input, bad options are refused before anything is stored — and
 * talks only to the orchestrator. This file also assembles the supervision tree:
 *
 *   root (one-for-one)
 *   ├── orchestrator   routes
 *   ├── tracker        store, group commit, leases, facts
 *   ├── scheduler      claims in strategy order, periodic slots
 *   └── executor       capacity, task actors (its children), thread pool / subprocesses / inline
 */
import os from 'node:os';
import path from 'node:path';
import type { TreeNode } from './actor/actor.ts';
import { Supervisor } from './actor/supervisor.ts';
import { Requester, type ReplyReceiver } from './bus/requester.ts';
import { Bus } from './bus/bus.ts';
import type { Inspection } from './bus/message.ts';
import { adviseFromTraits, type Advice, type TaskTraits } from './advisor.ts';
import { deserializeError, ErrorCodes, invalidOption, isTroupeError, serializeError, TroupeError, type SerializedError } from './errors.ts';
import { createNodeId, createTaskId, isTaskId, type TaskId } from './ids.ts';
import { resolveOptions, resolvePrefetch, plainObject, positiveInteger, type ResolvedOptions, type RuntimeOptions, type RetryOptions } from './options.ts';
import type { TimerHandle } from './clock.ts';
import { Orchestrator } from './orchestrator.ts';
import { createThreadPool, type ThreadPool } from './pool/thread-pool.ts';
import { activeCommandPids, runCommand, type CommandSpec } from './process/run-command.ts';
import { spawnServerInfo, warmSpawnServer } from './process/spawn-client.ts';
import { hasBadText, jsonProblem } from './store/json-value.ts';
import { Registry, type ResolvedTask, type TaskDefinition } from './registry.ts';
import { resolveRetryPolicy } from './schedule/backoff.ts';
import { validateScheduleSpec } from './schedule/cron.ts';
import { openStore } from './store/open-store.ts';
import type { CancelResult, EnqueueResult, ListFilter, ListPage, LiveCounts, QueueCounts, ScheduleRecord, Store } from './store/store.ts';
import { HandleState, type TaskHandle } from './task-handle.ts';
import { checkKey, debounceRunAt, PRIORITY_LIMIT, resolveDedup, type DedupOptions } from './dedup.ts';
import { buildFlowTasks, type FlowSpec } from './flow-spec.ts';
import type { RateLimit, StoreChange } from './store/store.ts';
import { isFinalState, isTaskState, TASK_STATES, timingsOf, type DedupSpec, type FlowState, type NewTask, type OutputLine, type Progress, type TaskRecord, type TaskState, type Timings, type Transition } from './task.ts';
import { loadTelemetry, type Telemetry } from './telemetry.ts';
import { createStatsPersister, restoreStats, StatsBook, type StatsPersister } from './advice/stats-book.ts';
import { recommend, type TaskAdvice } from './advice/recommend.ts';
import { nextSlot } from './schedule/cron.ts';
import { soon } from './soon.ts';
import { resolveAdaptiveLimitOptions } from '../actors/executor/adaptive-limit.ts';
import { MAX_DURATION_MS, parseDuration, type Duration } from './units.ts';
import { Executor } from '../actors/executor/executor.ts';
import type { TroupeMessage } from '../actors/messages.ts';
import { Scheduler } from '../actors/scheduler/scheduler.ts';
import { isOutcome, TASK_FACT_TYPES, type TaskFact, type TaskFactType, type TaskOutcome } from '../actors/task/messages.ts';
import type { TaskActor } from '../actors/task/task-actor.ts';
import type { Reply } from '../actors/tracker/messages.ts';
import { Tracker } from '../actors/tracker/tracker.ts';
import { TrackerBacklog } from '../actors/tracker/backlog.ts';
import { DispatchIntake } from '../actors/executor/intake.ts';
import { registerBuiltinTasks, type BuiltinServices } from '../actors/maintenance/builtin-tasks.ts';

export const RuntimeStatus = { idle: 'idle', running: 'running', stopping: 'stopping', stopped: 'stopped' } as const;
export type RuntimeStatus = (typeof RuntimeStatus)[keyof typeof RuntimeStatus];

/** Options of one enqueue. */
export interface EnqueueOptions {
  /** Higher runs first under the `priority` strategy. @default the definition's, else 0 */
  priority?: number;
  /** Chance under `weighted-random` is proportional to this. @default 1 */
  weight?: number;
  /** Wait this long before the task may run. */
  delay?: Duration;
  /** Run at (or after) this time. */
  runAt?: Date | number;
  /** Idempotency key: a second enqueue with the same key returns the first task, whatever its state. */
  key?: string;
  /** Override of the definition's timeout for this task. */
  timeout?: Duration;
  /** Override of the definition's retry policy for this task. */
  retry?: RetryOptions;
  /** Group key (a tenant, a customer): the definition's `groupConcurrency` and `rateLimit: { by: 'group' }` apply per group; `rt.pauseGroup()` holds it. */
  group?: string;
  /** Debounce or throttle against earlier enqueues of this name with the same key (not with `key`). */
  dedup?: DedupOptions;
}

/** A task as `get`/`list` show it. */
export interface TaskView {
  id: TaskId;
  name: string;
  state: TaskState;
  input: unknown;
  result?: unknown;
  error?: SerializedError;
  attempts: number;
  maxAttempts: number;
  priority: number;
  weight: number;
  key?: string;
  progress?: Progress;
  timings: Timings;
  owner?: string;
  scheduleId?: string;
  group?: string;
  dedupKey?: string;
  /** The flow parent of this task. */
  parentId?: TaskId;
  /** On a flow parent: children not final yet, and the failure policy. */
  flow?: FlowState;
  history?: Transition[];
}

export type Settled<T = unknown> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: TroupeError };

export interface ScheduleOptions {
  cron?: string;
  every?: Duration;
  timezone?: string;
  /**
   * What to do when a slot comes while the previous run is not done: `skip` drops the slot; `queue` enqueues it
   * unless one already waits (it waits behind the running one only under the task's own limits, e.g.
   * `concurrency: 1`, else it runs beside it); `allow` always enqueues. @default 'skip'
   */
  overlap?: 'skip' | 'queue' | 'allow';
  /** Stable id; creating a schedule with an existing id replaces it. @default the task name */
  id?: string;
}

export interface CloseOptions {
  /** How long running tasks may finish before they are stopped (and given back to the queue). @default '10s' */
  timeout?: Duration;
  /** Stop running tasks at once. */
  force?: boolean;
}

export interface CreateRuntimeOptions extends RuntimeOptions {
  /** Tasks to register at creation. */
  tasks?: Record<string, TaskDefinition<any, any>>;
  /** Folder that relative handler paths and command cwds resolve against. @default process.cwd() */
  baseDir?: string;
}

const ROOT = 'root';
const ORCH = 'orchestrator';
const SELF = 'runtime';
const ENQUEUE_KEYS = new Set(['priority', 'weight', 'delay', 'runAt', 'key', 'timeout', 'retry', 'group', 'dedup']);
const GROUP_KEY = /^[^\u0000-\u001f]{1,256}$/;
const SCHEDULE_KEYS = new Set(['cron', 'every', 'timezone', 'overlap', 'id']);
/** The store setting that lists the schedules the last applied config file defined (replaceConfigSchedules). */
const CONFIG_SCHEDULES_KEY = 'config-schedules';
/** An awaited task is first read from the store this long after the wait began (see #watchAwaited)… */
const AWAIT_FIRST_MS = 200;
/** …then at doubling gaps up to this; the timer wakes for the earliest due read, at most AWAIT_READ_MAX a read. */
const AWAIT_GAP_MAX_MS = 2000;
/**
 * @internal How often a follower of a task's output (the HTTP stream, `troupe logs -f`, the REPL) reads the stored
 * lines of a task that does not run on its node: a node hears only its own tasks' lines, so those of a task another
 * node runs on a shared store are sent as that node stores them.
 */
export const ELSEWHERE_POLL_MS = 500;
/** @internal Beyond a task's kill grace, how long a follower waits for another node's `task.stopped` (see stopWaitMs). */
export const REMOTE_STOP_MARGIN_MS = 5000;
/** The shortest wait of the read timer: reads due within it go together. */
const AWAIT_TICK_MS = 100;
const AWAIT_READ_MAX = 500;

/** The enqueue request of a batch of run() tasks. */
/**
 * How often a node reads the store's control version (schedules, paused names and groups changed by other
 * processes; Scheduler `controlSyncMs`). SQLite sends no notifications: every second, one read of one row. On
 * PostgreSQL changes arrive by NOTIFY at once, and a LISTEN connection that comes back reads everything again;
 * the check is only the safety net under that, at the lease sweep's pace (lease ÷ 2, at least a second). A memory
 * store is one process's: its runtimes hear its changes directly.
 */
function controlSyncMs(kind: Store['kind'], leaseMs: number): number {
  if (kind === 'sqlite') return 1000;
  if (kind === 'postgres') return Math.max(1000, Math.floor(leaseMs / 2));
  return 0;
}

/** `spawn: 'direct'`: command tasks fork from this process, through execa. */
function runCommandDirect(spec: CommandSpec) {
  return runCommand({ ...spec, spawn: 'direct' });
}

function buildRunsEnqueue(replyTo: string, tasks: NewTask[]): TroupeMessage {
  return { type: 'tracker.enqueue', tasks, replyTo };
}

/** Creates and starts a runtime: opens (and migrates) the store, starts the tree, recovers expired leases. */
export async function createRuntime(options: CreateRuntimeOptions = {}): Promise<Runtime> {
  const { tasks, baseDir, ...rest } = (options ?? {}) as CreateRuntimeOptions;
  const resolved = resolveOptions(rest);
  const registry = new Registry(resolved, baseDir ?? process.cwd(), (bounds, path) => void resolveAdaptiveLimitOptions(bounds, path));
  if (tasks !== undefined) {
    for (const [name, def] of Object.entries(plainObject(tasks, 'tasks'))) registry.register(name, def as TaskDefinition);
  }
  const store = await openStore(resolved.store, {
    strategy: resolved.strategy,
    random: resolved.random,
    maxOutputLines: resolved.output.maxLines,
    clock: resolved.clock,
    synchronous: resolved.synchronous,
    checkpoints: resolved.checkpoints,
  });
  const runtime = new Runtime(resolved, registry, store);
  try {
    await runtime.boot();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return runtime;
}

export class Runtime implements AsyncDisposable {
  readonly options: ResolvedOptions;
  readonly nodeId: string;
  readonly #registry: Registry;
  readonly #store: Store;
  readonly #bus: Bus<TroupeMessage>;
  readonly #root: Supervisor<TroupeMessage>;
  readonly #requester: Requester<TroupeMessage, Reply>;
  #status: RuntimeStatus = RuntimeStatus.idle;
  /** Whether this runtime asked for the spawn server already (see #warmSpawnServer). */
  #warmed = false;
  #pool: ThreadPool | undefined;
  #handles = new Map<TaskId, HandleState<any>>();
  #waiters = new Map<TaskId, Array<{ resolve: (v: unknown) => void; reject: (e: unknown) => void }>>();
  #closing: Promise<void> | undefined;
  #startedAt: number;
  #lastProgressAt: number;
  #escalation: TroupeError | undefined;
  #unsubscribes: Array<() => void> = [];
  #builtin: BuiltinServices | undefined;
  #telemetry: Telemetry | undefined;
  readonly #stats: StatsBook;
  #statsPersister: StatsPersister | undefined;
  /** Reads of the statistics of names registered after start (close waits for them before the last write). */
  readonly #statsReads = new Set<Promise<unknown>>();
  #limits: { groupLimits?: Record<string, number>; rateLimits?: Record<string, RateLimit> } | undefined;
  /** Tasks of `run()` calls made in this microtask turn: stored with one enqueue message (see #flushRuns). */
  #runBatch: NewTask[] = [];
  /** Awaited tasks another node may run, read again from the store (see #watchAwaited): when next, and the gap. */
  readonly #awaited = new Map<TaskId, { next: number; gap: number; marked?: true; seen?: true }>();
  #awaitTimer: TimerHandle | undefined;
  /** When #awaitTimer fires (clock time). */
  #awaitTimerAt = 0;
  #awaitReading = false;

  /** @internal Use `createRuntime()`. */
  constructor(options: ResolvedOptions, registry: Registry, store: Store) {
    this.options = options;
    this.#registry = registry;
    this.#store = store;
    this.#startedAt = options.clock.now();
    this.#lastProgressAt = this.#startedAt;
    this.nodeId = options.nodeId ?? createNodeId(os.hostname(), process.pid, this.#startedAt);
    this.#bus = new Bus<TroupeMessage>(options.clock);
    this.#requester = new Requester<TroupeMessage, Reply>(this.#bus, `${SELF}/req`);
    this.#stats = new StatsBook({ clock: options.clock });
    this.#root = new Supervisor<TroupeMessage>(this.#bus, options.clock, {
      address: ROOT,
      strategy: 'one-for-one',
      intensity: { maxRestarts: options.supervisor.maxRestarts, withinMs: options.supervisor.withinMs },
      onEscalate: (error) => this.#onEscalate(error),
      onCrash: (address, error) => options.logger.error('actor crashed', { address, error: serializeError(error).message }),
    });
  }

  /** `idle` → `running` → `stopping` → `stopped`. */
  get status(): RuntimeStatus {
    return this.#status;
  }

  /** @internal Starts the tree (called by createRuntime). */
  async boot(): Promise<void> {
    if (this.#status !== RuntimeStatus.idle) return;
    const o = this.options;
    const clock = o.clock;
    const store = this.#store;
    this.#root.on({
      crashed: (address, error) => this.#bus.publish(ROOT, { type: 'actor.crashed', address, error: serializeError(error), at: clock.now() }),
      restarted: (address, restarts) => this.#bus.publish(ROOT, { type: 'actor.restarted', address, restarts, at: clock.now() }),
      escalated: (address, error) => this.#bus.publish(ROOT, { type: 'actor.escalated', address, error: serializeError(error), at: clock.now() }),
    });
    this.#subscribeFacts();
    if (o.telemetry) this.#telemetry = await loadTelemetry();
    if (o.maintenance) {
      const spec = typeof o.store === 'string' ? o.store : '';
      const file = spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : /\.(db|sqlite3?)$/i.test(spec) ? spec : undefined;
      const diskPath = file && file !== ':memory:' ? path.dirname(path.resolve(file)) : undefined;
      this.#builtin = registerBuiltinTasks(this.#registry, { store, clock, tempRoot: o.tempDir, pids: () => this.pids(), counts: () => store.counts(clock.now()), ...(diskPath ? { diskPath } : {}) });
    }

    const restored = await restoreStats(this.#stats, store, this.#registry.names());
    if (restored.unreadable.length) o.logger.warn('stored task statistics could not be read', { names: restored.unreadable });
    this.#statsPersister = createStatsPersister({ book: this.#stats, store, clock, onError: (error) => o.logger.warn('task statistics not saved', { error: serializeError(error).message }) });
    await this.#root.startChild({ address: ORCH, create: (ctx) => new Orchestrator(ctx, { scheduler: 'scheduler', executor: 'executor', tracker: 'tracker' }) });
    // What a crashed tracker had queued and not written, written by its successor (TrackerDeps.backlog).
    const backlog = new TrackerBacklog();
    await this.#root.startChild({
      address: 'tracker',
      create: (ctx) => new Tracker(ctx, { store, clock, owner: this.nodeId, leaseMs: o.leaseMs, heartbeatMs: o.heartbeatMs, logger: o.logger, orchestrator: ORCH, backlog }),
    });
    await this.#root.startChild({
      address: 'scheduler',
      create: (ctx) =>
        new Scheduler(ctx, {
          store,
          clock,
          owner: this.nodeId,
          leaseMs: o.leaseMs,
          claimBatch: o.claimBatch,
          logger: o.logger,
          orchestrator: ORCH,
          names: () => this.#registry.names(),
          createTask: (name, input, extra) => this.#buildTask(name, input, {}, extra),
          pollMs: store.kind === 'memory' ? 0 : 1000,
          shared: store.kind === 'postgres',
          claimsInFlight: store.kind === 'postgres' ? 2 : 1,
          onSlot: (task, scheduleId, overlapped) => this.#stats.observeOverlap(task, scheduleId, overlapped),
          limits: () => this.#claimLimits(),
          controlSyncMs: controlSyncMs(store.kind, o.leaseMs),
        }),
    });
    // The runs a stopped executor still ends, named by its successor when leases are renewed (ExecutorDeps.ending).
    const ending = new Set<TaskActor>();
    // The tasks of a dispatch that crashed an executor, given back by its successor (ExecutorDeps.intake).
    const intake = new DispatchIntake();
    await this.#root.startChild({
      address: 'executor',
      create: (ctx) =>
        new Executor(ctx, {
          registry: this.#registry,
          clock,
          owner: this.nodeId,
          concurrency: o.concurrency,
          prefetch: resolvePrefetch(o.prefetch, store.kind, o.concurrency, o.claimBatch),
          claimBatch: o.claimBatch,
          leaseMs: o.leaseMs,
          logger: o.logger,
          random: o.random,
          orchestrator: ORCH,
          pool: () => this.#threadPool(),
          runCommand: o.spawn === 'direct' ? runCommandDirect : runCommand,
          ...(o.spawn === 'server' ? { spawnServer: spawnServerInfo } : {}),
          ...(store.unstorable ? { unstorable: (value: unknown) => store.unstorable!(value) } : {}),
          ...(this.#telemetry ? { telemetry: this.#telemetry } : {}),
          stats: this.#stats,
          readTask: (id) => store.get(id),
          tempDir: o.tempDir,
          ending,
          intake,
          heartbeatMs: o.heartbeatMs,
          renewLeases: (ids) => store.heartbeat(this.nodeId, clock.now() + o.leaseMs, ids),
          // Other processes may cancel a task that runs here; a store that does not say so is read for it.
          ...(store.kind !== 'memory' && typeof (store as { onCancel?: unknown }).onCancel !== 'function' && store.states
            ? { readStates: (ids: readonly TaskId[]) => store.states!(ids) }
            : {}),
        }),
    });
    const wakeable = store as Store & { onWake?: (fn: () => void) => () => void; onCancel?: (fn: (id: string) => void) => () => void };
    if (typeof wakeable.onWake === 'function') {
      this.#unsubscribes.push(wakeable.onWake(() => this.#tell({ type: 'scheduler.wake', reason: 'notified' })));
    }
    if (typeof wakeable.onCancel === 'function') {
      this.#unsubscribes.push(
        wakeable.onCancel((id) => {
          this.#tell({ type: 'executor.abort', id, reason: 'cancel' });
          // Cancelled on another node: a caller here hears it now (a cancel is final at once).
          if (this.#awaited.has(id)) this.#onStoreChange({ type: 'task.ended', ids: [id] });
        }),
      );
    }
    if (typeof store.onChange === 'function') this.#unsubscribes.push(store.onChange((change) => this.#onStoreChange(change)));
    if (this.#registry.list().some((def) => def.kind === 'command')) this.#warmSpawnServer();
    this.#status = RuntimeStatus.running;
    this.#bus.publish(SELF, { type: 'runtime.status', status: 'running', at: clock.now() });
  }

  /**
   * Starts the spawn server (`spawn: 'server'`) once a command task is registered, at start or later, so that the
   * first command need not wait for it; a server that cannot start is logged (commands then fork from this process).
   */
  #warmSpawnServer(): void {
    if (this.#warmed || this.options.spawn !== 'server') return;
    this.#warmed = true;
    void warmSpawnServer().then((ready) => {
      if (!ready) this.options.logger.warn('the spawn server could not start: command tasks fork from this process', { error: spawnServerInfo().error });
    });
  }

  // ── registry ────────────────────────────────────────────────────────────────────────────────────────────

  /** Registers a task by name. The registry is the security boundary: only registered names can run. */
  register<I = unknown, O = unknown>(name: string, definition: TaskDefinition<I, O>): this {
    const resolved = this.#registry.register(name, definition as TaskDefinition);
    if (resolved.kind === 'command' && this.#status === RuntimeStatus.running) this.#warmSpawnServer();
    // The names known at start had their statistics read then; a later one has them read now.
    if (this.#statsPersister) this.#restoreStatsOf(name);
    this.#limits = undefined;
    this.#tell({ type: 'executor.poke' });
    this.#tell({ type: 'scheduler.wake', reason: 'registered' });
    return this;
  }

  /** Reads the stored statistics of a name registered after start; they are not written before they are read. */
  #restoreStatsOf(name: string): void {
    const loading = this.#stats.loading(name);
    const warn = (error?: unknown): void =>
      this.options.logger.warn('stored task statistics could not be read', { names: [name], ...(error ? { error: serializeError(error).message } : {}) });
    const read = restoreStats(this.#stats, this.#store, [name])
      .then((r) => r.unreadable.length > 0 && warn(), warn)
      .finally(() => {
        loading.done();
        this.#statsReads.delete(read);
      });
    this.#statsReads.add(read);
  }

  /** Registered task names (built-in maintenance tasks included). */
  tasks(): Array<{ name: string; kind: ResolvedTask['kind']; builtin: boolean; description?: string; concurrency?: number }> {
    return this.#registry.list().map((t) => ({ name: t.name, kind: t.kind, builtin: t.builtin, ...(t.description ? { description: t.description } : {}), ...(t.concurrency ? { concurrency: t.concurrency } : {}) }));
  }

  // ── P1–P4 ──────────────────────────────────────────────────────────────────────────────────────────────

  /** P1: runs a task and resolves with its result, or rejects with a TroupeError. */
  run<O = unknown>(name: string, input?: unknown, options?: EnqueueOptions): Promise<O> {
    let task: NewTask | Promise<NewTask>;
    try {
      task = this.#makeTask(name, input, options ?? {});
    } catch (error) {
      return Promise.reject(error);
    }
    if (task instanceof Promise) return task.then((t) => this.#runTask(t)) as Promise<O>;
    return this.#runTask(task) as Promise<O>;
  }

  /** Waits for the task's outcome and queues it for the next #flushRuns. */
  #runTask(task: NewTask): Promise<unknown> {
    const waiting = this.#wait(task.id);
    if (this.#runBatch.push(task) === 1) soon(this.#flushRuns);
    return waiting;
  }

  /**
   * Stores the tasks of the `run()` calls made in one microtask turn with one enqueue message: a burst of runs
   * costs one request and one reply instead of one each. A task whose key matched an existing one waits for
   * that task's outcome; when the enqueue fails, the runs of the batch reject with its error.
   */
  readonly #flushRuns = (): void => {
    const tasks = this.#runBatch;
    this.#runBatch = [];
    this.#submitRuns(tasks);
  };

  /** Enqueues the tasks of run() calls; when the store refuses a batch of several, each is tried alone. */
  #submitRuns(tasks: NewTask[]): void {
    // The enqueue request straight to the requester, its reply read in one callback: no async frames and awaits
    // around it (the way `#submit` goes) on the way of every run.
    try {
      this.#assertOpen();
    } catch (error) {
      this.#runsFailed(tasks, error);
      return;
    }
    this.#requester.send(SELF, ORCH, buildRunsEnqueue, this.#runsReceiver, tasks);
  }

  /** Takes the replies to every batch of run() tasks (the batch travels as the request's context). */
  readonly #runsReceiver: ReplyReceiver<Reply, NewTask[]> = {
    onReply: (reply, tasks) => {
      if (reply.ok) this.#runsStored(tasks, reply.value as EnqueueResult[]);
      else this.#runsFailed(tasks, deserializeError(reply.error));
    },
    onError: (error, tasks) => this.#runsFailed(tasks, error),
  };

  /** The tasks of run() calls are stored: a task whose key matched an existing one waits for that one's outcome. */
  #runsStored(tasks: NewTask[], results: EnqueueResult[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const r = results[i];
      if (r === undefined || r.created) continue;
      const id = tasks[i]!.id;
      const waiters = this.#waiters.get(id);
      this.#outcomeOf(r.id, id).catch((error: unknown) => {
        for (const w of waiters ?? []) w.reject(error);
      });
    }
  }

  /** The enqueue of run() calls failed: each is tried alone when the store refused a batch of several. */
  #runsFailed(tasks: NewTask[], error: unknown): void {
    if (tasks.length > 1 && isTroupeError(error) && error.code === ErrorCodes.STORE) {
      // One caller's task may be what the store refused: the others must not fail for it.
      for (const t of tasks) this.#submitRuns([t]);
      return;
    }
    for (const t of tasks) {
      const waiters = this.#waiters.get(t.id);
      this.#waiters.delete(t.id);
      for (const w of waiters ?? []) w.reject(error);
    }
  }

  /** P2: starts a task and returns a handle to watch its output and progress, await its result, or cancel it. */
  start<O = unknown>(name: string, input?: unknown, options?: Omit<EnqueueOptions, 'key' | 'dedup'>): TaskHandle<O> {
    this.#assertOpen();
    const def = this.#registry.require(name);
    if (options && 'key' in options) throw invalidOption('options.key', 'absent (start() always creates a new task)', (options as EnqueueOptions).key);
    if (options && 'dedup' in options) throw invalidOption('options.dedup', 'absent (start() always creates a new task)', (options as EnqueueOptions).dedup);
    const id = createTaskId(this.options.clock.now());
    const handle = new HandleState<O>(id, name, def.output, (taskId) => this.cancel(taskId));
    this.#handles.set(id, handle);
    this.#watchAwaited(id);
    this.#buildTask(name, input, options ?? {}, { id })
      .then((task) => this.#submit([task]))
      .catch((error: unknown) => {
        this.#handles.delete(id);
        handle.end();
        handle.reject(error);
      });
    return handle;
  }

  /** P3: runs many tasks with at most `concurrency` at once; never rejects; results in input order. */
  async runAll<O = unknown>(items: ReadonlyArray<{ name: string; input?: unknown; options?: EnqueueOptions }>, { concurrency = this.options.concurrency }: { concurrency?: number } = {}): Promise<Array<Settled<O>>> {
    if (!Array.isArray(items)) throw invalidOption('items', 'an array of { name, input }', items);
    positiveInteger(concurrency, 'concurrency');
    const out = new Array<Settled<O>>(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        const item = items[i]!;
        try {
          out[i] = { status: 'fulfilled', value: await this.run<O>(item?.name, item?.input, item?.options) };
        } catch (error) {
          out[i] = { status: 'rejected', reason: toTroupeError(error) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    return out;
  }

  /** P4: stores a task and resolves with its id once committed; the outcome is tracked. */
  async enqueue(name: string, input?: unknown, options?: EnqueueOptions): Promise<TaskId> {
    const task = await this.#buildTask(name, input, options ?? {});
    const [result] = await this.#submit([task]);
    return result!.id;
  }

  /** Stores many tasks in one transaction; resolves with their ids in order. All are validated first. */
  async enqueueMany(items: ReadonlyArray<{ name: string; input?: unknown; options?: EnqueueOptions }>): Promise<TaskId[]> {
    if (!Array.isArray(items)) throw invalidOption('items', 'an array of { name, input, options }', items);
    const tasks = await Promise.all(items.map((item, i) => this.#buildTask(item?.name, item?.input, item?.options ?? {}, undefined, `items[${i}]`)));
    const results = await this.#submit(tasks);
    return results.map((r) => r.id);
  }

  /** A task with its history, or undefined. */
  async get(id: TaskId): Promise<TaskView | undefined> {
    if (!isTaskId(id)) return undefined;
    const value = (await this.#query({ kind: 'get', id, history: true })) as { task: TaskRecord; history: Transition[] } | undefined;
    return value ? toView(value.task, value.history) : undefined;
  }

  /** Tasks, newest first, filtered and paged by cursor. */
  async list(filter: ListFilter = {}): Promise<{ tasks: TaskView[]; nextCursor?: string }> {
    const page = (await this.#query({ kind: 'list', filter: checkListFilter(filter) })) as ListPage;
    return { tasks: page.tasks.map((t) => toView(t)), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }

  /**
   * @internal Settles once the task is final, wherever it ran (rejecting with its error when it failed, or with
   * `TROUPE_ERR_CLOSED` when this runtime closes first; at once for a task already final): for followers of a task such as the HTTP output stream,
   * which otherwise hear only this node's facts. On a shared store the task is read again meanwhile, as for
   * `run()` (see #watchAwaited). Aborting `signal` withdraws the wait (the promise then never settles), so a
   * follower that goes away leaves nothing read for it.
   */
  whenFinal(id: TaskId, signal?: AbortSignal): Promise<unknown> {
    if (signal?.aborted) return new Promise(() => {});
    const waiting = this.#wait(id, signal);
    // Already final (no fact will come): its stored outcome, as for a key that matched a final task.
    this.get(id).then(
      (view) => {
        if (view && isFinalState(view.state)) this.#deliver(outcomeFromView(view));
      },
      () => {},
    );
    return waiting;
  }

  /**
   * @internal How long a follower of a task cancelled while it ran waits for its `task.stopped` (the run's last
   * lines are stored by then) before it ends anyway: no limit for a run on this node (the executor says when it
   * stopped); for a run on another node whose stop the store announces (PostgreSQL), its kill grace and
   * REMOTE_STOP_MARGIN_MS (that node may have died meanwhile); `undefined` when no stop will be heard here (the
   * follower ends at the cancel).
   */
  stopWaitMs(fact: { name: string; previous: TaskState; owner?: string | undefined }): number | undefined {
    if (fact.previous !== 'running' || fact.owner === undefined) return undefined;
    if (fact.owner === this.nodeId) return Infinity;
    if (typeof this.#store.announceStopped !== 'function') return undefined;
    return (this.#registry.get(fact.name)?.killGraceMs ?? this.options.killGraceMs) + REMOTE_STOP_MARGIN_MS;
  }

  /** Captured output lines with `seq > after`. */
  async output(id: TaskId, { after, limit }: { after?: number; limit?: number } = {}): Promise<OutputLine[]> {
    if (!isTaskId(id)) return [];
    return (await this.#query({ kind: 'output', id, ...(after !== undefined ? { after } : {}), ...(limit !== undefined ? { limit } : {}) })) as OutputLine[];
  }

  /** Task counts by state and the age of the oldest due task. */
  async counts(): Promise<QueueCounts> {
    return (await this.#query({ kind: 'counts' })) as QueueCounts;
  }

  /**
   * `counts()` for the tasks that have not ended only (scheduled, queued, retrying, running), with the due count and
   * the oldest due time: what `GET /api/health` reads on every probe. Its cost follows those tasks, not the finished
   * ones the store keeps (on PostgreSQL a count of every state reads the whole table).
   */
  async liveCounts(): Promise<LiveCounts> {
    const counts = (await this.#query({ kind: 'counts', live: true })) as LiveCounts;
    const { scheduled, queued, retrying, running } = counts.byState;
    return { ...counts, byState: { scheduled, queued, retrying, running } };
  }

  /** Subscribes to task facts (`task.succeeded`, …) or actor/runtime facts. */
  on<T extends TroupeMessage['type']>(type: T, listener: (fact: Extract<TroupeMessage, { type: T }>) => void): () => void {
    return this.#bus.subscribe(type, listener as never);
  }

  /** Sees every message on the bus (the REPL's `tail`, the dashboard's actor view). */
  inspect(listener: (record: Inspection<TroupeMessage>) => void): () => void {
    return this.#bus.inspect(listener);
  }

  /**
   * Cancels a task that is not final. Resolves true if this call cancelled it; a running task's process is ended.
   * A flow parent's descendants that are not final are cancelled with it (even when the parent itself is final).
   */
  async cancel(id: TaskId): Promise<boolean> {
    if (!isTaskId(id)) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${String(id).slice(0, 64)}\``);
    const result = (await this.#ask({ type: 'tracker.cancel', id, reason: 'cancelled by user', replyTo: '' })) as CancelResult;
    if (result.previous === undefined) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\``);
    return result.cancelled;
  }

  /** Puts a dead letter (failed, timed out or cancelled) back in the queue with a fresh attempt budget. */
  async retry(id: TaskId): Promise<TaskView> {
    if (!isTaskId(id)) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${String(id).slice(0, 64)}\``);
    const task = (await this.#ask({ type: 'tracker.retry', id, replyTo: '' })) as TaskRecord | undefined;
    if (!task) {
      const existing = await this.get(id);
      if (!existing) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\``);
      throw new TroupeError(ErrorCodes.CONFLICT, `Task \`${id}\` is ${existing.state}; only failed, timed-out or cancelled tasks can be retried`);
    }
    return toView(task);
  }

  // ── P5 ─────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * P5: creates (or replaces) a periodic schedule. Nothing periodic runs unless created here or in the config.
   * On an idle node a slot's task is written up to 25 ms ahead of its slot, claimed as of the slot, and started on
   * it (README, Schedules: Timing); replacing the schedule after that keeps that slot's task, pausing or removing
   * it cancels the task.
   */
  async schedule(name: string, spec: ScheduleOptions, input?: unknown): Promise<ScheduleRecord> {
    this.#assertOpen();
    const { id, timing, overlap, value } = await this.#checkSchedule(name, spec, input, 'schedule');
    const existing = await this.#store.getSchedule(id);
    const record: ScheduleRecord = {
      id,
      task: name,
      ...timing,
      input: value ?? null,
      overlap,
      paused: existing?.paused ?? false,
      createdAt: this.options.clock.now(),
      ...(existing?.lastSlot !== undefined ? { lastSlot: existing.lastSlot } : {}),
    };
    await this.#store.saveSchedule(record);
    this.#tell({ type: 'scheduler.schedule-saved', schedule: record });
    return record;
  }

  /**
   * @internal Every check `schedule` makes, without saving anything; option errors name `path`
   * (`schedules.nightly.cron`). Why: a config file's schedules are all checked before the first one is saved
   * (src/config.ts), so a mistake in one of them changes nothing.
   */
  async checkSchedule(name: string, spec: ScheduleOptions, input: unknown, path: string): Promise<void> {
    this.#assertOpen();
    await this.#checkSchedule(name, spec, input, path);
  }

  async #checkSchedule(name: string, spec: ScheduleOptions, input: unknown, path: string) {
    const def = this.#registry.require(name);
    const s = plainObject(spec, path, SCHEDULE_KEYS);
    const timing = validateScheduleSpec({ ...(s.cron !== undefined ? { cron: s.cron } : {}), ...(s.every !== undefined ? { every: s.every } : {}), ...(s.timezone !== undefined ? { timezone: s.timezone } : {}) }, path);
    const overlap = s.overlap ?? 'skip';
    if (overlap !== 'skip' && overlap !== 'queue' && overlap !== 'allow') throw invalidOption(`${path}.overlap`, "'skip', 'queue' or 'allow'", overlap);
    const id = s.id ?? name;
    if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) throw invalidOption(`${path}.id`, 'a name of letters, digits, ".", "_", ":" or "-"', id);
    const value = await this.#registry.validateInput(def, input, this.#checkInput);
    return { id, timing, overlap: overlap as ScheduleRecord['overlap'], value };
  }

  async schedules(): Promise<ScheduleRecord[]> {
    return this.#store.listSchedules();
  }

  /** Removes a schedule on every node sharing the store; its past tasks stay. Resolves false when there was none. */
  async unschedule(id: string): Promise<boolean> {
    const removed = await this.#store.deleteSchedule(id);
    if (removed) this.#tell({ type: 'scheduler.schedule-removed', id });
    return removed;
  }

  /**
   * @internal The ids of the schedules a config file defines (see src/config.ts): those the previously applied
   * configs defined and this one no longer does are removed, and the list is kept for the next config (a small
   * setting in the store). Why: config schedules are stored, so one deleted from the file would otherwise fire
   * forever. Schedules created any other way (the API, the REPL, `rt.schedule`) are not the config's and stay.
   * Several nodes may share the store with configs of their own (a node that runs only some of the tasks): a
   * schedule of a task this node does not register belongs to another node's config and is left alone, and the list
   * is edited one id at a time (`Store.editMetaSet`) so that nodes starting together keep each other's ids.
   * Returns the ids removed.
   */
  async replaceConfigSchedules(ids: readonly string[]): Promise<string[]> {
    const store = this.#store;
    const text = await store.getMeta(CONFIG_SCHEDULES_KEY);
    let parsed: unknown = [];
    try {
      parsed = text === undefined ? [] : JSON.parse(text);
    } catch {
      parsed = [];
    }
    const previous = (Array.isArray(parsed) ? parsed : []).filter((id): id is string => typeof id === 'string');
    const removed: string[] = [];
    const dropped: string[] = [];
    for (const id of previous) {
      if (ids.includes(id)) continue;
      const s = await store.getSchedule(id);
      // Another node's config schedule: a task this node does not run.
      if (s !== undefined && this.#registry.get(s.task) === undefined) continue;
      if (s !== undefined && (await this.unschedule(id))) {
        removed.push(id);
        this.options.logger.info('schedule removed: the config no longer defines it', { id });
      }
      dropped.push(id);
    }
    const added = ids.filter((id) => !previous.includes(id));
    if (store.editMetaSet) {
      for (const id of dropped) await store.editMetaSet(CONFIG_SCHEDULES_KEY, id, false);
      for (const id of added) await store.editMetaSet(CONFIG_SCHEDULES_KEY, id, true);
    } else if (dropped.length > 0 || added.length > 0) {
      const kept = [...previous.filter((id) => !dropped.includes(id)), ...added];
      await store.setMeta(CONFIG_SCHEDULES_KEY, kept.length > 0 ? JSON.stringify(kept) : undefined);
    }
    return removed;
  }

  /**
   * Pauses (or resumes) a schedule: its slots are skipped while paused (a slot's task written ahead is cancelled),
   * on every node sharing the store (README, Schedules: several nodes). A resume records the present as the last
   * slot fired: the slots that passed during the pause are not caught up, and the next slot fires as usual.
   */
  async pauseSchedule(id: string, paused = true): Promise<ScheduleRecord> {
    const s = await this.#store.getSchedule(id);
    if (!s) throw new TroupeError(ErrorCodes.NOT_FOUND, `No schedule \`${id}\``);
    const record = { ...s, paused };
    if (!paused) record.lastSlot = Math.max(s.lastSlot ?? 0, this.options.clock.now());
    await this.#store.saveSchedule(record);
    this.#tell({ type: 'scheduler.schedule-saved', schedule: record });
    return record;
  }

  resumeSchedule(id: string): Promise<ScheduleRecord> {
    return this.pauseSchedule(id, false);
  }

  /** Fires a schedule now (outside its timetable); resolves with the new task's id. */
  async triggerSchedule(id: string): Promise<TaskId> {
    return (await this.#ask({ type: 'scheduler.trigger', id, replyTo: '' })) as TaskId;
  }

  /**
   * Pauses claiming of one task name on every node sharing the store; its queue is kept and survives a restart.
   * Running tasks finish; a task held unstarted (prefetched, or taken by a claim already on its way) goes back to
   * the queue, its attempt not counted. It applies on this node at once, and on the others as they hear of it
   * (README, "PostgreSQL and several nodes"). An unknown name throws at once.
   *
   * The promise resolves once the pause is stored, and rejects (`TROUPE_ERR_STORE…`) if it could not be: the pause
   * then holds on this node only, and the failure is also logged. Awaiting it is optional: a rejection nobody
   * awaits is not an unhandled one.
   */
  pause(name: string): Promise<void> {
    this.#registry.require(name);
    return this.#editPaused({ type: 'scheduler.pause-name', name, paused: true, replyTo: '' });
  }

  /** Resumes claiming of one task name on every node sharing the store; the promise as for `pause`. */
  resume(name: string): Promise<void> {
    this.#registry.require(name);
    const stored = this.#editPaused({ type: 'scheduler.pause-name', name, paused: false, replyTo: '' });
    this.#tell({ type: 'executor.poke' });
    return stored;
  }

  /**
   * Sends a pause-set edit to the scheduler, which applies it here at once and answers once it is stored. The
   * promise has a handler already, so that callers of the former `void` methods who do not await it never see an
   * unhandled rejection (the scheduler logs the failure).
   */
  #editPaused(msg: Extract<TroupeMessage, { type: 'scheduler.pause-name' | 'scheduler.pause-group' }> & { replyTo: string }): Promise<void> {
    const stored = this.#ask(msg).then(() => undefined);
    stored.catch(() => {});
    return stored;
  }

  /** Names whose claiming is paused. */
  pausedNames(): string[] {
    const s = this.#root.actorAt('scheduler') as Scheduler | undefined;
    return s?.pausedNames ?? [];
  }

  /**
   * Holds claiming of `names` on this node only, replacing the names held before (`[]` releases them): their tasks
   * stay queued for the other nodes, and a task of theirs held unstarted here goes back to the queue. Unlike
   * `pause`, nothing is stored and no other node is told, and a restart forgets it. Why: resource-aware admission
   * (the HTTP server's `admission`) sheds the load of the node whose health is in error, not the cluster's.
   */
  holdIntake(names: readonly string[]): void {
    for (const name of names) this.#registry.require(name);
    this.#tell({ type: 'scheduler.hold-names', names: [...new Set(names)] });
    this.#tell({ type: 'executor.poke' });
  }

  /** Names whose claiming is held on this node only (`holdIntake`). */
  heldNames(): string[] {
    const s = this.#root.actorAt('scheduler') as Scheduler | undefined;
    return s?.heldNames ?? [];
  }

  /**
   * Pauses claiming of the tasks of one group key, whatever their name, on every node sharing the store; their
   * queue is kept and survives a restart. The promise as for `pause`.
   */
  pauseGroup(group: string): Promise<void> {
    return this.#editPaused({ type: 'scheduler.pause-group', group: validateGroup(group, 'group'), paused: true, replyTo: '' });
  }

  /** Resumes claiming of the tasks of one group key on every node sharing the store; the promise as for `pause`. */
  resumeGroup(group: string): Promise<void> {
    const stored = this.#editPaused({ type: 'scheduler.pause-group', group: validateGroup(group, 'group'), paused: false, replyTo: '' });
    this.#tell({ type: 'executor.poke' });
    return stored;
  }

  /** Groups whose claiming is paused. */
  pausedGroups(): string[] {
    const s = this.#root.actorAt('scheduler') as Scheduler | undefined;
    return s?.pausedGroups ?? [];
  }

  /**
   * Stores a flow in one transaction: the parent waits until its children are final, then runs with their
   * outcomes in `ctx.children` (inline tasks). Resolves with the parent's id (the existing root's, when the root's
   * `key` matched). See docs/features.md.
   */
  async flow(spec: FlowSpec): Promise<TaskId> {
    const tasks = await buildFlowTasks(spec, (name, input, options, path) => this.#buildTask(name, input, options, undefined, path));
    const [root] = await this.#submit(tasks);
    return root!.id;
  }

  // ── P7, tree, health ───────────────────────────────────────────────────────────────────────────────────

  /** P7: which pattern fits a task with these traits, and why. */
  advise(traits: TaskTraits): Advice;
  /** How to run a registered task, from its measured history (durations, failures, output) and its definition. */
  advise(name: string): Promise<TaskAdvice>;
  advise(subject: TaskTraits | string): Advice | Promise<TaskAdvice> {
    if (typeof subject !== 'string') return adviseFromTraits(subject);
    return this.#adviseTask(subject);
  }

  async #adviseTask(name: string): Promise<TaskAdvice> {
    const def = this.#registry.require(name);
    const now = this.options.clock.now();
    const schedules = (await this.#store.listSchedules())
      .filter((s) => s.task === name)
      .map((s) => {
        const first = nextSlot(s, now);
        const second = first === undefined ? undefined : nextSlot(s, first);
        const intervalMs = s.everyMs ?? (first !== undefined && second !== undefined ? second - first : undefined);
        return { id: s.id, overlap: s.overlap, ...(intervalMs !== undefined ? { intervalMs } : {}) };
      });
    return recommend(
      name,
      this.#stats.get(name),
      { kind: def.kind, timeoutMs: def.timeoutMs, retry: def.retry, schedules, ...(def.concurrency !== undefined ? { concurrency: def.concurrency } : {}) },
      { cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length },
    );
  }

  /** Current limits of task names with adaptive concurrency. */
  adaptiveLimits(): Record<string, number> {
    const executor = this.#root.actorAt('executor') as Executor | undefined;
    return executor?.adaptiveLimits() ?? {};
  }

  /** A read-only snapshot of the supervision tree. */
  tree(): TreeNode {
    return this.#root.snapshot();
  }

  /** Restarts an actor by hand (the REPL's `restart`). */
  restartActor(address: string): Promise<void> {
    return this.#root.restartChild(address);
  }

  /** Process ids to sample for health: this process, worker thread ids, live subprocesses. */
  pids(): { runtime: number; threads: number[]; subprocesses: number[] } {
    return { runtime: process.pid, threads: this.#pool?.threadIds() ?? [], subprocesses: activeCommandPids() };
  }

  /** Thread pool figures (zeros before the first handler runs). */
  poolStats(): { threads: number; busy: number; queued: number; completed: number; utilization: number; recycled: number } {
    const s = this.#pool?.stats;
    return s ? { threads: s.threads, busy: s.busy, queued: s.queued, completed: s.completed, utilization: s.utilization, recycled: s.recycled } : { threads: 0, busy: 0, queued: 0, completed: 0, utilization: 0, recycled: 0 };
  }

  /** Liveness: status, uptime, and when a task last made progress (started or ended). */
  liveness(): { status: RuntimeStatus; uptimeMs: number; lastProgressAt: number; nodeId: string; store: Store['kind']; storeHealthy: boolean; storeError?: string; escalated?: string } {
    const now = this.options.clock.now();
    const tracker = this.#root.actorAt('tracker') as Tracker | undefined;
    const writes = tracker?.storeHealth ?? { healthy: true };
    const probe = (this.#store as Store & { health?: () => { healthy: boolean; lastError?: string } }).health?.();
    const storeHealthy = writes.healthy && (probe?.healthy ?? true);
    const storeError = writes.lastError ?? probe?.lastError;
    return {
      status: this.#status,
      uptimeMs: now - this.#startedAt,
      lastProgressAt: this.#lastProgressAt,
      nodeId: this.nodeId,
      store: this.#store.kind,
      storeHealthy,
      ...(!storeHealthy && storeError ? { storeError } : {}),
      ...(this.#escalation ? { escalated: this.#escalation.message } : {}),
    };
  }

  /** @internal The store, for the HTTP and maintenance layers' read paths. */
  get store(): Store {
    return this.#store;
  }

  /** @internal */
  get bus(): Bus<TroupeMessage> {
    return this.#bus;
  }

  /** @internal */
  get builtin(): BuiltinServices | undefined {
    return this.#builtin;
  }

  /** Waits until everything pending is written (tests, benchmarks). */
  async flush(): Promise<void> {
    await this.#ask({ type: 'tracker.flush', replyTo: '' });
  }

  // ── close ──────────────────────────────────────────────────────────────────────────────────────────────

  /** Stops intake, lets running tasks finish within `timeout`, then stops the rest (given back to the queue). Idempotent. */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options);
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(options: CloseOptions): Promise<void> {
    const o = this.options;
    const timeoutMs = parseDuration(options.timeout ?? 10_000, 'timeout');
    this.#status = RuntimeStatus.stopping;
    this.#bus.publish(SELF, { type: 'runtime.status', status: 'stopping', at: o.clock.now() });
    const errors: unknown[] = [];
    const step = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    };
    for (const off of this.#unsubscribes) await step(off);
    await step(() => this.#tell({ type: 'scheduler.stop' }));
    if (this.#bus.has('executor')) {
      if (options.force) this.#tell({ type: 'executor.abort-all', reason: 'shutdown' });
      await step(() =>
        this.#askRaw({ type: 'executor.drain', replyTo: '' }, timeoutMs).catch(async () => {
          this.#tell({ type: 'executor.abort-all', reason: 'shutdown' });
          await this.#askRaw({ type: 'executor.drain', replyTo: '' }, o.killGraceMs + 5000);
        }),
      );
    }
    if (this.#bus.has('tracker')) await step(() => this.#askRaw({ type: 'tracker.flush', replyTo: '' }, 30_000));
    if (this.#statsPersister) await step(async () => {
      await Promise.all(this.#statsReads);
      await this.#statsPersister!.close();
    });
    const closed = new TroupeError(ErrorCodes.CLOSED, 'The runtime was closed before the task ended');
    for (const list of this.#waiters.values()) for (const w of list) w.reject(this.#escalation ?? closed);
    this.#waiters.clear();
    for (const h of this.#handles.values()) {
      h.end();
      h.reject(this.#escalation ?? closed);
    }
    this.#handles.clear();
    this.#awaited.clear();
    this.options.clock.clearTimeout(this.#awaitTimer);
    this.#awaitTimer = undefined;
    await step(() => this.#root.stop());
    if (this.#pool) await step(() => this.#pool!.close({ force: true }));
    if (this.#builtin) await step(() => this.#builtin!.close());
    await step(() => this.#store.close());
    this.#requester.close();
    this.#status = RuntimeStatus.stopped;
    this.#bus.publish(SELF, { type: 'runtime.status', status: 'stopped', at: o.clock.now() });
    if (errors.length > 0) o.logger.error('errors while closing', { errors: errors.map((e) => serializeError(e).message) });
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────

  #assertOpen(): void {
    if (this.#status !== RuntimeStatus.running) {
      throw this.#escalation ?? new TroupeError(ErrorCodes.CLOSED, `The runtime is ${this.#status}; it takes no new tasks`);
    }
  }

  #threadPool(): ThreadPool {
    // The executor may hand the pool as many jobs as it runs tasks: an automatic queue bound never refuses them.
    const { pool, concurrency } = this.options;
    this.#pool ??= createThreadPool({ ...pool, maxQueue: pool.maxQueue === 'auto' ? Math.max(concurrency, pool.maxThreads ** 2 * pool.maxBatch) : pool.maxQueue });
    return this.#pool;
  }

  #tell(msg: TroupeMessage): void {
    this.#bus.tell(SELF, ORCH, msg);
  }

  async #askRaw(msg: TroupeMessage & { replyTo: string }, timeoutMs = 30_000): Promise<unknown> {
    const reply = await this.#requester.request(SELF, ORCH, (replyTo) => {
      msg.replyTo = replyTo;
      return msg;
    }, timeoutMs);
    if (!reply.ok) throw deserializeError(reply.error);
    return reply.value;
  }

  #ask(msg: TroupeMessage & { replyTo: string }): Promise<unknown> {
    if (this.#status === RuntimeStatus.stopped) return Promise.reject(new TroupeError(ErrorCodes.CLOSED, 'The runtime is stopped'));
    return this.#askRaw(msg);
  }

  #query(query: Extract<TroupeMessage, { type: 'tracker.query' }>['query']): Promise<unknown> {
    return this.#ask({ type: 'tracker.query', query, replyTo: '' });
  }

  async #submit(tasks: NewTask[]): Promise<EnqueueResult[]> {
    this.#assertOpen();
    return (await this.#ask({ type: 'tracker.enqueue', tasks, replyTo: '' })) as EnqueueResult[];
  }

  async #buildTask(name: string, input: unknown, options: EnqueueOptions, extra?: { id?: string; key?: string; scheduleId?: string; runAt?: number }, path = 'options'): Promise<NewTask> {
    return this.#makeTask(name, input, options, extra, path);
  }

  /** Validates and builds a task: synchronously, unless the definition validates its input (a promise then). */
  #makeTask(name: string, input: unknown, options: EnqueueOptions, extra?: { id?: string; key?: string; scheduleId?: string; runAt?: number }, path = 'options'): NewTask | Promise<NewTask> {
    this.#assertOpen();
    const def = this.#registry.require(name);
    const o = isEmpty(options) ? EMPTY_OPTIONS : (plainObject(options, path, ENQUEUE_KEYS) as EnqueueOptions);
    const now = this.options.clock.now();
    let runAt = extra?.runAt ?? now;
    if (o.delay !== undefined) runAt = now + parseDuration(o.delay, `${path}.delay`);
    if (o.runAt !== undefined) {
      if (o.delay !== undefined) throw invalidOption(`${path}.runAt`, 'absent when `delay` is given (one or the other sets the start)', o.runAt);
      const at = o.runAt instanceof Date ? o.runAt.getTime() : o.runAt;
      if (typeof at !== 'number' || !Number.isFinite(at) || at > now + MAX_DURATION_MS) {
        throw invalidOption(`${path}.runAt`, 'a Date or epoch milliseconds, at most 100 years ahead', o.runAt);
      }
      runAt = Math.max(runAt, at);
    }
    const priority = o.priority ?? def.priority;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || Math.abs(priority) > PRIORITY_LIMIT) throw invalidOption(`${path}.priority`, `an integer from ${-PRIORITY_LIMIT} to ${PRIORITY_LIMIT}`, o.priority);
    const weight = o.weight ?? 1;
    if (typeof weight !== 'number' || !(weight > 0) || !Number.isFinite(weight)) throw invalidOption(`${path}.weight`, 'a positive number', o.weight);
    const key = extra?.key ?? o.key;
    if (key !== undefined) checkKey(key, `${path}.key`);
    const retry = o.retry === undefined ? undefined : resolveRetryPolicy(o.retry, `${path}.retry`, def.retry);
    const group = o.group === undefined ? undefined : validateGroup(o.group, `${path}.group`);
    let dedup: DedupSpec | undefined;
    if (o.dedup !== undefined) {
      if (key !== undefined) throw invalidOption(`${path}.dedup`, 'absent when `key` is given (an idempotency key already deduplicates)', o.dedup);
      dedup = resolveDedup(o.dedup, `${path}.dedup`);
    }
    const timeoutMs = o.timeout === undefined ? undefined : parseDuration(o.timeout, `${path}.timeout`);
    if (!def.validate) this.#checkInput(input, def.name);
    const task: NewTask = {
      id: extra?.id ?? createTaskId(now),
      name: def.name,
      input: input === undefined ? null : input,
      priority,
      weight,
      maxAttempts: (retry ?? def.retry).attempts,
      createdAt: now,
      runAt,
    };
    if (key !== undefined) task.key = key;
    if (extra?.scheduleId) task.scheduleId = extra.scheduleId;
    if (group !== undefined) task.group = group;
    if (dedup !== undefined) {
      task.dedup = dedup;
      if (dedup.mode === 'debounce') task.runAt = debounceRunAt(task as NewTask & { dedup: DedupSpec });
    }
    const trace = this.#telemetry?.capture();
    if (retry !== undefined || timeoutMs !== undefined || trace !== undefined) {
      task.options = { ...(retry ? { retry } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(trace ? { trace } : {}) };
    }
    if (!def.validate) return task;
    return this.#registry.validateInput(def, input, this.#checkInput).then((value) => {
      task.input = value === undefined ? null : value;
      return task;
    });
  }

  /** Refuses an input the store cannot keep (Store.unstorable; a store without it: what JSON cannot carry). */
  readonly #checkInput = (input: unknown, name: string): void => {
    if (input === undefined || input === null || typeof input === 'boolean' || (typeof input === 'number' && Number.isFinite(input))) return;
    const problem = this.#store.unstorable ? this.#store.unstorable(input, true) : jsonProblem(input, undefined, true);
    if (problem !== undefined) throw new TroupeError(ErrorCodes.INVALID_INPUT, `Input of \`${name}\` cannot be stored: ${problem}`);
  };

  /** Group and rate limits of the registered definitions, for every claim (rebuilt after a registration). */
  #claimLimits(): { groupLimits?: Record<string, number>; rateLimits?: Record<string, RateLimit> } {
    if (this.#limits) return this.#limits;
    const groupLimits: Record<string, number> = {};
    const rateLimits: Record<string, RateLimit> = {};
    for (const def of this.#registry.list()) {
      if (def.groupConcurrency !== undefined) groupLimits[def.name] = def.groupConcurrency;
      if (def.rateLimit !== undefined) rateLimits[def.name] = def.rateLimit;
    }
    this.#limits = {
      ...(Object.keys(groupLimits).length ? { groupLimits } : {}),
      ...(Object.keys(rateLimits).length ? { rateLimits } : {}),
    };
    return this.#limits;
  }

  /** Facts for what the store changed by itself: a flow parent made due or failed, a debounced task pushed back. */
  #onStoreChange(change: StoreChange): void {
    switch (change.type) {
      case 'flow.released':
        this.#bus.publish(SELF, { type: 'task.queued', id: change.id, name: change.name, at: change.at, runAt: change.at });
        this.#tell({ type: 'scheduler.wake', reason: 'flow released' });
        return;
      case 'flow.failed':
        this.#bus.publish(SELF, { type: 'task.failed', id: change.id, name: change.name, at: change.at, attempt: 0, error: change.error });
        return;
      case 'debounced':
        this.#bus.publish(SELF, { type: 'task.scheduled', id: change.id, name: change.name, at: change.at, runAt: change.runAt });
        return;
      case 'task.stopped':
        // The owner publishes its own; another node's reaches followers here.
        if (change.owner !== this.nodeId) this.#bus.publish(SELF, { type: 'task.stopped', id: change.id, name: change.name, at: change.at });
        return;
      case 'task.ended': {
        // Awaited tasks marked by this node or another one (#readFinal): ours are read now, not at their next read.
        const ours = change.ids.filter((id) => this.#awaited.has(id));
        if (ours.length > 0 && this.#status === RuntimeStatus.running) {
          this.#readFinal(ours).catch((error: unknown) => this.options.logger.warn('could not read awaited tasks', { error: serializeError(error).message }));
        }
        return;
      }
      // Control state changed (on any node sharing the store, this one too): the scheduler reads it again.
      case 'schedule.changed':
        this.#tell({ type: 'scheduler.control-changed', what: 'schedule', id: change.id });
        return;
      case 'meta.changed':
        this.#tell({ type: 'scheduler.control-changed', what: 'paused' });
        return;
      case 'resync':
        this.#tell({ type: 'scheduler.control-changed', what: 'all' });
        return;
    }
  }

  /** A waiter on the task's outcome; aborting `signal` withdraws it (its promise then never settles). */
  #wait(id: TaskId, signal?: AbortSignal): Promise<unknown> {
    this.#watchAwaited(id);
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      const list = this.#waiters.get(id);
      if (list) list.push(waiter);
      else this.#waiters.set(id, [waiter]);
      signal?.addEventListener(
        'abort',
        () => {
          const now = this.#waiters.get(id);
          const at = now === undefined ? -1 : now.indexOf(waiter);
          if (at < 0) return;
          now!.splice(at, 1);
          if (now!.length === 0) this.#waiters.delete(id);
        },
        { once: true },
      );
    });
  }

  /** For a run() whose key matched an existing task: its outcome now if final, else wait for it. */
  async #outcomeOf(id: TaskId, provisional: TaskId): Promise<unknown> {
    const waiters = this.#waiters.get(provisional);
    this.#waiters.delete(provisional);
    const waiting = this.#wait(id);
    for (const w of waiters ?? []) waiting.then(w.resolve, w.reject);
    const view = await this.get(id);
    if (view && isFinalState(view.state)) this.#deliver(outcomeFromView(view));
    return waiting;
  }

  /**
   * Watches a task that a caller awaits (`run()`, a `start()` handle) in the store, on durable stores. Why: a node
   * hears only its own outcomes, and on a shared store another node may run the task (it had free slots first, or
   * a key or dedup matched a task enqueued elsewhere). Each awaited task is read again AWAIT_FIRST_MS after the
   * wait began, then at doubling gaps up to AWAIT_GAP_MAX_MS, all due ones in one read (`Store.states`); one seen
   * final is read whole and its outcome delivered, as if heard. A task that ends here is delivered by its fact
   * first, usually long before its first read. On PostgreSQL the first read also marks the task, unless this node
   * runs it (`awaitEnd`): one another node runs, or, while another node runs anything, one still queued or waiting
   * that any node may claim later (a later read marks what an earlier one left unmarked). The
   * statement that ends a marked task (its settle, wherever it ran; a cancel; a failing lease recovery) notifies,
   * so the outcome arrives at that commit, and the later reads are the safety net. Marking at the read, not at
   * enqueue, keeps the write off the tasks a node runs at once for its own callers.
   */
  #watchAwaited(id: TaskId): void {
    if (this.#store.kind === 'memory' || this.#awaited.has(id)) return;
    const next = this.options.clock.now() + AWAIT_FIRST_MS;
    this.#awaited.set(id, { next, gap: AWAIT_FIRST_MS });
    this.#armAwaitTimer(next);
  }

  /** Makes the read timer fire by `at` (not sooner than AWAIT_TICK_MS from now); an earlier one is kept. */
  #armAwaitTimer(at: number): void {
    const clock = this.options.clock;
    at = Math.max(at, clock.now() + AWAIT_TICK_MS);
    if (this.#awaitTimer !== undefined) {
      if (this.#awaitTimerAt <= at) return;
      clock.clearTimeout(this.#awaitTimer);
    }
    const timer = clock.setTimeout(this.#readAwaited, at - clock.now());
    timer.unref?.();
    this.#awaitTimer = timer;
    this.#awaitTimerAt = at;
  }

  readonly #readAwaited = (): void => {
    this.#awaitTimer = undefined;
    if (this.#awaitReading || this.#status !== RuntimeStatus.running) return;
    const now = this.options.clock.now();
    const due: TaskId[] = [];
    let earliest = Infinity;
    for (const [id, w] of this.#awaited) {
      if (!this.#waiters.has(id) && !this.#handles.has(id)) {
        this.#awaited.delete(id);
        continue;
      }
      if (w.next <= now) {
        due.push(id);
        w.gap = Math.min(w.gap * 2, AWAIT_GAP_MAX_MS);
        w.next = now + w.gap;
      }
      earliest = Math.min(earliest, w.next);
    }
    if (due.length === 0) {
      if (this.#awaited.size > 0) this.#armAwaitTimer(earliest);
      return;
    }
    this.#awaitReading = true;
    this.#readFinal(due)
      .catch((error: unknown) => this.options.logger.warn('could not read awaited tasks', { error: serializeError(error).message }))
      .finally(() => {
        this.#awaitReading = false;
        if (this.#awaited.size > 0 && this.#status === RuntimeStatus.running) this.#armAwaitTimer(earliest);
      });
  };

  /**
   * Delivers the outcome of each task of `ids` that is final in the store. On a store with `awaitEnd`, the tasks not
   * marked yet are marked first unless this node runs them, then read: one that ends after its mark is told by a
   * `task.ended` change (read at once, #onStoreChange), one that ended before it is final in the read. A task left
   * unmarked (its row held by another transaction at that moment, or run here) is offered again at the next read.
   */
  async #readFinal(ids: TaskId[]): Promise<void> {
    const deliverIfFinal = (record: TaskRecord | undefined): void => {
      if (record && isFinalState(record.state) && this.#awaited.has(record.id)) this.#deliver(outcomeFromView(toView(record)));
    };
    const store = this.#store;
    if (store.awaitEnd) {
      const unmarked = ids.filter((id) => this.#awaited.get(id)?.marked === undefined);
      for (let at = 0; at < unmarked.length; at += AWAIT_READ_MAX) {
        const marked = await store.awaitEnd(unmarked.slice(at, at + AWAIT_READ_MAX), this.nodeId);
        for (const id of marked) {
          const w = this.#awaited.get(id);
          if (w) w.marked = true;
        }
      }
    }
    if (!this.#store.states) {
      // A store without the one read for many: each task whole, once.
      for (const id of ids) {
        if (!this.#awaited.has(id)) continue;
        const record = await this.#store.get(id);
        if (record) this.#seenAwaited(id);
        else this.#goneAwaited(id);
        deliverIfFinal(record);
      }
      return;
    }
    for (let at = 0; at < ids.length; at += AWAIT_READ_MAX) {
      const batch = ids.slice(at, at + AWAIT_READ_MAX);
      const found = await this.#store.states(batch);
      for (const id of batch) if (!found.has(id)) this.#goneAwaited(id);
      for (const [id, state] of found) {
        this.#seenAwaited(id);
        if (isFinalState(state) && this.#awaited.has(id)) {
          const record = await this.#store.get(id);
          if (record) deliverIfFinal(record);
          else this.#goneAwaited(id);
        }
      }
    }
  }

  #seenAwaited(id: TaskId): void {
    const w = this.#awaited.get(id);
    if (w) w.seen = true;
  }

  /**
   * An awaited task a read did not find. Why: one that an earlier read found, or whose enqueue this node saw
   * committed (its `task.queued`, `task.scheduled` or `task.started` fact), has been deleted since (`cleanup-runs` on
   * another node, between its end and this node's read of it): its outcome will never be read, so whoever waits is
   * told, instead of waiting until close. One not known to be committed is left to its next read.
   */
  #goneAwaited(id: TaskId): void {
    const w = this.#awaited.get(id);
    if (!w?.seen) return;
    this.#awaited.delete(id);
    const gone = new TroupeError(ErrorCodes.NOT_FOUND, `Task ${id} was deleted before its end could be read (e.g. by cleanup-runs)`, { details: { id } });
    const handle = this.#handles.get(id);
    if (handle) {
      this.#handles.delete(id);
      handle.end();
      handle.reject(gone);
    }
    const list = this.#waiters.get(id);
    if (list) {
      this.#waiters.delete(id);
      for (const waiter of list) waiter.reject(gone);
    }
  }

  /** Settles whoever awaits the task (a `start()` handle, `run()` callers) with its outcome. */
  #deliver(fact: TaskOutcome): void {
    this.#awaited.delete(fact.id);
    const handle = this.#handles.get(fact.id);
    if (handle) {
      this.#handles.delete(fact.id);
      handle.setState(outcomeState(fact));
      handle.end();
      settleWaiter(handle, fact);
    }
    const list = this.#waiters.get(fact.id);
    if (list) {
      this.#waiters.delete(fact.id);
      for (const w of list) settleWaiter(w, fact);
    }
  }

  #subscribeFacts(): void {
    const onFact = (fact: TaskFact) => {
      if (fact.type === 'task.started' || isOutcome(fact)) this.#lastProgressAt = fact.at;
      const handle = this.#handles.get(fact.id);
      if (handle) {
        switch (fact.type) {
          case 'task.output':
            handle.pushLine(fact.line);
            break;
          case 'task.progress':
            handle.setProgress(fact.progress);
            break;
          case 'task.started':
            handle.setState('running');
            break;
          case 'task.retrying':
            handle.setState('retrying');
            break;
          case 'task.queued':
            handle.setState('queued');
            break;
          case 'task.scheduled':
            handle.setState('scheduled');
            break;
          default:
            break;
        }
      }
      if (isOutcome(fact)) this.#deliver(fact);
      // Committed (a fact follows its write): a later read that finds nothing means the task was deleted.
      else if (this.#awaited.size > 0 && (fact.type === 'task.queued' || fact.type === 'task.scheduled' || fact.type === 'task.started')) this.#seenAwaited(fact.id);
    };
    for (const type of TASK_FACT_TYPES) {
      if (type === 'task.output') continue;
      this.#bus.subscribe(type as TaskFactType, onFact as never);
    }
    // Output facts are built only while someone listens: subscribe lazily through handles.
    this.#bus.subscribe('task.output', ((fact: TaskFact) => {
      if (this.#handles.size > 0) onFact(fact);
    }) as never);
  }

  #onEscalate(error: TroupeError): void {
    this.#escalation = error;
    this.options.logger.error('supervision tree gave up', { error: error.message });
    void this.close({ force: true, timeout: 0 });
  }
}

const EMPTY_OPTIONS: EnqueueOptions = Object.freeze({});

function validateGroup(group: unknown, path: string): string {
  if (typeof group !== 'string' || !GROUP_KEY.test(group) || hasBadText(group)) {
    throw invalidOption(path, 'a non-empty string of at most 256 characters without control characters or unpaired surrogates', group);
  }
  return group;
}

function isEmpty(options: unknown): boolean {
  if (options === undefined) return true;
  if (typeof options !== 'object' || options === null || Object.getPrototypeOf(options) !== Object.prototype) return false;
  for (const _ in options) return false;
  return true;
}

function outcomeState(fact: TaskOutcome): TaskState {
  return fact.type === 'task.succeeded' ? 'succeeded' : fact.type === 'task.failed' ? 'failed' : fact.type === 'task.cancelled' ? 'cancelled' : 'timed_out';
}

function settleWaiter(w: { resolve: (v: any) => void; reject: (e: unknown) => void }, fact: TaskOutcome): void {
  switch (fact.type) {
    case 'task.succeeded':
      w.resolve(fact.result);
      return;
    case 'task.cancelled':
      w.reject(new TroupeError(ErrorCodes.CANCELLED, `Task \`${fact.name}\` (${fact.id}) was cancelled`, { details: { id: fact.id } }));
      return;
    case 'task.timed_out':
      w.reject(new TroupeError(ErrorCodes.TIMEOUT, `Task \`${fact.name}\` (${fact.id}) timed out after ${fact.attempt} attempt(s)`, { cause: deserializeError(fact.error), details: { id: fact.id } }));
      return;
    case 'task.failed':
      w.reject(failureOf(fact.error, fact.name, fact.id, fact.attempt));
      return;
  }
}

function failureOf(error: SerializedError, name: string, id: string, attempts: number): TroupeError {
  const cause = deserializeError(error);
  if (isTroupeError(cause) && cause.code !== ErrorCodes.TASK_FAILED) return cause;
  return new TroupeError(ErrorCodes.TASK_FAILED, `Task \`${name}\` (${id}) failed after ${attempts} attempt(s): ${error.message}`, { cause, details: { id } });
}

function outcomeFromView(view: TaskView): TaskOutcome {
  const base = { id: view.id, name: view.name, at: view.timings.finishedAt ?? 0 };
  switch (view.state) {
    case 'succeeded':
      return { type: 'task.succeeded', ...base, attempt: view.attempts, result: view.result, durationMs: view.timings.runMs ?? 0 };
    case 'cancelled':
      return { type: 'task.cancelled', ...base, previous: 'queued' };
    case 'timed_out':
      return { type: 'task.timed_out', ...base, attempt: view.attempts, error: view.error ?? { name: 'TroupeError', message: 'timed out' } };
    default:
      return { type: 'task.failed', ...base, attempt: view.attempts, error: view.error ?? { name: 'Error', message: 'failed' } };
  }
}

const LIST_KEYS = new Set(['state', 'name', 'scheduleId', 'parentId', 'group', 'since', 'limit', 'cursor']);

/** `rt.list`'s filter, checked: a mistaken filter (a typo, an unknown state, a bad cursor) must not list the wrong tasks. */
function checkListFilter(filter: ListFilter): ListFilter {
  const f = plainObject(filter, 'filter', LIST_KEYS) as ListFilter;
  if (f.state !== undefined) {
    const states = Array.isArray(f.state) ? f.state : [f.state];
    if (!states.every(isTaskState)) throw invalidOption('filter.state', `a task state or a list of them (${TASK_STATES.join(', ')})`, f.state);
  }
  for (const key of ['name', 'scheduleId', 'parentId', 'group'] as const) {
    const v = f[key];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw invalidOption(`filter.${key}`, 'a non-empty string', v);
  }
  if (f.since !== undefined && (typeof f.since !== 'number' || !Number.isFinite(f.since))) throw invalidOption('filter.since', 'epoch milliseconds', f.since);
  if (f.limit !== undefined && (typeof f.limit !== 'number' || !Number.isInteger(f.limit) || f.limit < 1 || f.limit > 1000)) {
    throw invalidOption('filter.limit', 'an integer from 1 to 1000 (a page holds at most 1000; follow `nextCursor` for more)', f.limit);
  }
  if (f.cursor !== undefined && !isTaskId(f.cursor)) throw invalidOption('filter.cursor', 'the `nextCursor` of a previous page', f.cursor);
  return f;
}

function toTroupeError(error: unknown): TroupeError {
  if (isTroupeError(error)) return error;
  return new TroupeError(ErrorCodes.INTERNAL, error instanceof Error ? error.message : String(error), { cause: error });
}

/** The public view of a stored task. */
export function toView(task: TaskRecord, history?: Transition[]): TaskView {
  const view: TaskView = {
    id: task.id,
    name: task.name,
    state: task.state,
    input: task.input,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    priority: task.priority,
    weight: task.weight,
    timings: timingsOf(task),
  };
  if (task.result !== undefined) view.result = task.result;
  if (task.error !== undefined) view.error = task.error;
  if (task.key !== undefined) view.key = task.key;
  if (task.progress !== undefined) view.progress = task.progress;
  if (task.owner !== undefined) view.owner = task.owner;
  if (task.scheduleId !== undefined) view.scheduleId = task.scheduleId;
  if (task.group !== undefined) view.group = task.group;
  if (task.dedupKey !== undefined) view.dedupKey = task.dedupKey;
  if (task.parentId !== undefined) view.parentId = task.parentId;
  if (task.flow !== undefined) view.flow = task.flow;
  if (history) view.history = history;
  return view;
}
