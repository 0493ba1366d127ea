/**
 * The executor holds capacity: at most `concurrency` runs at once, and at most a name's own `concurrency` of that
 * name. When it has room it asks the scheduler for work (`scheduler.demand`, one outstanding at a time); each
 * dispatched task gets a task actor, runs on the thread pool, as a subprocess or inline, and its outcome goes to
 * the tracker as a settle op. Task actors are this actor's children in the supervision tree.
 *
 * Prefetch (durable stores): the executor asks for up to `prefetch` tasks more than its free slots and keeps the
 * surplus in a local buffer of claimed tasks, so a run that ends starts the next one without a store round trip
 * and each claim transaction takes many tasks (the store's cost is per transaction, not per task). It asks again
 * once the buffer is half empty. The buffer only fills under load: it holds about what the slots start within
 * PREFETCH_HORIZON_MS at the measured start rate (up to `prefetch`), so slow or sparse work is not held away from
 * other nodes, and a buffered task waits milliseconds, not a long run's time; one that has waited a second (the
 * work got slower than the buffer was filled for, or a first burst filled it for slow work) goes back to the
 * queue. A buffered task is claimed (running, leased to this node) but has not started:
 * - a cancel removes it (it never runs); a pause of its name or group, a drain (close) or a wait longer than the
 *   lease gives it back to the queue with a release (its attempt not counted);
 * - its lease is renewed with the running ones: the tracker is told whether any wait, here or for a slot (#hold),
 *   and while any run or wait it asks for their ids at each heartbeat (`executor.leases`);
 * - per-name limits are checked again when it starts; the claim already applied group and rate limits and the
 *   strategy order, and the buffer keeps that order;
 * - if the process dies, it comes back at lease expiry with its attempt counted, like a running task. Not
 *   counting it would need the store to know it never started, i.e. a write at each start (or before it): a mark
 *   written later (with the next heartbeat or settle) would be missing for a task that crashed the process before
 *   that write, and such a task must count its attempt, or a task that kills its process would run forever.
 *
 * A dispatch that crashes this actor leaves the tasks it had not taken in to its successor, which gives them back to
 * the queue at once (DispatchIntake); one blamed for two such crashes is left to its lease instead.
 *
 * Outcome rules (first termination reason wins):
 * - cancel: the tracker already marked the task cancelled; nothing is written (a late result is dropped).
 * - shutdown (also this actor's restart, see stop()), or a batch-mate of a thread that had to be ended: the task is
 *   released (its attempt not counted).
 * - timeout: another attempt if the policy allows, else `timed_out`.
 * - an error: PermanentError → `failed`; DelayError → runs again at its time; else retry with backoff while
 *   attempts remain, then `failed` (a dead letter).
 */
import type { Actor, ActorContext, TreeNode } from '../../src/actor/actor.ts';
import { setTimeoutAt, type Clock, type TimerHandle } from '../../src/clock.ts';
import { deserializeError, ErrorCodes, isTroupeError, TroupeError, serializeError, type SerializedError } from '../../src/errors.ts';
import type { TaskId } from '../../src/ids.ts';
import type { Logger } from '../../src/options.ts';
import type { ThreadPool } from '../../src/pool/thread-pool.ts';
import type { runCommand as RunCommand } from '../../src/process/run-command.ts';
import type { SpawnServerInfo } from '../../src/process/spawn-client.ts';
import type { Registry, ResolvedTask } from '../../src/registry.ts';
import { computeBackoff } from '../../src/schedule/backoff.ts';
import type { SettleOp } from '../../src/store/store.ts';
import type { OutputStream, Progress, RetryPolicy, TaskRecord, TaskState } from '../../src/task.ts';
import type { Telemetry } from '../../src/telemetry.ts';
import type { StatsBook } from '../../src/advice/stats-book.ts';
import type { FailureCause, RunObservation, RunOutcome } from '../../src/advice/stats-types.ts';
import { createAdaptiveLimit, type AdaptiveLimit } from './adaptive-limit.ts';
import type { DispatchIntake } from './intake.ts';
import type { TroupeMessage } from '../messages.ts';
import { createSchedulerDemand, demandAfterOffer } from '../scheduler/messages.ts';
import { createTrackerLeases } from '../tracker/messages.ts';
import { InlineContext } from '../task/inline-context.ts';
import { RunTable } from '../task/run-table.ts';
import { TaskActor, type RunSink } from '../task/task-actor.ts';
import { isThenable } from '../../src/thenable.ts';
import { soon } from '../../src/soon.ts';
import { jsonProblem } from '../../src/store/json-value.ts';
import { CHILDREN_FILE_ENV, withChildrenFile } from '../../src/process/children-file.ts';
import type { ExecutorMessage } from './messages.ts';

export interface ExecutorDeps {
  registry: Registry;
  clock: Clock;
  owner: string;
  concurrency: number;
  logger: Logger;
  random: () => number;
  orchestrator: string;
  pool: () => ThreadPool;
  runCommand: typeof RunCommand;
  /** The spawn server's state, shown in the tree once it was started (`spawn: 'server'`). */
  spawnServer?: () => SpawnServerInfo;
  /** OpenTelemetry hooks, when the API is installed. */
  telemetry?: Telemetry;
  /** Per-name run statistics for the advisor. */
  stats?: StatsBook;
  /** Claimed tasks held beyond the free slots (0 = claim only what starts at once). @default 0 */
  prefetch?: number;
  /** The claim lease: a task buffered this long is given back rather than started. @default 30000 */
  leaseMs?: number;
  /** Most tasks the scheduler claims for one demand (a larger demand asks for no more). @default unlimited */
  claimBatch?: number;
  /** Why the store cannot keep a result (Store.unstorable); such a run fails permanently instead. */
  unstorable?: (value: unknown) => string | undefined;
  /**
   * Reads a task from the store (Store.get): a dispatched task whose id had a cancel come before it is started only
   * if the store still has it running under this claim. Absent: such a task is dropped.
   */
  readTask?: (id: TaskId) => Promise<TaskRecord | undefined>;
  /**
   * Reads the states of tasks (Store.states), on a store that other processes write but that tells no cancels (a
   * SQLite file): the tasks running or held here are read every CANCEL_CHECK_MS while there are any, and one found
   * `cancelled` is stopped as if the cancel had been heard. Absent: cancels come as messages only.
   */
  readStates?: (ids: readonly TaskId[]) => Promise<Map<TaskId, TaskState>>;
  /** The runtime's temp folder (`tempDir`): a command that is a flow parent gets its children's file there. */
  tempDir: string;
  /**
   * Runs of a stopped executor that are still ending, shared by the executors of one runtime: a restarted executor's
   * predecessor ends its runs (soft stop, the hard one after their grace) and they stay here until they have ended,
   * so the new one names them when leases are renewed (#tellLeases). Why: a run slow to stop (a command deaf to
   * SIGTERM, a long `killGrace`) lost its lease, and its task ran again beside it.
   */
  ending?: Set<TaskActor>;
  /**
   * The tasks of a dispatch not taken in yet, shared by the executors of one runtime: a dispatch that crashes the
   * executor leaves them there, and the restarted one gives them back at once (#takeOver). Why: they were claimed
   * and leased to this node, known to no executor, and came back only at lease expiry with their attempt counted.
   */
  intake?: DispatchIntake;
  /** How often the tracker renews the leases this executor names (`heartbeat`). @default leaseMs / 3 */
  heartbeatMs?: number;
  /**
   * Renews the leases of claimed tasks of this node now (Store.heartbeat with their ids), for a claim that arrives
   * late (see #recheckLate). Absent: such a claim is only read before it starts.
   */
  renewLeases?: (ids: readonly TaskId[]) => Promise<unknown>;
}

/** The buffer holds about the tasks the slots start within this time (at the start rate of the last window). */
const PREFETCH_HORIZON_MS = 20;
/** A demand's caps and exclusions when no registered name has a cap; shared, never written (frozen). */
const NO_CAPS: Record<string, number> = Object.freeze({}) as Record<string, number>;
const NO_NAMES: string[] = Object.freeze([]) as unknown as string[];
/** Length of the window the start rate is measured over. */
const RATE_WINDOW_MS = 100;
/**
 * A buffered task that has waited this long for a slot goes back to the queue (another node may have room): the
 * work got slower than the buffer was filled for. Checked every BUFFER_CHECK_MS while the buffer holds tasks.
 */
const BUFFER_WAIT_MAX_MS = 1000;
const BUFFER_CHECK_MS = 250;
/** How often the tasks running or held here are read for cancels made elsewhere (`readStates`). */
export const CANCEL_CHECK_MS = 1000;
/** Cancels of tasks not held here that the executor keeps in mind (see #cancelledAhead). */
const CANCELLED_AHEAD_MAX = 10_000;

/** A claimed task waiting for a slot, and when it arrived. */
interface Buffered {
  task: TaskRecord;
  at: number;
  /** Claimed ahead of a schedule slot: its code starts at this time (ExecutorDispatch.startAt). */
  startAt?: number;
}

export class Executor implements Actor<TroupeMessage> {
  readonly #ctx: ActorContext<TroupeMessage>;
  readonly #d: ExecutorDeps;
  readonly #running = new RunTable();
  readonly #perName = new Map<string, number>();
  readonly #adaptive = new Map<string, AdaptiveLimit>();
  #limit: number;
  #demanding = false;
  /** The outstanding demand (while #demanding); `left`: what an offered dispatch left of one (demandAfterOffer). */
  #asked: { slots: number; perName: Record<string, number>; exclude: string[]; left: boolean } | undefined;
  #demandQueued = false;
  #draining = false;
  #drainWaiters: string[] = [];
  /** Claimed tasks not started yet, in claim (strategy) order. */
  #buffer: Buffered[] = [];
  /** Runs that hold their slot until their schedule slot comes (#hold): their code has not started. */
  readonly #waiting = new Set<TaskActor>();
  /** Whether the tracker was last told that claimed tasks wait here, buffered or for their slot (for lease renewal). */
  #holdingReported = false;
  /** Starts per ms over the last full window (undefined until one has passed: a first burst may prefetch). */
  #startRate: number | undefined;
  #rateFrom = 0;
  #rateStarts = 0;
  #pausedNames = new Set<string>();
  #pausedGroups = new Set<string>();
  /** Armed while the buffer holds tasks: gives back the ones that waited too long (#checkBuffer). */
  #bufferTimer: TimerHandle | undefined;
  /** Armed while tasks run or wait here, with `readStates`: looks for cancels made elsewhere (#checkCancels). */
  #cancelTimer: TimerHandle | undefined;
  /** The actor was stopped: a read in flight arms nothing more. */
  #halted = false;
  /**
   * Cancels of tasks this executor did not hold when they came (id → when): a claim on its way may still bring
   * one, and it must not start. Kept for a lease at most (a claim lands well within it), and at most
   * `CANCELLED_AHEAD_MAX` of them (on PostgreSQL every node hears every cancel of the cluster).
   */
  readonly #cancelledAhead = new Map<TaskId, number>();
  /** Dispatched tasks met by a remembered cancel, while the store is asked about them (see #recheck). */
  readonly #rechecking = new Set<TaskRecord>();
  #stats = { started: 0, succeeded: 0, failed: 0, retried: 0, released: 0, givenBack: 0 };
  /** Where handler runs (their own pool jobs, see TaskActor.asJob) report. */
  readonly #sink: RunSink = {
    runDone: (run, ok, value) => {
      if (ok) this.#finish(run, run.def, undefined, false, value);
      else this.#finish(run, run.def, value, false);
    },
    runProgress: (run, progress) => this.#progress(run, progress),
    runLog: (run, text) => this.#output(run, 'log', [text]),
  };

  constructor(ctx: ActorContext<TroupeMessage>, deps: ExecutorDeps) {
    this.#ctx = ctx;
    this.#d = deps;
    this.#limit = deps.concurrency;
  }

  start(): void {
    this.#takeOver();
    this.#demand();
  }

  /**
   * Gives back to the queue the tasks a dispatch that crashed the predecessor left (DispatchIntake), with a release
   * (their attempt not counted, `executor stopped` in their history), so a claim here or elsewhere runs them now. A
   * task blamed for CRASHES_BEFORE_GIVING_UP crashes is left to its lease (see DispatchIntake.takeOver); named in
   * no lease renewal, it comes back when its lease ends.
   */
  #takeOver(): void {
    const intake = this.#d.intake;
    if (intake === undefined || intake.pending.size === 0) return;
    const { back, givenUp } = intake.takeOver();
    for (const { task, crashes } of givenUp) {
      this.#d.logger.error('a dispatched task crashed the executor; given up: it runs again when its lease expires', { id: readSafely(task, 'id'), name: readSafely(task, 'name'), crashes });
    }
    const at = this.#d.clock.now();
    for (const { task, counted } of back) {
      try {
        this.#giveBack({ task, at }, 'executor stopped', !counted);
      } catch (error) {
        this.#d.logger.error('a task a crashed dispatch left cannot be given back; it runs again when its lease expires', { id: readSafely(task, 'id'), error: serializeError(error).message });
      }
    }
  }

  /**
   * Ends the runs (soft stop now, hard after their grace; each gives its task back with a release once it has ended)
   * and gives back the buffer. A supervisor's restart calls this too: the runs go on ending meanwhile, named by the
   * next executor in lease renewals (ExecutorDeps.ending), so their tasks never run again before they have stopped.
   */
  stop(): void {
    this.#halted = true;
    const intake = this.#d.intake;
    for (const run of this.#running.list()) {
      if (intake !== undefined && intake.pending.size > 0 && intake.pending.has(run.record)) {
        this.#dropUnstarted(run, intake);
        continue;
      }
      this.#d.ending?.add(run);
      run.end('shutdown');
    }
    this.#giveBackAll(this.#shutdownReason());
    this.#d.clock.clearTimeout(this.#bufferTimer);
    this.#bufferTimer = undefined;
    this.#d.clock.clearTimeout(this.#cancelTimer);
    this.#cancelTimer = undefined;
  }

  /**
   * A run whose start crashed this executor (its task still in the intake): its code never started, so nothing would
   * ever end it, and named in lease renewals (`ending`) its task would keep its lease for good. It is dropped, and its
   * task left in the intake for the successor (#takeOver). A run not waiting for its slot told the tracker it started
   * (the first thing #begin does), so its release will not be `held`.
   */
  #dropUnstarted(run: TaskActor, intake: DispatchIntake): void {
    this.#running.remove(run);
    if (!this.#waiting.delete(run)) intake.counted.add(run.record);
    run.dispose();
    run.span?.end('released');
  }

  describe(): Record<string, unknown> {
    const adaptive: Record<string, unknown> = {};
    for (const [name, limit] of this.#adaptive) adaptive[name] = limit.snapshot();
    const spawnServer = this.#d.spawnServer?.();
    return {
      running: this.#running.size, limit: this.#limit, buffered: this.#buffer.length, prefetch: this.#d.prefetch ?? 0, prefetchNow: this.#prefetchNow(), draining: this.#draining, ...this.#stats,
      ...(this.#adaptive.size ? { adaptive } : {}),
      ...(this.#pausedNames.size ? { paused: [...this.#pausedNames] } : {}),
      ...(this.#pausedGroups.size ? { pausedGroups: [...this.#pausedGroups] } : {}),
      ...(this.#cancelledAhead.size ? { cancelledAhead: this.#cancelledAhead.size } : {}),
      ...(this.#rechecking.size ? { rechecking: this.#rechecking.size } : {}),
      ...(spawnServer !== undefined && spawnServer.state !== 'idle' ? { spawnServer } : {}),
    };
  }

  /** Current per-name limits of adaptive names. */
  adaptiveLimits(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, limit] of this.#adaptive) out[name] = limit.limit;
    return out;
  }

  #adaptiveOf(task: ResolvedTask): AdaptiveLimit {
    let limit = this.#adaptive.get(task.name);
    if (!limit) {
      limit = createAdaptiveLimit(task.adaptive as never, this.#d.clock);
      this.#adaptive.set(task.name, limit);
    }
    return limit;
  }

  children(): TreeNode[] {
    return this.#running.list().map((run) => ({
      address: `task/${run.id}`,
      kind: 'task',
      status: run.state,
      restarts: 0,
      info: { name: run.name, attempt: run.attempt, startedAt: run.startedAt, ...(run.reason ? { ending: run.reason } : {}) },
    }));
  }

  /** Runs in progress on this node (ids). */
  runningIds(): TaskId[] {
    return this.#running.list().map((run) => run.id);
  }

  receive(msg: TroupeMessage): void {
    const m = msg as ExecutorMessage;
    switch (m.type) {
      case 'executor.dispatch': {
        // Recorded before anything else: a crash from here on leaves them to the successor (DispatchIntake).
        const intake = this.#d.intake;
        if (intake !== undefined) for (let i = 0; i < m.tasks.length; i++) intake.pending.add(m.tasks[i]!);
        // Claimed with the scheduler's standing offer: the outstanding demand stands, less these tasks, where
        // demandAfterOffer keeps it (the scheduler keeps its copy by the same rule and offers the rest again).
        const rest = m.offered === true && this.#demanding && this.#asked !== undefined ? demandAfterOffer(this.#asked, m.tasks.length) : undefined;
        this.#asked = rest === undefined ? undefined : { slots: rest.slots, perName: rest.perName, exclude: rest.exclude, left: true };
        this.#demanding = rest !== undefined;
        const at = this.#d.clock.now();
        if (this.#draining) {
          // Claimed after the drain began (a claim in flight): give them back, they will not start here.
          for (const task of m.tasks) {
            this.#giveBack({ task, at }, 'shutdown');
            intake?.pending.delete(task);
          }
          this.#maybeDrained();
          return;
        }
        let tasks = m.tasks;
        if (this.#cancelledAhead.size > 0 && tasks.some((task) => this.#cancelledAhead.has(task.id))) {
          // A cancel came before the task: cancelled while its claim was on its way, it must not start. (The cancel
          // may also be of an earlier claim of the same task, retried since: the store tells, see #recheck.)
          tasks = tasks.filter((task) => {
            if (!this.#cancelledAhead.delete(task.id)) return true;
            this.#recheck(task, at, m.startAt);
            intake?.pending.delete(task);
            return false;
          });
        }
        // A lease that ends before the next renewal can name the task: its claim was long on its way (see #recheckLate).
        const renewBy = at + (this.#d.heartbeatMs ?? (this.#d.leaseMs ?? 30_000) / 3);
        if (anyLeaseBefore(tasks, renewBy)) {
          const late = tasks.filter((task) => task.leaseUntil !== undefined && task.leaseUntil < renewBy);
          tasks = tasks.filter((task) => task.leaseUntil === undefined || task.leaseUntil >= renewBy);
          this.#recheckLate(late, at, m.startAt);
          if (intake !== undefined) for (const task of late) intake.pending.delete(task);
        }
        if ((this.#pausedNames.size > 0 || this.#pausedGroups.size > 0) && tasks.some((task) => this.#isPaused(task))) {
          // Taken by a claim that was on its way when its name or group was paused: back to the queue, unstarted
          // (a slot's task written ahead waits `scheduled` for its slot again).
          tasks = tasks.filter((task) => {
            if (!this.#isPaused(task)) return true;
            this.#giveBack({ task, at }, 'paused');
            intake?.pending.delete(task);
            return false;
          });
        }
        if (!this.#d.prefetch && this.#buffer.length === 0 && tasks.length <= this.#limit - this.#running.size) {
          // Without prefetch every claimed task fits a free slot: start them all at once. (More than fits comes
          // only from a claim that raced another: an enqueue's claim against the scheduler's; the buffer holds it.)
          if (intake === undefined) for (const task of tasks) this.#start(task, m.startAt);
          else this.#startAll(tasks, m.startAt, intake);
        } else {
          for (const task of tasks) {
            this.#buffer.push(m.startAt === undefined ? { task, at } : { task, at, startAt: m.startAt });
            intake?.pending.delete(task);
          }
          this.#pull();
        }
        this.#demand();
        return;
      }
      case 'executor.abort': {
        const run = this.#running.get(m.id);
        if (run) run.end(m.reason);
        else this.#dropBuffered(m.id, m.reason);
        return;
      }
      case 'executor.abort-all':
        for (const run of this.#running.list()) run.end(m.reason);
        this.#giveBackAll(m.reason);
        return;
      case 'executor.drain':
        this.#draining = true;
        this.#drainWaiters.push(m.replyTo);
        // Runs waiting for their slot (#hold) are running tasks: the drain waits for them, as for the others.
        this.#giveBackAll('shutdown');
        this.#maybeDrained();
        return;
      case 'executor.poke':
        // Asked again in full: the scheduler may have restarted without the outstanding demand.
        this.#demanding = false;
        this.#demand();
        return;
      case 'executor.leases':
        this.#tellLeases();
        return;
      case 'executor.paused':
        this.#pausedNames = new Set(m.names);
        this.#pausedGroups = new Set(m.groups);
        // Runs that wait for their slot (#hold) have not started: they go back too, to wait for their slot.
        for (const run of this.#waiting) if (this.#isPaused(run.record)) run.end('paused');
        // Buffered tasks of a paused name or group go back to the queue now (the scheduler no longer claims them).
        if (this.#buffer.some((b) => this.#isPaused(b.task))) {
          this.#buffer = this.#buffer.filter((b) => {
            if (!this.#isPaused(b.task)) return true;
            this.#giveBack(b, 'paused');
            return false;
          });
          this.#reportHeld();
        }
        return;
      default:
        return;
    }
  }

  /** Starts a dispatch's tasks; the one whose start throws is blamed for the crash (DispatchIntake.taking). */
  #startAll(tasks: readonly TaskRecord[], startAt: number | undefined, intake: DispatchIntake): void {
    let i = 0;
    try {
      for (; i < tasks.length; i++) {
        this.#start(tasks[i]!, startAt);
        intake.pending.delete(tasks[i]!);
      }
    } catch (error) {
      intake.taking = tasks[i];
      throw error;
    }
  }

  /** Asks for work at most once per microtask turn, however many runs end in it. */
  #demand(): void {
    if (this.#demandQueued) return;
    this.#demandQueued = true;
    soon(this.#sendDemand);
  }

  readonly #sendDemand = (): void => {
    this.#demandQueued = false;
    // A stopped executor's runs still end (their outcomes go out), but it asks for no more work: its successor does.
    if (this.#halted) return;
    this.#pull();
    this.#reportHeld();
    if (this.#buffer.length > 0 && this.#bufferTimer === undefined) this.#armBufferCheck();
    if (this.#draining) return;
    const free = this.#limit - this.#running.size;
    const prefetch = this.#prefetchNow();
    const buffered = this.#buffer.length;
    // With a buffer: ask again once it is half empty (so each claim takes many tasks), or when slots are free and
    // nothing buffered can fill them (the buffer's tasks are held back by their name's limit).
    if (buffered > 0 && buffered > prefetch / 2 && free <= 0) {
      this.#takeBackDemand();
      return;
    }
    const slots = free + prefetch - buffered;
    if (slots <= 0) {
      this.#takeBackDemand();
      return;
    }
    let bufferedByName: Map<string, number> | undefined;
    if (buffered > 0) {
      bufferedByName = new Map();
      for (const b of this.#buffer) bufferedByName.set(b.task.name, (bufferedByName.get(b.task.name) ?? 0) + 1);
    }
    const capped = this.#d.registry.capped();
    // Without capped names (the common case) the demand shares the empty constants: nothing is built per run.
    const perName: Record<string, number> = capped.length === 0 ? NO_CAPS : {};
    const exclude: string[] = capped.length === 0 ? NO_NAMES : [];
    for (const task of capped) {
      const cap = task.adaptive ? this.#adaptiveOf(task).limit : task.concurrency;
      if (cap === undefined) continue;
      // A capped name never gets more claimed than it may start now: its room counts its buffered tasks.
      const room = cap - (this.#perName.get(task.name) ?? 0) - (bufferedByName?.get(task.name) ?? 0);
      if (room <= 0) exclude.push(task.name);
      else if (room < slots) perName[task.name] = room;
    }
    // One demand outstanding at a time; a newer one replaces it at the scheduler. A run that ends on an idle node
    // frees one slot of hundreds: the claim it asks for is the one already asked for (the scheduler takes at most
    // `claimBatch`), so it is not asked again (a demand, an offer and their messages on every run's way out).
    if (this.#demanding && this.#sameClaim(slots, perName, exclude)) return;
    this.#demanding = true;
    this.#asked = { slots, perName, exclude, left: false };
    this.#ctx.tell(this.#d.orchestrator, createSchedulerDemand(slots, perName, exclude));
  };

  /**
   * Takes back a demand left standing by an offered dispatch (demandAfterOffer) when this node would not ask now:
   * the room it counted on is gone (the buffer's size follows the start rate), or the buffer waits to be half
   * empty. A demand with no slots tells the scheduler so.
   */
  #takeBackDemand(): void {
    if (!this.#demanding || this.#asked?.left !== true) return;
    this.#asked = undefined;
    this.#demanding = false;
    this.#ctx.tell(this.#d.orchestrator, createSchedulerDemand(0, {}, []));
  }

  /** Whether a demand of `slots` would get the same claim as the outstanding one. */
  #sameClaim(slots: number, perName: Record<string, number>, exclude: string[]): boolean {
    const asked = this.#asked;
    if (asked === undefined) return false;
    const batch = this.#d.claimBatch ?? Infinity;
    if (Math.min(slots, batch) !== Math.min(asked.slots, batch)) return false;
    if (exclude.length !== asked.exclude.length || exclude.some((name, i) => asked.exclude[i] !== name)) return false;
    let n = 0;
    for (const name in perName) {
      if (asked.perName[name] !== perName[name]) return false;
      n++;
    }
    for (const _ in asked.perName) n--;
    return n === 0;
  }

  /** Starts buffered tasks while slots are free, in claim order, skipping names at their limit. */
  #pull(): void {
    if (this.#buffer.length === 0 || this.#running.size >= this.#limit) return;
    const now = this.#d.clock.now();
    const leaseMs = this.#d.leaseMs ?? 30_000;
    const kept: Buffered[] = [];
    const buffer = this.#buffer;
    this.#buffer = kept;
    let i = 0;
    try {
      for (; i < buffer.length; i++) {
        const b = buffer[i]!;
        if (this.#running.size >= this.#limit || this.#draining) {
          kept.push(b);
          continue;
        }
        if (this.#isPaused(b.task)) {
          this.#giveBack(b, 'paused');
          continue;
        }
        // Waited a whole lease: it may have been taken back elsewhere while the store was out of reach.
        if (now - b.at >= leaseMs) {
          this.#giveBack(b, 'waited too long in the buffer');
          continue;
        }
        if (this.#atCap(b.task.name)) {
          kept.push(b);
          continue;
        }
        this.#start(b.task, b.startAt);
        this.#countStart(now);
      }
    } catch (error) {
      // A take-in that threw crashes this executor: the tasks it had not reached stay buffered (its stop gives them
      // back), and the one it was taking in is left to the successor (DispatchIntake), blamed for the crash.
      for (let j = i + 1; j < buffer.length; j++) kept.push(buffer[j]!);
      const intake = this.#d.intake;
      if (intake !== undefined && i < buffer.length) {
        intake.pending.add(buffer[i]!.task);
        intake.taking = buffer[i]!.task;
      }
      throw error;
    }
  }

  /** Measures the start rate per window of clock time (the prefetch follows it). */
  #countStart(now: number): void {
    if (this.#rateStarts === 0 && this.#startRate === undefined) this.#rateFrom = now;
    this.#rateStarts++;
    const span = now - this.#rateFrom;
    if (span >= RATE_WINDOW_MS) {
      this.#startRate = this.#rateStarts / span;
      this.#rateFrom = now;
      this.#rateStarts = 0;
    }
  }

  /**
   * The buffer's size now: `prefetch` under load, less for slower work, none when starts are sparse. Before a
   * first full window of starts has been measured, a first burst may prefetch; once that window has run long (a
   * slow first start), what it shows so far. A window that has run long since the last start shows at most its
   * starts over its length. What keeps a first burst of slow work from being held is the second-long give-back
   * (#checkBuffer): the buffer then follows the measured (slow) rate and takes none of it again.
   */
  #prefetchNow(): number {
    const prefetch = this.#d.prefetch ?? 0;
    if (prefetch === 0) return 0;
    const span = this.#d.clock.now() - this.#rateFrom;
    let rate: number;
    if (this.#startRate === undefined) {
      if (this.#rateStarts === 0 || span < RATE_WINDOW_MS) return prefetch;
      rate = this.#rateStarts / span;
    } else rate = span >= RATE_WINDOW_MS ? Math.min(this.#startRate, this.#rateStarts / span) : this.#startRate;
    return Math.min(prefetch, Math.floor(rate * PREFETCH_HORIZON_MS));
  }

  #armBufferCheck(): void {
    const timer = this.#d.clock.setTimeout(this.#checkBuffer, BUFFER_CHECK_MS);
    timer.unref?.();
    this.#bufferTimer = timer;
  }

  /**
   * Gives back the buffered tasks that waited BUFFER_WAIT_MAX_MS for a slot. Why: the buffer is filled for the
   * start rate of the moment; when the work then slows down (long runs after short ones), its tasks would wait for
   * this node's slots, claimed and out of other nodes' reach, until a slot frees.
   */
  readonly #checkBuffer = (): void => {
    this.#bufferTimer = undefined;
    if (this.#buffer.length === 0 || this.#draining) return;
    const now = this.#d.clock.now();
    const before = this.#buffer.length;
    this.#buffer = this.#buffer.filter((b) => {
      if (now - Math.max(b.at, b.startAt ?? 0) < BUFFER_WAIT_MAX_MS) return true;
      this.#giveBack(b, 'waited for a slot');
      return false;
    });
    if (this.#buffer.length < before) {
      this.#reportHeld();
      this.#maybeDrained();
    }
    if (this.#buffer.length > 0) this.#armBufferCheck();
  };

  #atCap(name: string): boolean {
    const def = this.#d.registry.get(name);
    if (!def) return false;
    const cap = def.adaptive ? this.#adaptiveOf(def).limit : def.concurrency;
    return cap !== undefined && (this.#perName.get(name) ?? 0) >= cap;
  }

  #isPaused(task: TaskRecord): boolean {
    return this.#pausedNames.has(task.name) || (task.group !== undefined && this.#pausedGroups.has(task.group));
  }

  /**
   * Gives a buffered (claimed, never started) task back to the queue; its attempt is not counted. `held`: the tracker
   * never counted it running (false for a task whose start crashed the executor after it told the tracker).
   */
  #giveBack(b: Buffered, reason: 'shutdown' | 'paused' | string, held = true): void {
    this.#stats.givenBack++;
    const at = this.#d.clock.now();
    const op: Extract<SettleOp, { type: 'release' }> = { type: 'release', id: b.task.id, owner: this.#d.owner, attempt: b.task.attempts, at, reason };
    // A slot's task written ahead and given back before its slot waits for it again (see #decide).
    if (b.task.runAt > at) op.runAt = b.task.runAt;
    this.#ctx.tell(this.#d.orchestrator, held ? { type: 'tracker.settle', op, name: b.task.name, startedAt: b.at, held } : { type: 'tracker.settle', op, name: b.task.name, startedAt: b.at });
  }

  /**
   * The reason a release by a stop gives in the task's history: `shutdown` when the runtime closes (it drains this
   * executor first), `executor stopped` when this actor is stopped without a drain (its restart after a crash, or
   * the tree giving up).
   */
  #shutdownReason(): string {
    return this.#halted && !this.#draining ? 'executor stopped' : 'shutdown';
  }

  #giveBackAll(reason: string): void {
    if (this.#buffer.length === 0) return;
    const buffer = this.#buffer;
    this.#buffer = [];
    for (const b of buffer) this.#giveBack(b, reason);
    this.#reportHeld();
  }

  /** A cancel (the tracker already marked the task cancelled) or a shutdown of a task that has not started. */
  #dropBuffered(id: TaskId, reason: 'cancel' | 'shutdown'): void {
    const i = this.#buffer.findIndex((b) => b.task.id === id);
    if (i < 0) {
      if (reason === 'cancel') this.#rememberCancel(id);
      return;
    }
    const [b] = this.#buffer.splice(i, 1);
    if (reason === 'shutdown') this.#giveBack(b!, 'shutdown');
    else this.#stopped(id, b!.task.name);
    this.#reportHeld();
    this.#demand();
  }

  /**
   * A dispatched task that a remembered cancel names: started (through the buffer) only if the store still has it
   * running under this very claim (owner, attempt and start time); otherwise it was cancelled on its way and is
   * dropped. A store that cannot answer leaves it to its lease.
   */
  #recheck(task: TaskRecord, at: number, startAt: number | undefined): void {
    const read = this.#d.readTask;
    if (read === undefined) return;
    this.#rechecking.add(task);
    const answered = (current: TaskRecord | undefined): void => {
      this.#rechecking.delete(task);
      const ours = current?.state === 'running' && current.owner === this.#d.owner && current.attempts === task.attempts && current.startedAt === task.startedAt;
      // Another cancel came while the store was read (the read may predate it): ask again.
      if (ours && this.#cancelledAhead.delete(task.id)) this.#recheck(task, at, startAt);
      else if (ours && (this.#draining || this.#halted)) this.#giveBack({ task, at }, 'shutdown');
      else if (ours) {
        this.#buffer.push(startAt === undefined ? { task, at } : { task, at, startAt });
        this.#pull();
      } else if (current?.state === 'cancelled') this.#stopped(task.id, task.name);
      this.#reportHeld();
      this.#maybeDrained();
      this.#demand();
    };
    read(task.id).then(answered, (error: unknown) => {
      this.#d.logger.warn('could not read a task a cancel came before; its lease will bring it back if it still runs', { id: task.id, error: serializeError(error).message });
      answered(undefined);
    });
  }

  /**
   * Claimed tasks that reached this executor with so little of their lease left that it may end before the next
   * renewal names them, or ended already: their claim was long on its way (a claim statement that waited for a
   * connection or a commit, its `now` taken before; the event loop stalled). Meanwhile a sweep anywhere may have
   * taken them back and another claim started them. Their leases are renewed (one statement for all), then each is
   * read, and started only if the store still has it running under this very claim (#recheck); the others are
   * dropped. They are named in lease renewals meanwhile. Why: started as they came, such a task ran twice at once.
   * A claim on time costs a comparison per task here, nothing more.
   */
  #recheckLate(late: TaskRecord[], at: number, startAt: number | undefined): void {
    for (const task of late) this.#rechecking.add(task);
    const check = (): void => {
      for (const task of late) {
        this.#rechecking.delete(task);
        if (this.#d.readTask === undefined) this.#d.logger.warn('a claim came after its lease could have ended; left to its lease', { id: task.id });
        this.#recheck(task, at, startAt);
      }
      this.#maybeDrained();
    };
    const renew = this.#d.renewLeases;
    if (renew === undefined) return check();
    renew(late.map((task) => task.id)).then(check, (error: unknown) => {
      this.#d.logger.warn('could not renew the leases of a claim that came late', { ids: late.length, error: serializeError(error).message });
      check();
    });
  }

  #armCancelCheck(): void {
    if (this.#halted) return;
    const timer = this.#d.clock.setTimeout(this.#checkCancels, CANCEL_CHECK_MS);
    timer.unref?.();
    this.#cancelTimer = timer;
  }

  /** The tasks running here (their code, or holding a slot for their schedule slot) and those in the buffer. */
  #heldIds(): TaskId[] {
    const ids: TaskId[] = [];
    for (const run of this.#running.list()) ids.push(run.id);
    for (const b of this.#buffer) ids.push(b.task.id);
    return ids;
  }

  /**
   * Tells the tracker which claimed tasks this node holds, for the renewal of their leases (executor.leases): those
   * of #heldIds, those being checked after a remembered cancel (#recheck) and a stopped predecessor's runs still
   * ending (ExecutorDeps.ending). A task that ended is not among them: its outcome
   * went to the tracker before this answer (one mailbox, in order), and the tracker renews it until it is written.
   * A task whose claim is still on its way is not either: that claim has just set its lease, and if it comes after
   * that lease could have ended, the task is renewed and checked before it starts (#recheckLate).
   */
  #tellLeases(): void {
    const ids = this.#heldIds();
    for (const task of this.#rechecking) ids.push(task.id);
    if (this.#d.ending !== undefined) for (const run of this.#d.ending) ids.push(run.id);
    this.#ctx.tell(this.#d.orchestrator, createTrackerLeases(ids));
  }

  /** Reads the tasks running or held here, and stops those cancelled meanwhile (see ExecutorDeps.readStates). */
  readonly #checkCancels = (): void => {
    const ids = this.#heldIds();
    if (ids.length === 0) {
      this.#cancelTimer = undefined;
      return;
    }
    this.#d.readStates!(ids).then(
      (states) => {
        for (const [id, state] of states) {
          if (state !== 'cancelled') continue;
          const run = this.#running.get(id);
          if (run) run.end('cancel');
          else if (this.#buffer.some((b) => b.task.id === id)) this.#dropBuffered(id, 'cancel');
        }
        this.#armCancelCheck();
      },
      (error: unknown) => {
        this.#d.logger.warn('could not read the running tasks for cancels made elsewhere', { error: serializeError(error).message });
        this.#armCancelCheck();
      },
    );
  };

  /** A cancelled task held here has stopped: the tracker says so once its captured output is stored. */
  #stopped(id: TaskId, name: string): void {
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.stopped', id, name, at: this.#d.clock.now() });
  }

  /** Remembers the cancel of a task not here (see #cancelledAhead), forgetting those past their time or room. */
  #rememberCancel(id: TaskId): void {
    const now = this.#d.clock.now();
    const horizon = now - (this.#d.leaseMs ?? 30_000);
    for (const [old, at] of this.#cancelledAhead) {
      if (at > horizon && this.#cancelledAhead.size < CANCELLED_AHEAD_MAX) break;
      this.#cancelledAhead.delete(old);
    }
    this.#cancelledAhead.set(id, now);
  }

  /**
   * Tells the tracker whether claimed tasks wait here (on each change), in the buffer or for their slot (#hold), so
   * their leases are renewed too: before a recovery sweep as well, which a wall-clock jump past their lease would
   * otherwise let take them back while this node still holds them.
   */
  #reportHeld(): void {
    const holding = this.#buffer.length > 0 || this.#waiting.size > 0;
    if (holding === this.#holdingReported) return;
    this.#holdingReported = holding;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.held', holding });
  }

  /** Starts `task` now, or takes its slot now and starts its code at `startAt` (see #hold). */
  #start(task: TaskRecord, startAt?: number): void {
    const { clock } = this.#d;
    const def = this.#d.registry.get(task.name);
    const run = new TaskActor(task, clock, def?.killGraceMs ?? 5000);
    this.#running.add(run);
    if (this.#cancelTimer === undefined && this.#d.readStates !== undefined) this.#armCancelCheck();
    this.#perName.set(task.name, (this.#perName.get(task.name) ?? 0) + 1);
    if (startAt !== undefined && startAt > clock.now()) this.#hold(run, startAt);
    else this.#begin(run, def);
  }

  /**
   * A schedule slot's task claimed ahead of its slot: it holds its slot (it counts as running here) and its code
   * starts on the clock's precise timer at `startAt`, with nothing else on the way (the store write is done).
   * A drain waits for it like any running task (it is at most PREPARE_LEAD_MS away). A stop before then (a cancel,
   * the drain's deadline, a pause of its name or group) ends it unstarted: a shutdown or a pause gives it back to
   * wait for its slot again.
   */
  #hold(run: TaskActor, startAt: number): void {
    const { clock } = this.#d;
    this.#waiting.add(run);
    this.#reportHeld();
    const timer = setTimeoutAt(clock, () => {
      this.#waiting.delete(run);
      run.watchStops(undefined);
      // Started (counted running by the tracker) before it is told nothing waits, so its lease is renewed throughout.
      this.#begin(run, this.#d.registry.get(run.name));
      this.#reportHeld();
    }, startAt);
    run.watchStops({
      onStop: () => {
        clock.clearTimeout(timer);
        run.watchStops(undefined);
        this.#finish(run, undefined, run.stopReason, false);
      },
    });
  }

  /** Starts the code of a run that holds its slot. */
  #begin(run: TaskActor, def: ResolvedTask | undefined): void {
    const task = run.record;
    this.#stats.started++;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.started', id: task.id, name: task.name, attempt: task.attempts, owner: this.#d.owner, at: run.startedAt });
    if (!def) {
      this.#finish(run, undefined, new TroupeError(ErrorCodes.UNKNOWN_TASK, `No task named \`${task.name}\` is registered on this node`, { details: { permanent: true } }), true);
      return;
    }
    if (def.adaptive) {
      this.#adaptiveOf(def).onStart();
      run.t0 = performance.now();
    }
    if (this.#d.telemetry) run.span = this.#d.telemetry.startRun(task);
    run.armTimeout(task.options?.timeoutMs ?? def.timeoutMs);
    run.def = def;
    if (def.kind === 'handler') {
      // The run is its own pool job and reports to #sink: no job object or closures per run.
      try {
        this.#d.pool().submit(run.asJob(def.handler, task.input, this.#sink));
      } catch (error) {
        queueMicrotask(() => this.#finish(run, def, error, false));
      }
      return;
    }
    let work: Promise<unknown>;
    try {
      work = this.#execute(def, run, task);
    } catch (error) {
      work = Promise.reject(error);
    }
    work.then(
      (result) => this.#finish(run, def, undefined, false, result),
      (error: unknown) => this.#finish(run, def, thrownError(error), false),
    );
  }

  /** Starts the code of a command or inline run (a handler run is a pool job, see #start). */
  #execute(def: Exclude<ResolvedTask, { kind: 'handler' }>, run: TaskActor, task: TaskRecord): Promise<unknown> {
    switch (def.kind) {
      case 'command': {
        const args = def.args(task.input);
        if (task.children !== undefined) {
          const children = task.children;
          return withChildrenFile(this.#d.tempDir, { id: task.id, attempt: run.attempt }, children, (file) =>
            this.#command(def, run, args, { ...def.env, [CHILDREN_FILE_ENV]: file }));
        }
        return this.#command(def, run, args, def.env);
      }
      case 'inline': {
        const ctx = new InlineContext(run, task, this.#sink);
        // The code starts in this call, not a microtask later: on an idle runtime the hop would put it behind
        // whatever else was queued (the enqueue's own reply chain). A synchronous result ends the run here too.
        // Its CPU figure is the time inside this call: main-thread time the code held the event loop, on a clock
        // read twice (≈0.1 µs). What its continuations compute after an await is not counted.
        let value: unknown;
        // Timed only for the advisor's statistics (the clock is read twice on every inline run otherwise).
        const calledAt = this.#d.stats ? performance.now() : -1;
        try {
          value = def.run(task.input, ctx);
        } catch (error) {
          if (calledAt >= 0) run.cpuMs = performance.now() - calledAt;
          return Promise.reject(error);
        }
        if (calledAt >= 0) run.cpuMs = performance.now() - calledAt;
        if (!isThenable(value)) return Promise.resolve(value);
        const result = Promise.resolve(value);
        // Inline code cannot be killed: once the hard stop comes, the run counts as ended. The stop is watched the
        // way the thread pool watches its jobs (no hard AbortController and listener per run).
        return new Promise((resolve, reject) => {
          run.watchStops({ onStop: (_token, hard) => hard && reject(run.stopReason) });
          result.then(
            (v) => {
              run.watchStops(undefined);
              resolve(v);
            },
            (e: unknown) => {
              run.watchStops(undefined);
              reject(e);
            },
          );
        });
      }
    }
  }

  /** Runs a command task's process; its result is the last `::result <json>` it printed, or its exit code and line counts. */
  #command(def: Extract<ResolvedTask, { kind: 'command' }>, run: TaskActor, args: readonly string[], env: Readonly<Record<string, string>> | undefined): Promise<unknown> {
    return this.#d
      .runCommand({
        command: def.command,
        args,
        ...(def.cwd ? { cwd: def.cwd } : {}),
        ...(env ? { env } : {}),
        killGraceMs: def.killGraceMs,
        stops: run,
        maxLines: def.output.maxLines,
        maxBytes: def.output.maxBytes,
        onLines: (stream, texts) => this.#output(run, stream, texts),
        onProgress: (p: Progress) => this.#progress(run, p),
        // The process is sampled only for the advisor's statistics (see process-usage.ts).
        ...(this.#d.stats ? { onUsage: (cpuMs: number | undefined, peakRssMb: number | undefined) => run.onUsage(cpuMs, peakRssMb) } : {}),
      })
      .then((r) => (r.value !== undefined ? r.value : { exitCode: r.exitCode, lines: r.lines }));
  }

  #progress(run: TaskActor, progress: Progress): void {
    if (!this.#running.has(run)) return;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.progress', id: run.id, name: run.name, progress, at: this.#d.clock.now() });
  }

  /**
   * Lines captured together (one pipe chunk, or one log line) go to the tracker in one message, with the caps of
   * the run's definition: the store keeps the task's output within them, whatever kind of task printed it.
   */
  #output(run: TaskActor, stream: OutputStream, texts: string[]): void {
    // A run that has ended (an inline handler stopped at its grace, still logging) adds nothing to its task.
    if (!this.#running.has(run)) return;
    run.outputLines += texts.length;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.output', id: run.id, name: run.name, stream, texts, at: this.#d.clock.now(), caps: run.def?.output });
  }

  #finish(run: TaskActor, def: ResolvedTask | undefined, error: unknown, permanent: boolean, result?: unknown): void {
    if (!this.#running.remove(run)) return;
    run.dispose();
    if (this.#halted) this.#d.ending?.delete(run);
    // A name's count stays at 0 rather than leaving the map: on an idle node every run would otherwise add and
    // remove it (names are few: the registered ones).
    this.#perName.set(run.name, Math.max(0, (this.#perName.get(run.name) ?? 1) - 1));

    const op = this.#decide(run, def, error, permanent, result);
    if (def?.adaptive) {
      const code = (error as { code?: unknown } | undefined)?.code;
      this.#adaptive.get(run.name)?.onEnd({ durationMs: performance.now() - run.t0, ok: op?.type === 'succeeded', dropped: run.reason === 'timeout' || code === ErrorCodes.RESOURCE_LIMIT });
    }
    if (this.#d.stats && op && op.type !== 'release' && op.type !== 'progress' && op.type !== 'output') this.#observe(run, op, error);
    else if (this.#d.stats && run.reason === 'cancel') this.#observe(run, undefined, error);
    if (run.span) {
      const outcome = op === undefined ? 'cancelled' : op.type === 'retry' ? 'retrying' : op.type === 'release' ? 'released' : (op.type as 'succeeded' | 'failed' | 'timed_out');
      run.span.end(outcome, op && 'error' in op ? op.error : undefined);
    }
    // A run that never started (it waited for its slot, see #hold) was never counted as running by the tracker.
    if (op) this.#ctx.tell(this.#d.orchestrator, this.#waiting.size > 0 && this.#waiting.delete(run) ? { type: 'tracker.settle', op, name: run.name, startedAt: run.startedAt, held: true } : { type: 'tracker.settle', op, name: run.name, startedAt: run.startedAt });
    else if (this.#waiting.size > 0) this.#waiting.delete(run);
    this.#reportHeld();
    // Told after every output message of the run (one mailbox, in order): `task.stopped` follows its lines.
    if (run.reason === 'cancel') this.#stopped(run.id, run.name);
    this.#maybeDrained();
    this.#demand();
  }

  #decide(run: TaskActor, def: ResolvedTask | undefined, error: unknown, permanent: boolean, result: unknown): SettleOp | undefined {
    // JSON writes NaN and ±Infinity as null: on a store of JSON the caller gets what is stored (see below).
    if (typeof result === 'number' && !Number.isFinite(result) && this.#d.unstorable) result = null;
    if (error === undefined && result !== undefined && result !== null && typeof result !== 'number' && typeof result !== 'boolean') {
      // A result the store would refuse must not reach a write batch (it would fail the batch, again and again).
      const problem = this.#d.unstorable?.(result);
      if (problem !== undefined) {
        error = new TroupeError(ErrorCodes.TASK_FAILED, `The result of \`${run.name}\` cannot be stored: ${problem}`, { details: { permanent: true } });
        permanent = true;
      } else if (this.#d.unstorable && typeof result === 'object' && jsonProblem(result, undefined, true) !== undefined) {
        // A store of JSON keeps what JSON writes (a Map as {}, NaN as null): the caller awaiting the result gets
        // that too, as every other node and every later read will.
        const text = JSON.stringify(result) as string | undefined;
        result = text === undefined ? null : (JSON.parse(text) as unknown);
      }
    }
    const base = { id: run.id, owner: this.#d.owner, attempt: run.attempt, at: this.#d.clock.now() };
    const reason = run.reason;
    if (reason === 'cancel') {
      run.send({ type: 'cancel' });
      return undefined;
    }
    if (reason === 'shutdown' || reason === 'paused' || (error !== undefined && isRequeue(error))) {
      this.#stats.released++;
      const why = reason === 'shutdown' ? this.#shutdownReason() : reason === 'paused' ? reason : 'thread ended';
      // A slot's task written ahead and stopped before its slot (#hold) waits for its slot again, on any node.
      const runAt = run.record.runAt;
      if (runAt > base.at) {
        run.send({ type: 'release_before_due' });
        return { type: 'release', ...base, reason: why, runAt };
      }
      run.send({ type: 'release' });
      return { type: 'release', ...base, reason: why };
    }
    const policy: RetryPolicy | undefined = run.record.options?.retry ?? def?.retry;
    const maxAttempts = run.record.maxAttempts;
    const canRetry = !permanent && run.attempt < maxAttempts;
    if (reason === 'timeout') {
      const err = serializeError(new TroupeError(ErrorCodes.TIMEOUT, `Task \`${run.name}\` (${run.id}) timed out`, { cause: error }));
      if (run.send({ type: 'time_out', retry: canRetry }) && run.state === 'retrying') return this.#retryOp(base, policy, err);
      return { type: 'timed_out', ...base, error: err };
    }
    if (error === undefined) {
      run.send({ type: 'succeed' });
      this.#stats.succeeded++;
      // Written out (no spread of `base`): a spread copies key by key on a slow path, and this is every run's op.
      return { type: 'succeeded', id: base.id, owner: base.owner, attempt: base.attempt, at: base.at, result: result === undefined ? null : result };
    }
    const err = serializeError(error);
    if (err.hint === 'delay' && typeof err.details?.until === 'number') {
      run.send({ type: 'fail', retry: true });
      this.#stats.retried++;
      return { type: 'retry', ...base, runAt: err.details.until as number, error: err, reason: 'delayed by the task' };
    }
    // A module that cannot load will not load on the next attempt either: no crash loop. Nor will an input refused
    // when the task runs (a built-in task's check that needs the node, an input no thread can take) be taken later.
    const retry = canRetry && err.hint !== 'permanent' && err.details?.permanent !== true && err.code !== ErrorCodes.HANDLER_LOAD && err.code !== ErrorCodes.INVALID_INPUT;
    run.send({ type: 'fail', retry });
    if (run.state === 'retrying') return this.#retryOp(base, policy, err);
    this.#stats.failed++;
    return { type: 'failed', ...base, error: err };
  }

  #observe(run: TaskActor, op: SettleOp | undefined, error: unknown): void {
    const at = this.#d.clock.now();
    const outcome: RunOutcome = op === undefined ? 'cancelled' : op.type === 'retry' ? 'retrying' : (op.type as RunOutcome);
    let cause: FailureCause | undefined;
    if (outcome !== 'succeeded' && outcome !== 'cancelled') {
      const code = (error as { code?: unknown } | undefined)?.code;
      const hint = op && 'error' in op ? op.error.hint : undefined;
      if (op && op.type === 'retry' && hint === 'delay') return;
      cause = run.reason === 'timeout' ? 'timeout' : code === ErrorCodes.WORKER_CRASHED ? 'crash' : code === ErrorCodes.RESOURCE_LIMIT ? 'out_of_memory' : hint === 'permanent' ? 'permanent' : 'error';
    }
    const observation: RunObservation = {
      name: run.name,
      at,
      attempt: run.attempt,
      outcome,
      durationMs: Math.max(0, at - run.startedAt),
      waitMs: Math.max(0, run.startedAt - run.record.runAt),
      outputLines: run.outputLines,
    };
    if (cause) observation.cause = cause;
    if (run.cpuMs !== undefined) observation.cpuMs = run.cpuMs;
    if (run.peakRssMb !== undefined) observation.peakRssMb = run.peakRssMb;
    this.#d.stats!.observe(observation);
  }

  #retryOp(base: { id: TaskId; owner: string; attempt: number; at: number }, policy: RetryPolicy | undefined, error: SerializedError): SettleOp {
    const delay = policy ? computeBackoff(policy, base.attempt, this.#d.random) : 0;
    this.#stats.retried++;
    return { type: 'retry', ...base, runAt: base.at + delay, error, reason: `retry in ${delay} ms` };
  }

  #maybeDrained(): void {
    if (!this.#draining || this.#running.size > 0 || this.#buffer.length > 0 || this.#rechecking.size > 0 || this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) this.#ctx.tell(w, { type: 'reply', ok: true, value: true });
  }
}

/**
 * What inline code threw, as an error the executor can read: its plain copy (what the store keeps of it anyway).
 * Why: a bare `Promise.reject()` or `throw undefined` must fail the run (`undefined` means success to #finish), and
 * a thrown value whose properties throw when read (a getter, a Proxy, an object without a prototype) must fail its
 * task, not take the process down from inside the executor. The runtime's own errors pass as they are.
 */
function thrownError(error: unknown): unknown {
  let ours = false;
  try {
    ours = isTroupeError(error);
  } catch {
    // a Proxy whose traps throw: not ours
  }
  if (ours) return error;
  const data = serializeError(error);
  const copy = deserializeError(data);
  // A thrown value without a stack keeps none (not the stack of this copy).
  if (data.stack === undefined) delete (copy as { stack?: string }).stack;
  return copy;
}

/** A field of a task record for a log line, or undefined if reading it throws (a malformed record that crashed the executor). */
function readSafely(task: TaskRecord, field: 'id' | 'name'): string | undefined {
  try {
    return String(task[field]);
  } catch {
    return undefined;
  }
}

/** Whether the lease of any of `tasks` ends before `time` (a plain loop: this runs for every dispatch). */
function anyLeaseBefore(tasks: readonly TaskRecord[], time: number): boolean {
  for (let i = 0; i < tasks.length; i++) {
    const until = tasks[i]!.leaseUntil;
    if (until !== undefined && until < time) return true;
  }
  return false;
}

/** Errors that say "not this task's fault, run it again": a batch-mate's thread ended, the pool's queue was full. */
function isRequeue(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; details?: { requeue?: unknown } };
  return e.details?.requeue === true || e.code === ErrorCodes.POOL_EXHAUSTED;
}
