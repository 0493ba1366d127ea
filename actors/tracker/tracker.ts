/**
 * The tracker: the source of truth for task state. Every change goes through the store here, and a fact is
 * published only after its change is committed.
 *
 * Group commit: enqueues and outcomes arriving while a write is in flight are gathered and written together in
 * the next transaction, so a busy runtime makes few, large transactions and an idle one writes at once.
 * Progress and output are published live and persisted in the same batches (the latest progress per task wins).
 * On durable stores an outcome waits for the end of the current event-loop turn before it is written, so every
 * run that ended in the same burst of work shares one transaction (a commit is the cost there, not a row); the
 * memory store writes at once.
 *
 * It also keeps the leases of this process alive and takes back tasks whose lease expired anywhere (a node that
 * died), putting them back in the queue; each sweep renews this process's own leases first, so a wall-clock jump
 * cannot make it take back what it still runs (#armRecovery). A renewal names its tasks (#renew): those the executor
 * says it holds (running, buffered, waiting for their slot) and those whose outcome is not written yet, in one
 * heartbeat statement. Never all the running tasks of this node id: a process restarted with the same `nodeId`
 * would keep alive the leases of the tasks its crashed predecessor held, and they would never come back.
 *
 * A batch the store refuses while it is reachable (`TROUPE_ERR_STORE`: one op in it cannot be written) is narrowed
 * down: written in halves until the op is alone, so the others are not held up by it. An op refused alone
 * {@link REFUSALS_BEFORE_GIVING_UP} times is given up: an outcome becomes a failure saying why (and if even that
 * is refused, the task is left to its lease, and runs again), output lines and progress are dropped with an
 * error in the log. A store that is unreachable is waited for instead, with backoff, and nothing is given up.
 */
import type { Actor, ActorContext } from '../../src/actor/actor.ts';
import type { Clock, TimerHandle } from '../../src/clock.ts';
import { ErrorCodes, TroupeError, isTroupeError, serializeError } from '../../src/errors.ts';
import type { TaskId } from '../../src/ids.ts';
import type { Logger } from '../../src/options.ts';
import type { ClaimRequest, EnqueueResult, SettleOp, Store } from '../../src/store/store.ts';
import type { NewTask, OutputLine, TaskRecord } from '../../src/task.ts';
import { createExecutorAbort, createExecutorDispatch, createExecutorLeases } from '../executor/messages.ts';
import type { TroupeMessage } from '../messages.ts';
import { createSchedulerWake, offerLeft } from '../scheduler/messages.ts';
import {
  createTaskOutput,
  createTaskProgress,
  createTaskQueued,
  createTaskScheduled,
  createTaskStarted,
  type TaskCancelled,
} from '../task/messages.ts';
import { createErrorReply, createReply, type ClaimOffer, type TrackerMessage, type TrackerSettle, type TrackerStopped } from './messages.ts';
import { nextOutputSeq } from './output-seq.ts';
import { CRASHES_BEFORE_GIVING_UP, TrackerBacklog, type PendingEnqueue } from './backlog.ts';
import { soon } from '../../src/soon.ts';
import { flowCancelledReason } from '../../src/flow.ts';

export interface TrackerDeps {
  store: Store;
  clock: Clock;
  owner: string;
  leaseMs: number;
  heartbeatMs: number;
  logger: Logger;
  /** Route for messages to other actors. */
  orchestrator: string;
  /**
   * What a tracker has queued and not written, shared by the trackers of one runtime so that one restarted after a
   * crash writes what its predecessor had queued (TrackerBacklog). Absent: a backlog of this tracker's own.
   */
  backlog?: TrackerBacklog;
}

/** Times an op written alone is refused (with backoff between) before it is given up. */
const REFUSALS_BEFORE_GIVING_UP = 3;

/** The store is reachable but refused the write (as opposed to being unreachable, closed or corrupt). */
function isRefusal(error: unknown): boolean {
  return isTroupeError(error) ? error.code === ErrorCodes.STORE : true;
}

/**
 * Outcomes written together at most, when a burst of work keeps the event-loop turn from ending (a synchronous
 * store and a prefetch buffer can keep runs starting and ending in one turn). At 256,
 * at 20,000 tasks/s an outcome waits ≈ 13 ms at most, and a burst costs one settle commit per 256 tasks, not 64.
 */
const SETTLE_BATCH = 256;
const NO_TASKS: readonly TaskRecord[] = Object.freeze([]);
const NO_SETTLES: readonly TrackerSettle[] = Object.freeze([]);
const NO_IDS: readonly TaskId[] = Object.freeze([]);

/** Whether any task is due at `now`. */
function anyDue(tasks: readonly NewTask[], now: number): boolean {
  for (let i = 0; i < tasks.length; i++) if (tasks[i]!.runAt <= now) return true;
  return false;
}

/** Whether task `id` is among a few `claimed` ones (more are looked up in a Set). */
function isClaimed(claimed: readonly TaskRecord[], id: TaskId): boolean {
  for (let i = 0; i < claimed.length; i++) if (claimed[i]!.id === id) return true;
  return false;
}

/**
 * One enqueue write in flight: its requests, their tasks, the claim offer it uses and what the claim held back.
 * An object instead of closures: under tsx (which keeps function names) each named closure costs a
 * `defineProperty` (≈0.3–0.5 µs), and three of them were on the way of every `run()`.
 */
class EnqueueWrite {
  held: { retryAt: number | undefined } | undefined;
  /** The offer's limit this write claimed with. */
  limit = 0;
  /** The store said the claim left nothing of its names due (EnqueueAndClaimResult.drained). */
  drained = false;
  /** A slot's write ahead of it: claimed as of this time, started then (TrackerEnqueue.startAt). */
  startAt: number | undefined;
  constructor(
    readonly batch: PendingEnqueue[],
    readonly tasks: NewTask[],
    readonly offer: ClaimOffer | undefined,
  ) {}

  heldBack(retryAt: number | undefined): void {
    const held = this.held;
    this.held = { retryAt: retryAt === undefined ? held?.retryAt : Math.min(retryAt, held?.retryAt ?? Infinity) };
  }
}

export class Tracker implements Actor<TroupeMessage> {
  readonly #ctx: ActorContext<TroupeMessage>;
  readonly #d: TrackerDeps;
  /** The queues and writes in flight, shared with a predecessor and a successor (TrackerBacklog). */
  readonly #q: TrackerBacklog;
  /** A settle write is queued for the end of this event-loop turn (durable stores). */
  #settleSoon: NodeJS.Immediate | undefined;
  /** A restarted tracker's first write of its predecessor's backlog (start). */
  #wakeSoon: NodeJS.Immediate | undefined;
  #running = 0;
  /** Claimed tasks wait in the executor, buffered or for their slot (their leases are kept alive too). */
  #holding = false;
  /**
   * The executor's last answer (tracker.leases) named tasks. Why: a restarted tracker has heard of no start, and
   * learns only from that answer that the process holds leases; it keeps the heartbeat armed until an answer is empty.
   */
  #told = false;
  #heartbeat: TimerHandle | undefined;
  #recovery: TimerHandle | undefined;
  /**
   * The executor was asked which tasks it holds (executor.leases) and has not answered yet. `sweep`: a recovery
   * sweep waits for the renewal; `guard` ends the wait if no answer comes (#leasesUnanswered).
   */
  #leasesAsked: { sweep: boolean; guard: TimerHandle } | undefined;
  #stopped = false;
  #stats = { enqueued: 0, settled: 0, batches: 0, recovered: 0 };
  #retryTimer: TimerHandle | undefined;
  #backoffMs = 100;
  /** The scheduler's standing claim offer (see TrackerClaimOffer): used by the next enqueue of a due task. */
  #offer: ClaimOffer | undefined;
  /** What the standing offer may still claim: its request's limit less what enqueues took with it (offerLeft). */
  #offerLimit = 0;
  /** The enqueue write in flight with a claim (one at a time), told by #onHeldBack what its claim held back. */
  #writing: EnqueueWrite | undefined;
  /** The claim's `onHeldBack`, one function for every write (a closure per write costs a `defineProperty` under tsx). */
  readonly #onHeldBack = (retryAt: number | undefined): void => this.#writing?.heldBack(retryAt);
  #storeHealth: { healthy: boolean; lastError?: string; since?: number } = { healthy: true };

  constructor(ctx: ActorContext<TroupeMessage>, deps: TrackerDeps) {
    this.#ctx = ctx;
    this.#d = deps;
    this.#q = deps.backlog ?? new TrackerBacklog();
  }

  /**
   * The first start sweeps at once. A restart first asks the executor which tasks the process holds, renews them and
   * arms the heartbeat, then sweeps (#askLeases): the crashed tracker's counts are gone with it, and without the
   * question the new one renewed nothing until the next start or hold message, and its own sweep took back a long
   * task still running here once its lease ended (it ran twice at once).
   */
  start(): void {
    this.#q.wake = this.#wake;
    if (this.#ctx.restarts > 0) {
      this.#adopt();
      this.#askLeases(true);
      // After the start, once the mailbox is open: a crash in this write is a crash like any other.
      this.#wakeSoon = setImmediate(() => {
        this.#wakeSoon = undefined;
        this.#wake();
      });
    } else this.#armRecovery(0);
  }

  /**
   * Stops the timers. What is queued stays in the backlog for a successor (TrackerBacklog), and a write in flight
   * hands on to it when it ends; this tracker starts no write of its own any more.
   */
  stop(): void {
    this.#stopped = true;
    if (this.#q.wake === this.#wake) this.#q.wake = undefined;
    this.#d.clock.clearTimeout(this.#heartbeat);
    this.#d.clock.clearTimeout(this.#recovery);
    this.#d.clock.clearTimeout(this.#retryTimer);
    this.#d.clock.clearTimeout(this.#leasesAsked?.guard);
    this.#leasesAsked = undefined;
    if (this.#settleSoon) clearImmediate(this.#settleSoon);
    this.#settleSoon = undefined;
    if (this.#wakeSoon) clearImmediate(this.#wakeSoon);
    this.#wakeSoon = undefined;
  }

  describe(): Record<string, unknown> {
    return { ...this.#stats, pendingWrites: this.#q.settles.length + this.#q.enqueues.length, runningHere: this.#running, holding: this.#holding, store: this.#storeHealth };
  }

  /**
   * Writes what waits in the backlog: at a restart, and when a stopped predecessor's write in flight has ended. Called
   * outside this tracker's mailbox: what it throws is this tracker's crash (ctx.fail).
   */
  readonly #wake = (): void => {
    if (this.#stopped) return;
    try {
      this.#flushEnqueues();
      this.#flushSettles();
      if (this.#q.stops.length > 0) this.#publishStops();
      this.#maybeAnswerFlush();
    } catch (error) {
      this.#ctx.fail(error);
    }
  };

  /**
   * Takes on a crashed predecessor's backlog. Ops it had taken for a write whose store call was never made (the
   * crash came while that write was prepared: one of them may be what crashed it) go back to the head of the queues,
   * to be written one by one; one taken at CRASHES_BEFORE_GIVING_UP crashes is given up instead, with an error in
   * the log: an enqueue's caller gets a TROUPE_ERR_INTERNAL reply (nothing of it was written), an outcome is left to
   * the task's lease (it runs again), output lines and progress are dropped. The rest is written as it was queued.
   */
  #adopt(): void {
    const q = this.#q;
    const taken = q.taken;
    q.taken = undefined;
    if (taken === undefined) return;
    if ('enqueues' in taken) {
      q.enqueueBusy = false;
      const kept: PendingEnqueue[] = [];
      for (const e of taken.enqueues) {
        if (!q.crashedWith(e)) {
          kept.push(e);
          continue;
        }
        if (e.startAt !== undefined) q.aheadPending--;
        const error = new TroupeError(ErrorCodes.INTERNAL, `The tracker crashed ${CRASHES_BEFORE_GIVING_UP} times while it wrote this enqueue; it was given up and nothing of it was written`);
        this.#ctx.tell(e.replyTo, createErrorReply(serializeError(error)));
        this.#d.logger.error('an enqueue crashed the tracker; given up, its caller told', { tasks: e.tasks.length });
      }
      q.enqueues = [...kept, ...q.enqueues];
      q.enqueueSolo = Math.max(q.enqueueSolo, kept.length);
      return;
    }
    q.settleBusy = false;
    q.inFlight = [];
    q.settling = NO_SETTLES;
    const side: SettleOp[] = [];
    for (const op of taken.side) {
      if (!q.crashedWith(op)) side.push(op);
      else this.#d.logger.error('output lines or progress crashed the tracker; dropped', { id: safeId(op) });
    }
    const settles: TrackerSettle[] = [];
    for (const s of taken.settles) {
      if (!q.crashedWith(s)) {
        settles.push(s);
        continue;
      }
      if (!s.held) this.#running = Math.max(0, this.#running - 1);
      this.#d.logger.error('an outcome crashed the tracker; given up: the task runs again when its lease expires', { id: safeId(s), name: s.name });
    }
    const lines: SettleOp[] = [];
    for (const op of side) {
      if (op.type !== 'progress') lines.push(op);
      else if (!q.progress.has(op.id)) q.progress.set(op.id, op);
    }
    q.sideOps = [...lines, ...q.sideOps];
    q.settles = [...settles, ...q.settles];
    // One op per write until the queues are empty: a poison op then crashes a write of its own only.
    if (side.length + settles.length > 0) q.writeLimit = 1;
  }

  /** Whether the last write reached the store (false while it is unreachable and writes are being retried). */
  get storeHealth(): { healthy: boolean; lastError?: string; since?: number } {
    return this.#storeHealth;
  }

  #storeError(error: unknown): void {
    const message = serializeError(error).message;
    if (this.#storeHealth.healthy) this.#d.logger.error('store write failed; retrying', { error: message });
    this.#storeHealth = { healthy: false, lastError: message, since: this.#storeHealth.since ?? this.#d.clock.now() };
  }

  #storeOk(): void {
    this.#backoffMs = 100;
    if (!this.#storeHealth.healthy) this.#storeHealth = { healthy: true };
  }

  receive(msg: TroupeMessage): void {
    const m = msg as TrackerMessage;
    switch (m.type) {
      case 'tracker.enqueue':
        if (m.startAt === undefined) this.#q.enqueues.push({ tasks: m.tasks, replyTo: m.replyTo });
        else {
          this.#q.enqueues.push({ tasks: m.tasks, replyTo: m.replyTo, startAt: m.startAt });
          this.#q.aheadPending++;
        }
        this.#flushEnqueues();
        return;
      case 'tracker.started':
        this.#running++;
        this.#armHeartbeat();
        this.#ctx.publish(createTaskStarted(m.id, m.name, m.at, m.attempt, m.owner));
        return;
      case 'tracker.held':
        this.#holding = m.holding;
        if (m.holding) this.#armHeartbeat();
        return;
      case 'tracker.leases':
        this.#leasesTold(m.ids);
        return;
      case 'tracker.settle':
        this.#q.settles.push(m);
        this.#flushSettles();
        return;
      case 'tracker.progress': {
        this.#ctx.publish(createTaskProgress(m.id, m.name, m.at, m.progress));
        this.#q.progress.set(m.id, { type: 'progress', id: m.id, at: m.at, progress: m.progress });
        this.#flushSettles();
        return;
      }
      case 'tracker.output': {
        // The lines join the task's pending output op (written with the next batch, with the caps the store keeps
        // the task's output within), then one fact per line, in order: a subscriber that throws cannot keep the rest
        // of the chunk from the store.
        const last = this.#q.sideOps[this.#q.sideOps.length - 1];
        let lines: OutputLine[];
        if (last && last.type === 'output' && last.id === m.id) lines = last.lines;
        else this.#q.sideOps.push({ type: 'output', id: m.id, lines: (lines = []), caps: m.caps });
        const from = lines.length;
        for (const text of m.texts) lines.push({ seq: nextOutputSeq(m.at), stream: m.stream, text, at: m.at });
        this.#flushSettles();
        if (this.#ctx.bus.hasSubscribers('task.output')) {
          for (let i = from; i < lines.length; i++) this.#ctx.publish(createTaskOutput(m.id, m.name, lines[i]!));
        }
        return;
      }
      case 'tracker.stopped':
        this.#q.stops.push(m);
        this.#publishStops();
        return;
      case 'tracker.cancel':
        this.#cancel(m.id, m.reason, m.replyTo);
        return;
      case 'tracker.retry':
        this.#retry(m.id, m.replyTo);
        return;
      case 'tracker.query':
        this.#answer(m);
        return;
      case 'tracker.claim-offer':
        this.#offer = m.offer;
        this.#offerLimit = m.offer?.request.limit ?? 0;
        return;
      case 'tracker.flush':
        this.#q.flushWaiters.push(m.replyTo);
        this.#flushSettles();
        this.#maybeAnswerFlush();
        return;
      default:
        return;
    }
  }

  #flushEnqueues(): void {
    if (this.#q.enqueueBusy || this.#q.enqueues.length === 0) return;
    if (this.#stopped) {
      this.#q.wake?.();
      return;
    }
    // After a refused batch, the requests waiting then are written one by one: one caller's bad task is refused
    // to that caller only.
    const solo = this.#q.enqueueSolo > 0;
    let batch: PendingEnqueue[];
    if (solo) {
      batch = this.#q.enqueues.splice(0, 1);
      this.#q.enqueueSolo--;
    } else if (this.#q.aheadPending === 0) {
      batch = this.#q.enqueues;
      this.#q.enqueues = [];
    } else {
      // A slot's write ahead of it goes alone (its claim is as of its slot); the requests before it go together.
      const ahead = this.#q.enqueues.findIndex((e) => e.startAt !== undefined);
      batch = this.#q.enqueues.splice(0, ahead === 0 ? 1 : ahead);
    }
    const startAt = batch.length === 1 ? batch[0]!.startAt : undefined;
    if (startAt !== undefined) this.#q.aheadPending--;
    this.#q.enqueueBusy = true;
    this.#q.taken = { enqueues: batch };
    const tasks = batch.length === 1 ? batch[0]!.tasks : batch.flatMap((b) => b.tasks);
    // Ahead of a slot the claim is as of the slot: its tasks are due then, and start then (the executor holds them).
    const now = startAt === undefined ? this.#d.clock.now() : Math.max(this.#d.clock.now(), startAt);
    // The scheduler waits with free slots: claim in this write (a due task then starts without a wake-up trip).
    const offer = this.#offer !== undefined && !this.#stopped && !solo && this.#d.store.enqueueAndClaim !== undefined && anyDue(tasks, now) ? this.#offer : undefined;
    // One object per write and no named closures: this is the start of every `run()` (see EnqueueWrite).
    const w = new EnqueueWrite(batch, tasks, offer);
    w.startAt = startAt;
    if (offer) {
      // The offer stays while the write is in flight (one write at a time); once done, it stands with what
      // offerLeft leaves of it, unless the scheduler replaced or withdrew it meanwhile.
      this.#writing = w;
      const request = offerRequest(offer.request, now, this.#offerLimit, this.#onHeldBack);
      w.limit = this.#offerLimit;
      this.#q.taken = undefined;
      attempt(() => this.#d.store.enqueueAndClaim!(tasks, request)).then(
        (r) => {
          w.drained = r.drained === true;
          this.#enqueueWritten(w, r.results, r.claimed);
        },
        (error: unknown) => this.#enqueueFailed(w, error),
      );
    } else {
      this.#q.taken = undefined;
      attempt(() => this.#d.store.enqueue(tasks)).then(
        (results) => this.#enqueueWritten(w, results, NO_TASKS),
        (error: unknown) => this.#enqueueFailed(w, error),
      );
    }
  }

  #enqueueWritten(w: EnqueueWrite, results: EnqueueResult[], claimed: readonly TaskRecord[]): void {
    if (this.#writing === w) this.#writing = undefined;
    const { tasks, offer } = w;
    if (offer !== undefined && this.#offer === offer) {
      this.#offerLimit = offerLeft(w.limit, offer.request, claimed.length);
      if (this.#offerLimit === 0) this.#offer = undefined;
    }
    this.#stats.enqueued += tasks.length;
    if (offer && claimed.length > 0) {
      // The claimed tasks go to the executor first, and the rest of this write's work (facts, replies, wake-ups)
      // waits one microtask: the executor's turn comes before it, so a claimed task is on its thread while that
      // work is done. Facts stay in order: the tracker hears of the start after this, in its mailbox.
      this.#ctx.tell(this.#d.orchestrator, createExecutorDispatch(claimed as TaskRecord[], true, w.startAt));
      soon(() => this.#afterEnqueue(w, results, claimed, this.#d.clock.now()));
      return;
    }
    this.#afterEnqueue(w, results, claimed, this.#d.clock.now());
  }

  /** An enqueue's facts, the scheduler's news and the callers' replies, once its claimed tasks are dispatched. */
  #afterEnqueue(w: EnqueueWrite, results: EnqueueResult[], claimed: readonly TaskRecord[], at: number): void {
    this.#q.enqueueBusy = false;
    const { batch, tasks, offer } = w;
    const taken = claimed.length > 8 ? new Set(claimed.map((t) => t.id)) : undefined;
    let due = false;
    let scheduled = false;
    for (let i = 0; i < tasks.length; i++) {
      const r = results[i]!;
      if (!r.created) continue;
      const t = tasks[i]!;
      if (t.runAt > at) {
        // Claimed ahead of its slot (TrackerEnqueue.startAt): it waits in the executor, not in the store.
        if (claimed.length === 0 || !(taken === undefined ? isClaimed(claimed, t.id) : taken.has(t.id))) scheduled = true;
        this.#ctx.publish(createTaskScheduled(t.id, t.name, at, t.runAt));
      } else {
        if (taken === undefined ? !isClaimed(claimed, t.id) : !taken.has(t.id)) due = true;
        this.#ctx.publish(createTaskQueued(t.id, t.name, at, t.runAt));
      }
    }
    if (offer) {
      const held = w.held;
      this.#ctx.tell(this.#d.orchestrator, {
        type: 'scheduler.offer-taken', serial: offer.serial, claimed: claimed.length, heldBack: held !== undefined,
        ...(held?.retryAt !== undefined ? { retryAt: held.retryAt } : {}),
        ...(w.drained ? { drained: true as const } : {}),
      });
    }
    // The replies after the dispatch: a claimed task starts before its caller's await resumes.
    if (batch.length === 1) this.#ctx.tell(batch[0]!.replyTo, createReply(results));
    else {
      let offset = 0;
      for (const { tasks: part, replyTo } of batch) {
        const slice = results.slice(offset, offset + part.length);
        offset += part.length;
        this.#ctx.tell(replyTo, createReply(slice));
      }
    }
    // Without an offer every enqueue wakes the scheduler; with one, only for what its claim did not take.
    if (due || !offer) this.#ctx.tell(this.#d.orchestrator, createSchedulerWake(due ? 'enqueued' : 'scheduled'));
    else if (scheduled) this.#ctx.tell(this.#d.orchestrator, createSchedulerWake('scheduled'));
    this.#flushEnqueues();
    this.#maybeAnswerFlush();
  }

  #enqueueFailed(w: EnqueueWrite, error: unknown): void {
    if (this.#writing === w) this.#writing = undefined;
    this.#q.enqueueBusy = false;
    const { batch, offer } = w;
    if (offer !== undefined && this.#offer === offer) this.#offer = undefined;
    // Nothing was written, nor claimed: the scheduler offers again.
    if (offer) this.#ctx.tell(this.#d.orchestrator, { type: 'scheduler.offer-taken', serial: offer.serial, claimed: 0, heldBack: false });
    if (batch.length > 1 && isRefusal(error)) {
      // Several callers' requests went in one write and the store refused it: try each one alone.
      this.#q.enqueues = [...batch, ...this.#q.enqueues];
      this.#q.enqueueSolo = batch.length;
      this.#flushEnqueues();
      return;
    }
    const serialized = serializeError(error);
    for (const { replyTo } of batch) this.#ctx.tell(replyTo, createErrorReply(serialized));
    this.#d.logger.error('enqueue failed', { error: serialized.message });
    this.#flushEnqueues();
    this.#maybeAnswerFlush();
  }

  #flushSettles(): void {
    if (this.#q.settleBusy || this.#retryTimer !== undefined) return;
    if (this.#q.settles.length === 0 && this.#q.sideOps.length === 0 && this.#q.progress.size === 0) return;
    if (this.#stopped) {
      this.#q.wake?.();
      return;
    }
    if (this.#settleSoon !== undefined) {
      // A turn full of work may never end (a synchronous store keeps it busy): a full batch is written at once.
      if (this.#q.settles.length < SETTLE_BATCH) return;
      clearImmediate(this.#settleSoon);
      this.#settleSoon = undefined;
    } else if (this.#d.store.kind !== 'memory' && !this.#stopped) {
      // Gather what the rest of this turn settles (runs end in bursts of microtasks) into the same transaction.
      this.#settleSoon = setImmediate(() => {
        this.#settleSoon = undefined;
        try {
          this.#writeSettles();
        } catch (error) {
          // Outside the mailbox: a crash all the same (an uncaught exception would end the process).
          this.#ctx.fail(error);
        }
      });
      return;
    }
    this.#writeSettles();
  }

  #writeSettles(): void {
    if (this.#q.settleBusy || this.#retryTimer !== undefined) return;
    if (this.#q.settles.length === 0 && this.#q.sideOps.length === 0 && this.#q.progress.size === 0) return;
    if (this.#stopped) {
      this.#q.wake?.();
      return;
    }
    // Side ops (output lines, progress) are rare beside outcomes: no copies when there are none.
    let side: SettleOp[];
    if (this.#q.sideOps.length === 0 && this.#q.progress.size === 0) side = [];
    else {
      side = [...this.#q.sideOps, ...this.#q.progress.values()];
      this.#q.sideOps = [];
      this.#q.progress = new Map();
    }
    let settles = this.#q.settles;
    this.#q.settles = [];
    // Until the store call is made, a crash leaves these to the successor (TrackerBacklog.taken).
    this.#q.taken = { settles, side };
    const limit = this.#q.writeLimit;
    if (limit !== undefined && side.length + settles.length > limit) {
      // Narrowing down a refused batch: this write takes the first ops, the rest wait (in order) for the next.
      const taken = Math.min(side.length, limit);
      for (const op of side.slice(taken)) {
        if (op.type === 'progress') this.#q.progress.set(op.id, op);
        else this.#q.sideOps.push(op);
      }
      this.#q.settles = settles.slice(limit - taken);
      settles = settles.slice(0, limit - taken);
      side = side.slice(0, taken);
      this.#q.taken = { settles, side };
    }
    const ops: SettleOp[] = side;
    const sideCount = ops.length;
    for (const s of settles) ops.push(s.op);
    this.#q.settleBusy = true;
    this.#q.inFlight = side;
    this.#q.settling = settles;
    this.#q.taken = undefined;
    attempt(() => this.#d.store.settle(ops)).then(
      (applied) => {
        this.#q.settleBusy = false;
        this.#q.inFlight = [];
        this.#q.settling = NO_SETTLES;
        this.#storeOk();
        this.#q.refused = undefined;
        if (this.#q.writeLimit !== undefined && this.#q.settles.length === 0 && this.#q.sideOps.length === 0 && this.#q.progress.size === 0) this.#q.writeLimit = undefined;
        this.#stats.batches++;
        this.#stats.settled += settles.length;
        let wake = false;
        for (let i = 0; i < settles.length; i++) {
          const s = settles[i]!;
          if (s.op.type !== 'progress' && s.op.type !== 'output' && !s.held) this.#running = Math.max(0, this.#running - 1);
          if (!applied[sideCount + i]) {
            this.#reconcile(s);
            continue;
          }
          wake = this.#publishOutcome(s) || wake;
        }
        // A claim held back by a group limit may have run before these ends were written: the scheduler watches
        // the outcome facts while one is held back, and claims again.
        if (wake) this.#ctx.tell(this.#d.orchestrator, createSchedulerWake('requeued'));
        if (this.#q.stops.length > 0) this.#publishStops();
        this.#flushSettles();
        this.#maybeAnswerFlush();
      },
      (error: unknown) => {
        this.#q.settleBusy = false;
        this.#q.inFlight = [];
        this.#q.settling = NO_SETTLES;
        // Nothing was written: keep the batch (outcomes first, in order) and try again.
        this.#q.settles = [...settles, ...this.#q.settles];
        this.#q.sideOps = [...ops.slice(0, sideCount).filter((op) => op.type === 'output'), ...this.#q.sideOps];
        if (isRefusal(error)) {
          if (ops.length > 1) {
            // The store is there but refused one of these ops: write halves until it is alone.
            this.#q.writeLimit = Math.ceil(ops.length / 2);
            this.#writeSettles();
            return;
          }
          const times = this.#q.refused?.op === ops[0] ? this.#q.refused.times + 1 : 1;
          this.#q.refused = { op: ops[0]!, times };
          if (times >= REFUSALS_BEFORE_GIVING_UP) {
            this.#giveUp(ops[0]!, error);
            this.#flushSettles();
            this.#maybeAnswerFlush();
            return;
          }
        }
        // Unreachable, or refused alone: try again with backoff. Running tasks go on meanwhile; their leases are
        // only taken back by others if the store stays away past the lease.
        this.#storeError(error);
        if (this.#stopped) {
          // Stopped meanwhile (a restart): the successor tries again.
          this.#q.wake?.();
          return;
        }
        this.#retryTimer ??= this.#d.clock.setTimeout(() => {
          this.#retryTimer = undefined;
          this.#flushSettles();
        }, this.#backoffMs);
        this.#backoffMs = Math.min(this.#backoffMs * 2, 5000);
      },
    );
  }

  /**
   * An op the store refused alone, again and again: an outcome is replaced by a failure that says why (which
   * settles the task and answers its waiters); if that too is refused, the task is left to its lease (it runs
   * again). Output lines and progress are dropped, with an error in the log.
   */
  #giveUp(op: SettleOp, error: unknown): void {
    this.#q.refused = undefined;
    const message = serializeError(error).message;
    if (op.type === 'output' || op.type === 'progress') {
      this.#q.sideOps = this.#q.sideOps.filter((o) => o !== op);
      if (this.#q.progress.get(op.id) === op) this.#q.progress.delete(op.id);
      this.#d.logger.error(op.type === 'output' ? 'output lines refused by the store; dropped' : 'progress refused by the store; dropped', { id: op.id, ...(op.type === 'output' ? { lines: op.lines.length } : {}), error: message });
      if (this.#q.stops.length > 0) this.#publishStops();
      return;
    }
    const index = this.#q.settles.findIndex((s) => s.op === op);
    const s = this.#q.settles[index];
    if (s === undefined) return;
    if (this.#q.replaced.has(s)) {
      this.#q.settles.splice(index, 1);
      if (!s.held) this.#running = Math.max(0, this.#running - 1);
      this.#d.logger.error('outcome refused by the store; the task runs again when its lease expires', { id: op.id, error: message });
      return;
    }
    const failure = new TroupeError(ErrorCodes.STORE, `The outcome of \`${s.name}\` (${op.type}) could not be stored: ${message}`, { details: { permanent: true } });
    const replaced: TrackerSettle = { ...s, op: { type: 'failed', id: op.id, owner: op.owner, attempt: op.attempt, at: op.at, error: serializeError(failure) } };
    this.#q.replaced.add(replaced);
    this.#q.settles[index] = replaced;
    this.#d.logger.error('outcome refused by the store; the task fails instead', { id: op.id, error: message });
  }

  /**
   * An outcome the store refused: usually a cancel or a lease taken over (nothing to say). But when a retried
   * batch had in fact been committed before the connection dropped, the row already holds this very outcome:
   * publish it then, so waiters are not left hanging.
   */
  #reconcile(s: TrackerSettle): void {
    const op = s.op;
    if (op.type !== 'succeeded' && op.type !== 'failed' && op.type !== 'timed_out' && op.type !== 'retry') return;
    const expected = op.type === 'retry' ? 'retrying' : op.type;
    this.#d.store.get(op.id).then(
      (task) => {
        if (task && task.state === expected && task.attempts === op.attempt && task.owner === op.owner) this.#publishOutcome(s);
      },
      () => {},
    );
  }

  #publishOutcome(s: TrackerSettle): boolean {
    const op = s.op;
    const name = s.name;
    switch (op.type) {
      case 'succeeded':
        this.#ctx.publish({ type: 'task.succeeded', id: op.id, name, at: op.at, attempt: op.attempt, result: op.result, durationMs: Math.max(0, op.at - s.startedAt) });
        return false;
      case 'failed':
        this.#ctx.publish({ type: 'task.failed', id: op.id, name, at: op.at, attempt: op.attempt, error: op.error });
        return false;
      case 'timed_out':
        this.#ctx.publish({ type: 'task.timed_out', id: op.id, name, at: op.at, attempt: op.attempt, error: op.error });
        return false;
      case 'retry':
        this.#ctx.publish({ type: 'task.retrying', id: op.id, name, at: op.at, attempt: op.attempt, runAt: op.runAt, error: op.error });
        return true;
      case 'release':
        this.#ctx.publish(op.runAt === undefined ? createTaskQueued(op.id, name, op.at, op.at) : createTaskScheduled(op.id, name, op.at, op.runAt));
        return true;
      default:
        return false;
    }
  }

  /** `task.stopped` for each stopped run none of whose captured output waits to be written (or is being written). */
  #publishStops(): void {
    const unwritten = (id: TaskId): boolean => this.#q.sideOps.some((op) => op.type === 'output' && op.id === id) || this.#q.inFlight.some((op) => op.type === 'output' && op.id === id);
    const waiting: TrackerStopped[] = [];
    for (const stop of this.#q.stops) {
      if (unwritten(stop.id)) waiting.push(stop);
      else {
        this.#ctx.publish({ type: 'task.stopped', id: stop.id, name: stop.name, at: stop.at });
        // Followers on other nodes wait for it too, where the store can tell them.
        this.#d.store.announceStopped?.({ id: stop.id, name: stop.name, at: stop.at, owner: this.#d.owner }).catch((error: unknown) =>
          this.#d.logger.warn('task.stopped not announced to other nodes', { id: stop.id, error: serializeError(error).message }));
      }
    }
    this.#q.stops = waiting;
  }

  #maybeAnswerFlush(): void {
    if (this.#q.flushWaiters.length === 0) return;
    if (this.#stopped) {
      this.#q.wake?.();
      return;
    }
    const idle = !this.#q.settleBusy && this.#settleSoon === undefined && !this.#q.enqueueBusy && this.#q.settles.length === 0 && this.#q.enqueues.length === 0 && this.#q.sideOps.length === 0 && this.#q.progress.size === 0;
    if (!idle) return;
    const waiters = this.#q.flushWaiters;
    this.#q.flushWaiters = [];
    for (const w of waiters) this.#ctx.tell(w, createReply(true));
  }

  #cancel(id: TaskId, reason: string, replyTo: string): void {
    const at = this.#d.clock.now();
    this.#d.store.cancel(id, at, reason).then(
      (result) => {
        this.#ctx.tell(replyTo, createReply(result));
        if (result.cancelled && result.previous !== undefined) {
          const publish = (name: string): void => {
            const fact: TaskCancelled = { type: 'task.cancelled', id, name, at, previous: result.previous!, reason };
            if (result.owner !== undefined) fact.owner = result.owner;
            this.#ctx.publish(fact);
          };
          // At once when the store names the task: a reader that heard of the cancel another way (its NOTIFY on
          // PostgreSQL, an awaited task's read) must not see it final before its fact (a follower waits on the fact
          // for the run's stop).
          if (result.name !== undefined) publish(result.name);
          else void this.#d.store.get(id).then((task) => publish(task?.name ?? ''));
          if (result.previous === 'running') this.#ctx.tell(this.#d.orchestrator, createExecutorAbort(id, 'cancel'));
        }
        // A flow parent's descendants cancelled with it.
        if (result.children === undefined) return;
        const childReason = flowCancelledReason(id);
        for (const c of result.children) {
          const fact: TaskCancelled = { type: 'task.cancelled', id: c.id, name: c.name, at, previous: c.previous, reason: childReason };
          if (c.owner !== undefined) fact.owner = c.owner;
          this.#ctx.publish(fact);
          if (c.previous === 'running') this.#ctx.tell(this.#d.orchestrator, createExecutorAbort(c.id, 'cancel'));
        }
      },
      (error: unknown) => this.#ctx.tell(replyTo, createErrorReply(serializeError(error))),
    );
  }

  #retry(id: TaskId, replyTo: string): void {
    const at = this.#d.clock.now();
    this.#d.store.retry(id, at).then(
      (task) => {
        this.#ctx.tell(replyTo, createReply(task));
        if (task) {
          this.#ctx.publish(createTaskQueued(task.id, task.name, at, task.runAt));
          this.#ctx.tell(this.#d.orchestrator, createSchedulerWake('retried'));
        }
      },
      (error: unknown) => this.#ctx.tell(replyTo, createErrorReply(serializeError(error))),
    );
  }

  #answer(m: Extract<TrackerMessage, { type: 'tracker.query' }>): void {
    const { store } = this.#d;
    const q = m.query;
    let work: Promise<unknown>;
    switch (q.kind) {
      case 'get':
        work = store.get(q.id).then(async (task) => (task && q.history ? { task, history: await store.history(q.id) } : task ? { task } : undefined));
        break;
      case 'list':
        work = store.list(q.filter);
        break;
      case 'output':
        work = store.output(q.id, q.after, q.limit);
        break;
      case 'counts':
        work = q.live && store.liveCounts ? store.liveCounts(this.#d.clock.now()) : store.counts(this.#d.clock.now());
        break;
    }
    work.then(
      (value) => this.#ctx.tell(m.replyTo, createReply(value)),
      (error: unknown) => this.#ctx.tell(m.replyTo, createErrorReply(serializeError(error))),
    );
  }

  /** Whether this process may hold leases: tasks run or wait in the executor, or outcomes wait to be written. */
  #holdsLeases(): boolean {
    return this.#running > 0 || this.#holding || this.#told || this.#q.settles.length > 0 || this.#q.settling.length > 0;
  }

  /**
   * Asks the executor which claimed tasks it holds (executor.leases); its answer renews their leases (#leasesTold),
   * then runs the sweep that waits for it, if any. One question at a time: a heartbeat or a sweep due meanwhile
   * shares its answer. The answer comes through this mailbox, behind the outcomes the executor sent before it, so
   * the two lists together hold every task this process still has claimed (a claim on its way has just set its
   * lease; one that arrives after that lease could have ended is renewed and checked by the executor before it
   * starts).
   */
  #askLeases(sweep: boolean): void {
    const asked = this.#leasesAsked;
    if (asked !== undefined) {
      if (sweep) asked.sweep = true;
      return;
    }
    const guard = this.#d.clock.setTimeout(this.#leasesUnanswered, this.#d.heartbeatMs);
    guard.unref?.();
    this.#leasesAsked = { sweep, guard };
    this.#ctx.tell(this.#d.orchestrator, createExecutorLeases());
  }

  /** The executor's answer (tracker.leases), or a late one after the guard gave up waiting: renewing is always right. */
  #leasesTold(ids: readonly TaskId[]): void {
    const asked = this.#leasesAsked;
    this.#leasesAsked = undefined;
    if (asked !== undefined) this.#d.clock.clearTimeout(asked.guard);
    this.#told = ids.length > 0;
    if (this.#told) this.#armHeartbeat();
    const renewed = this.#renew(ids);
    if (asked?.sweep) void renewed.then(() => this.#sweep());
  }

  /**
   * The executor did not answer within a heartbeat (it crashed on the question, or is being restarted): the outcomes
   * not written yet are renewed, and a waiting sweep goes on. The executor's tasks keep the lease of the last
   * renewal; a restarted executor no longer knows the runs of the one it replaced, and their tasks come back.
   */
  readonly #leasesUnanswered = (): void => {
    const asked = this.#leasesAsked;
    this.#leasesAsked = undefined;
    if (asked === undefined || this.#stopped) return;
    this.#d.logger.warn('the executor did not say which tasks it holds; their leases were not renewed this time');
    const renewed = this.#renew(NO_IDS);
    if (asked.sweep) void renewed.then(() => this.#sweep());
  };

  /**
   * Renews, in one heartbeat statement, the leases of the tasks this process holds: `held` (the executor's) and those
   * whose outcome is not written yet, queued here or in the write in flight. Those must keep their lease until it is
   * written: a lease taken back meanwhile gives the task a new attempt, the store then refuses the outcome (its
   * owner and attempt no longer match), and the task runs again. A failure is reported like a write's, and the leases
   * renewed before still hold.
   */
  #renew(held: readonly TaskId[]): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    let ids = held;
    if (this.#q.settles.length > 0 || this.#q.settling.length > 0) {
      const all = held.slice();
      // Read with care: one of them may be an op that crashed a tracker, and a renewal must not crash this one.
      for (const s of this.#q.settling) pushId(all, s);
      for (const s of this.#q.settles) pushId(all, s);
      ids = all;
    }
    if (ids.length === 0) return Promise.resolve();
    return this.#d.store.heartbeat(this.#d.owner, this.#d.clock.now() + this.#d.leaseMs, ids).then(
      () => this.#storeOk(),
      (error: unknown) => this.#storeError(error),
    );
  }

  #armHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#stopped) return;
    const { clock, heartbeatMs } = this.#d;
    this.#heartbeat = clock.setTimeout(() => {
      this.#heartbeat = undefined;
      if (!this.#holdsLeases() || this.#stopped) return;
      this.#askLeases(false);
      this.#armHeartbeat();
    }, heartbeatMs);
  }

  /**
   * Arms the next lease recovery sweep. A sweep first renews this process's own leases while it runs or holds tasks
   * (the heartbeat's renewal, #askLeases, awaited), then takes back the expired ones. Without that, a forward jump
   * of the wall clock longer than the lease made this node's live leases look expired to itself, and a sweep that
   * came before the next heartbeat put a task back in the queue that this node was still running: it ran twice.
   * Another node's sweep is not affected by this node's jump (its own clock did not jump), and a node that died
   * renews nothing, so its tasks still come back; so do they when a process restarted with its node id renews
   * (it names the tasks it holds, #renew).
   */
  #armRecovery(delay: number): void {
    if (this.#stopped) return;
    this.#recovery = this.#d.clock.setTimeout(() => {
      this.#recovery = undefined;
      if (this.#holdsLeases()) this.#askLeases(true);
      else this.#sweep();
    }, delay);
  }

  /** Takes back the expired leases, then arms the next sweep. */
  #sweep(): void {
    if (this.#stopped) return;
    const { clock } = this.#d;
    this.#d.store.recoverExpired(clock.now()).then(
      (tasks: TaskRecord[]) => {
        if (tasks.length > 0) {
          this.#stats.recovered += tasks.length;
          const at = clock.now();
          for (const t of tasks) {
            if (t.state === 'queued') this.#ctx.publish(createTaskQueued(t.id, t.name, at, t.runAt));
            else if (t.state === 'failed' && t.error) this.#ctx.publish({ type: 'task.failed', id: t.id, name: t.name, at, attempt: t.attempts, error: t.error });
          }
          this.#ctx.tell(this.#d.orchestrator, createSchedulerWake('recovered'));
        }
        this.#armRecovery(Math.max(250, Math.floor(this.#d.leaseMs / 2)));
      },
      (error: unknown) => {
        this.#d.logger.warn('lease recovery failed', { error: serializeError(error).message });
        this.#armRecovery(Math.max(250, Math.floor(this.#d.leaseMs / 2)));
      },
    );
  }
}

/** The promise of a store call, also when the call throws instead of rejecting (its error is then the rejection). */
function attempt<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The task id of an outcome that may be what crashed the tracker (its properties may throw), or undefined. */
function safeId(s: TrackerSettle | SettleOp): TaskId | undefined {
  try {
    return 'op' in s ? s.op.id : s.id;
  } catch {
    return undefined;
  }
}

function pushId(ids: TaskId[], s: TrackerSettle): void {
  const id = safeId(s);
  if (id !== undefined) ids.push(id);
}

/**
 * The claim of one enqueue write, from the standing offer: written out field by field, because an object spread
 * (`{ ...offer.request }`) copies key by key on a slow path in V8, and this runs on every `run()`.
 */
function offerRequest(r: ClaimOffer['request'], now: number, limit: number, onHeldBack: ClaimRequest['onHeldBack']): ClaimRequest {
  const out: ClaimRequest = { owner: r.owner, limit, leaseMs: r.leaseMs, now };
  if (onHeldBack !== undefined) out.onHeldBack = onHeldBack;
  if (r.names !== undefined) out.names = r.names;
  if (r.exclude !== undefined) out.exclude = r.exclude;
  if (r.perName !== undefined) out.perName = r.perName;
  if (r.groupLimits !== undefined) out.groupLimits = r.groupLimits;
  if (r.rateLimits !== undefined) out.rateLimits = r.rateLimits;
  if (r.excludeGroups !== undefined) out.excludeGroups = r.excludeGroups;
  return out;
}
