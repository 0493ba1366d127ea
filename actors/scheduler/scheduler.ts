/**
 * The scheduler decides what runs next. It holds the executor's latest demand (free slots, per-name room) and
 * answers it with one claim from the store, in the store's strategy order; when nothing is due it keeps the demand
 * and claims again on the next wake-up (an enqueue, a retry, a timer at the earliest delayed task, a
 * notification from another node, or — for shared stores — a slow poll as a fallback).
 *
 * It also fires periodic schedules (opt-in: only schedules that were created). Each slot becomes a task whose
 * idempotency key is `schedule:<id>:<slot>`, so a slot produces one task however many nodes fire it. After
 * downtime only the most recent missed slot runs (catch-up once), and so after the clock jumps forward past slots:
 * a task already written ahead for the first of them is that one run (#fireOvertaken). Overlap policies: `skip`
 * fires nothing while a task of the schedule is queued or running; `queue` lets one wait behind a running one;
 * `allow` always fires.
 * On an idle node a slot's task is written {@link PREPARE_LEAD_MS} ahead of its slot and started on it (#writeAhead).
 *
 * Control state (the schedules, the paused names and groups) is kept in memory and shared through the store: a
 * change made on any node is written there, and every node sharing the store reads it again when the store tells
 * of it (`StoreChange`, PostgreSQL: NOTIFY) and, as a safety net, when the store's control version moved at a
 * control check (#checkControl, every `controlSyncMs`). Pause-set edits are one atomic store write each
 * (`Store.editMetaSet`), so edits made on two nodes at once are both kept. A slot's schedule is read again when the
 * slot is prepared (#stillLive), so a schedule paused or removed elsewhere fires no further slot here even before
 * this node heard of it.
 */
import type { Actor, ActorContext } from '../../src/actor/actor.ts';
import { ask } from '../../src/bus/ask.ts';
import { setTimeoutAt, type Clock, type TimerHandle } from '../../src/clock.ts';
import { deserializeError, ErrorCodes, serializeError, TroupeError } from '../../src/errors.ts';
import type { Logger } from '../../src/options.ts';
import { latestSlot, MIN_EVERY_MS, nextSlot } from '../../src/schedule/cron.ts';
import type { ClaimRequest, EnqueueResult, RateLimit, ScheduleRecord, Store } from '../../src/store/store.ts';
import type { NewTask, TaskRecord } from '../../src/task.ts';
import { createExecutorDispatch, createExecutorPaused } from '../executor/messages.ts';
import type { TroupeMessage } from '../messages.ts';
import { createReply, createErrorReply, type Reply } from '../tracker/messages.ts';
import {
  createSchedulerDemand,
  createSchedulerWake,
  demandAfterOffer,
  offerLeft,
  type OfferedClaim,
  type SchedulerControlChanged,
  type SchedulerDemand,
  type SchedulerMessage,
} from './messages.ts';

/** The outcome facts that end a run (and free its group's slot). */
const RUN_ENDS = ['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'] as const;

export interface SchedulerDeps {
  store: Store;
  clock: Clock;
  owner: string;
  leaseMs: number;
  claimBatch: number;
  logger: Logger;
  orchestrator: string;
  /** Names this node can run. */
  names: () => readonly string[];
  /** Builds a stored task for a schedule slot (validates input like any enqueue). */
  createTask: (name: string, input: unknown, extra: { key: string; scheduleId: string; runAt: number }) => Promise<NewTask>;
  /** Poll interval while hungry, for stores shared with other processes; 0 = never poll. */
  pollMs: number;
  /** Other nodes claim from the same store: a short claim (rows locked by them) does not mean nothing is due. */
  shared?: boolean;
  /**
   * Claims that may be in flight at once (default 1). Above 1 only for a store that runs claims side by side
   * (PostgreSQL: each on its own connection, `SKIP LOCKED` keeps them apart): one claim of a drained queue's
   * batch is then on the way while the previous one is read, instead of one round trip after another.
   */
  claimsInFlight?: number;
  /** Told, per slot, whether the schedule's previous run was still active (the advisor's overlap figure). */
  onSlot?: (task: string, scheduleId: string, overlapped: boolean) => void;
  /** Per-name group concurrency and rate limits of the registered definitions (absent: none). */
  limits?: () => { groupLimits?: Record<string, number>; rateLimits?: Record<string, RateLimit> };
  /**
   * How often the store's control version is read (#checkControl), to hear of control changes made by other
   * processes that no notification brought; 0 or absent: never (a store used by this process alone).
   */
  controlSyncMs?: number;
}

/**
 * How long before a slot the scheduler builds the slot's task, asks the store about overlap and, on an idle node,
 * writes the task ahead (#writeAhead), so that at the slot itself only the start is left. Long enough for the
 * overlap question and the write on PostgreSQL (2–7 ms each on a connection's first such statement here; with a
 * 10 ms lead the first slot's write was still in flight at its slot); short, because a task written ahead holds
 * its slot in the executor until then, and a busy answer this old is asked again at the slot.
 */
export const PREPARE_LEAD_MS = 25;
/**
 * Appended to a slot's key when its task written ahead was cancelled for a manual trigger (overlap `skip`) and the
 * triggered run had ended by the slot: the slot runs then, and the cancelled task keeps the slot's own key.
 */
const AFTER_TRIGGER_KEY = ':after-trigger';
/** Why a slot's task written ahead is cancelled before its slot. */
const EARLY_CANCELLED = { paused: 'its schedule was paused or removed before its slot', triggered: 'a manual run of its schedule came before its slot' } as const;

/** One schedule's next slot, made ready ahead of time. Both promises already have a handler (never unhandled). */
interface PreparedSlot {
  slot: number;
  /** The stored record it was made from: a replaced schedule does not use it. */
  schedule: ScheduleRecord;
  /** The slot's task (input validated), or the validation error. */
  task: Promise<NewTask>;
  /** Whether a run of the schedule was active ahead of the slot (`allow`: not asked). */
  active: Promise<boolean> | undefined;
  /** {@link Scheduler.#triggers} when the overlap question was asked. */
  triggers: number;
  /**
   * The slot's task written ahead of the slot with the standing claim offer (#writeAhead): its id once written,
   * undefined if it was not (the slot then enqueues at its time, as without an offer).
   */
  early: Promise<string | undefined> | undefined;
  /** A manual trigger came after the task was written ahead: the slot is skipped (overlap `skip`). */
  revoked?: boolean;
  /** Whether the stored schedule was still active when the slot was prepared (#stillLive); never rejects. */
  live: Promise<boolean>;
}

/** The parts of the control state a sync reads again (#runSync). */
interface SyncWanted {
  all: boolean;
  paused: boolean;
  ids: Set<string>;
}

/** What a sync read: the version (a full read), the schedules by id (undefined: deleted), the two paused sets. */
interface ControlRead {
  version: number | undefined;
  schedules: Array<[string, ScheduleRecord | undefined]>;
  paused: [string | undefined, string | undefined] | undefined;
}

/** A stored set of names (a JSON array of strings); anything else reads as empty. */
function parseSet(text: string | undefined): Set<string> {
  if (text === undefined) return new Set();
  try {
    const value: unknown = JSON.parse(text);
    return new Set(Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  } catch {
    return new Set();
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const v of a) if (!b.has(v)) return false;
  return true;
}

/** Whether two records define the same schedule (their slots and creation times aside). */
function sameSchedule(a: ScheduleRecord, b: ScheduleRecord): boolean {
  return (
    a.task === b.task &&
    a.cron === b.cron &&
    a.everyMs === b.everyMs &&
    a.timezone === b.timezone &&
    a.overlap === b.overlap &&
    a.paused === b.paused &&
    canonicalJson(a.input) === canonicalJson(b.input)
  );
}

/**
 * JSON with every object's keys in one order. Why: PostgreSQL's jsonb gives an input back with its keys in its own
 * order, and the same input must not read as a changed schedule.
 */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * The longest a chain of claims may keep the event loop to itself. Runs that end at once (inline code, a
 * synchronous store) answer each claim with the next demand in microtasks, so a deep queue could drain in one
 * endless turn: no timer (heartbeats, schedules), no I/O (HTTP, pipes) until it is empty. Past this, the next
 * claim waits for the next turn.
 */
export const CLAIM_TURN_MS = 10;

/** Whether a record of caps or limits has any entry. */
function hasKeys(record: Record<string, unknown> | undefined): boolean {
  if (record === undefined) return false;
  for (const _ in record) return true;
  return false;
}

const PAUSED_KEY = 'paused-names';
const PAUSED_GROUPS_KEY = 'paused-groups';

export class Scheduler implements Actor<TroupeMessage> {
  readonly #ctx: ActorContext<TroupeMessage>;
  readonly #d: SchedulerDeps;
  #demand: SchedulerDemand | undefined;
  /** Claims in flight, and the sum of their limits (what they may still bring of the demand). */
  #claims = 0;
  #claimingSlots = 0;
  #wakeAgain = false;
  /** The last claim returned fewer tasks than it asked for: nothing more is due until something changes. */
  #drained = false;
  /** The last claim left tasks behind for a group or rate limit (a task's end may free them). */
  #heldBack = false;
  /** Stops watching outcomes (watched only while a claim is held back, see #setHeldBack). */
  #unwatchEnds: (() => void) | undefined;
  /** A wake for written outcomes is on its way to this mailbox (one at a time). */
  #endWakeQueued = false;
  #stopped = false;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #paused = new Set<string>();
  #pausedGroups = new Set<string>();
  /** Names held on this node only (scheduler.hold-names): claimed nowhere here, kept nowhere, paused for no other node. */
  #held = new Set<string>();
  #schedules = new Map<string, ScheduleRecord>();
  #scheduleTimer: TimerHandle | undefined;
  #firing = false;
  #stats = { claims: 0, claimed: 0, emptyClaims: 0, offerClaims: 0, yields: 0, fired: 0, skipped: 0 };
  /** Serial of the claim offer standing at the tracker (0: none), its request, and the limit it has left there. */
  #offer = 0;
  #offerSerial = 0;
  #offerRequest: OfferedClaim | undefined;
  #offerLimit = 0;
  /** The next slot's work done ahead of it, per schedule id (see #prepare); dropped whenever schedules re-arm. */
  #prepared = new Map<string, PreparedSlot>();
  /** Told when no claim of this scheduler's is in flight any more (#claimsSettled). */
  #claimWaiters: Array<() => void> = [];
  /** Bumped by every manual trigger: an overlap answer taken before one is no longer exact. */
  #triggers = 0;
  /** performance.now() when claims began in this turn of the event loop (cleared by a setImmediate). */
  #turnStartedAt: number | undefined;
  #yielding = false;
  /** The store's control version as of the last full read of the control state (undefined: not known). */
  #controlVersion: number | undefined;
  #controlTimer: TimerHandle | undefined;
  /**
   * Moved by every control change this node makes itself (a message from the runtime): a read of the store begun
   * before one may miss it, and is made again instead of applied (#runSync).
   */
  #controlEpoch = 0;
  /** Pause-set edits of this node not yet written (one at a time, in order: #pauseWrites). */
  #pauseWriting = 0;
  #pauseWrites: Promise<unknown> = Promise.resolve();
  #syncWanted: SyncWanted = { all: false, paused: false, ids: new Set() };
  #syncing = false;
  readonly #newTurn = (): void => {
    this.#turnStartedAt = undefined;
  };

  constructor(ctx: ActorContext<TroupeMessage>, deps: SchedulerDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  async start(): Promise<void> {
    const { store } = this.#d;
    // The version first: a change made while the rest is read moves it past this, and the next check reads again.
    if (store.controlVersion) this.#controlVersion = await store.controlVersion();
    this.#paused = parseSet(await store.getMeta(PAUSED_KEY));
    this.#pausedGroups = parseSet(await store.getMeta(PAUSED_GROUPS_KEY));
    for (const s of await store.listSchedules()) this.#schedules.set(s.id, s);
    this.#armSchedules();
    this.#armControlCheck();
    if (this.#paused.size || this.#pausedGroups.size) this.#tellPaused();
    // A restarted scheduler starts without the executor's demand: ask for it again. An offer its previous
    // instance left at the tracker is void (its serial means nothing to this one).
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.claim-offer', offer: undefined });
    this.#ctx.tell(this.#d.orchestrator, { type: 'executor.poke' });
  }

  stop(): void {
    this.#stopped = true;
    this.#unwatchEnds?.();
    this.#unwatchEnds = undefined;
    this.#d.clock.clearTimeout(this.#timer);
    this.#d.clock.clearTimeout(this.#scheduleTimer);
    this.#d.clock.clearTimeout(this.#controlTimer);
  }

  describe(): Record<string, unknown> {
    return {
      ...this.#stats,
      hungry: this.#demand !== undefined,
      claiming: this.#claims > 0,
      // When the wake timer (the next delayed task, or the poll) fires; absent when none is armed.
      ...(Number.isFinite(this.#timerAt) ? { wakeAt: this.#timerAt } : {}),
      pausedNames: [...this.#paused],
      pausedGroups: [...this.#pausedGroups],
      ...(this.#held.size > 0 ? { heldNames: [...this.#held] } : {}),
      schedules: this.#schedules.size,
      strategy: this.#d.store.strategy,
    };
  }

  /** Names whose claiming is paused. */
  get pausedNames(): string[] {
    return [...this.#paused];
  }

  /** Groups whose claiming is paused. */
  get pausedGroups(): string[] {
    return [...this.#pausedGroups];
  }

  /** Names whose claiming is held on this node only (scheduler.hold-names). */
  get heldNames(): string[] {
    return [...this.#held];
  }

  receive(msg: TroupeMessage): void {
    const m = msg as SchedulerMessage;
    switch (m.type) {
      case 'scheduler.wake':
        // Written outcomes matter only to a claim that group limits held back (they free its slots).
        if (m.reason === 'settled') {
          this.#endWakeQueued = false;
          if (!this.#heldBack) return;
        }
        this.#drained = false;
        this.#pump();
        return;
      case 'scheduler.demand':
        if (m.slots <= 0) {
          // The executor took back a demand that stood after an offered claim: no room any more.
          this.#demand = undefined;
          this.#withdrawOffer();
          return;
        }
        this.#demand = m;
        // The last claim took everything due and nothing new came since: hold the demand until a wake-up, and
        // offer it to the tracker so the next enqueue claims in its own write.
        if (!this.#drained) this.#pump();
        else this.#offerIdle();
        return;
      case 'scheduler.offer-taken':
        this.#offerTaken(m.serial, m.claimed, m.heldBack, m.retryAt, m.drained === true);
        return;
      case 'scheduler.pause-name':
        this.#editPaused(PAUSED_KEY, m.name, m.paused, m.replyTo);
        return;
      case 'scheduler.pause-group':
        this.#editPaused(PAUSED_GROUPS_KEY, m.group, m.paused, m.replyTo);
        return;
      case 'scheduler.schedule-saved':
        this.#controlEpoch++;
        this.#schedules.set(m.schedule.id, m.schedule);
        this.#armSchedules();
        return;
      case 'scheduler.schedule-removed':
        this.#controlEpoch++;
        this.#schedules.delete(m.id);
        this.#armSchedules();
        return;
      case 'scheduler.control-changed':
        this.#wantSync(m);
        return;
      case 'scheduler.hold-names': {
        const released = [...this.#held].some((n) => !m.names.includes(n));
        this.#held = new Set(m.names);
        this.#pausedChanged();
        if (released) this.#ctx.tell(this.#d.orchestrator, { type: 'executor.poke' });
        return;
      }
      case 'scheduler.trigger':
        this.#trigger(m.id, m.replyTo);
        return;
      case 'scheduler.stop':
        this.stop();
        this.#withdrawOffer();
        this.#demand = undefined;
        return;
      default:
        return;
    }
  }

  /**
   * Whether the last claim left due tasks behind for a group limit. While one is held back, the outcomes the
   * tracker publishes (runs of the group ending) wake this scheduler: it watches them only then, so the runs of a
   * node without group limits cost no wake-up message each.
   */
  #setHeldBack(held: boolean): void {
    this.#heldBack = held;
    if (held && this.#unwatchEnds === undefined && !this.#stopped) {
      const onEnd = (): void => {
        if (this.#endWakeQueued) return;
        this.#endWakeQueued = true;
        this.#ctx.tell(this.#d.orchestrator, createSchedulerWake('settled'));
      };
      const off = RUN_ENDS.map((type) => this.#ctx.bus.subscribe(type, onEnd));
      this.#unwatchEnds = () => {
        for (const unsubscribe of off) unsubscribe();
      };
    } else if (!held && this.#unwatchEnds !== undefined) {
      this.#unwatchEnds();
      this.#unwatchEnds = undefined;
    }
  }

  /** The executor gives back the claimed tasks it holds of paused names and groups (its prefetch buffer). */
  #tellPaused(): void {
    this.#ctx.tell(this.#d.orchestrator, createExecutorPaused(this.#excludedNames(), [...this.#pausedGroups]));
  }

  /** The names this node claims none of: paused (for every node) and held (for this one). */
  #excludedNames(): string[] {
    return this.#held.size === 0 ? [...this.#paused] : [...new Set([...this.#paused, ...this.#held])];
  }

  #pump(): void {
    if (this.#stopped) return;
    const demand = this.#demand;
    if (this.#claims > 0 && !this.#mayClaimBeside(demand)) {
      this.#wakeAgain = true;
      return;
    }
    if (!demand || demand.slots <= 0) return;
    // A standing offer was made before whatever woke the pump (a pause, a registration): withdrawn at once, even
    // when the claim itself waits for the next turn.
    this.#withdrawOffer();
    if (this.#yieldTurn()) return;
    const { store, clock } = this.#d;
    const request = this.#claimRequest(demand, demand.slots - this.#claimingSlots);
    const { limit, exclude } = request;
    this.#claims++;
    this.#claimingSlots += limit;
    this.#wakeAgain = false;
    // Group and rate limits hold tasks back without the queue being drained: a task's end or a timer frees them.
    let heldBack = false;
    const now = clock.now();
    store
      // The time and the callback before the spread: an object spread followed by more keys takes a slow path
      // in V8 (≈1.5 µs, and the copy it makes is slow to read in the store's claim).
      .claim({
        now,
        onHeldBack: (retryAt) => {
          heldBack = true;
          if (retryAt !== undefined) this.#armTimer(retryAt);
        },
        ...request,
      })
      .then(
        (tasks) => {
          try {
            this.#claimRead(tasks, limit, heldBack, exclude.length, demand, now);
          } finally {
            this.#tellClaimWaiters();
          }
        },
        (error: unknown) => {
          this.#claims--;
          this.#claimingSlots -= limit;
          this.#d.logger.warn('claim failed', { error: serializeError(error).message });
          this.#armTimer(clock.now() + 1000);
          this.#tellClaimWaiters();
        },
      );
  }

  /** A claim's answer: its tasks go to the executor, or the queue is taken as drained and the demand offered. */
  #claimRead(tasks: TaskRecord[], limit: number, heldBack: boolean, excluded: number, demand: SchedulerDemand, claimedAt: number): void {
    this.#claims--;
    this.#claimingSlots -= limit;
    this.#stats.claims++;
    this.#setHeldBack(heldBack);
    if (this.#stopped) {
      if (tasks.length) this.#ctx.tell(this.#d.orchestrator, createExecutorDispatch(tasks));
      return;
    }
    // Fewer than asked (and no per-name cap in play): the queue is drained for now.
    this.#drained = !this.#d.shared && tasks.length < limit && !heldBack && excluded === 0 && Object.keys(demand.perName).length === 0 && !this.#wakeAgain;
    if (tasks.length > 0) {
      this.#stats.claimed += tasks.length;
      this.#demand = undefined;
      this.#ctx.tell(this.#d.orchestrator, createExecutorDispatch(tasks));
      // Drained, the scheduler claims again only when woken: as after an empty claim, the next delayed task needs
      // its timer (the timer that woke this claim was spent on the tasks it took).
      if (this.#drained) this.#armWake(claimedAt);
      return;
    }
    this.#stats.emptyClaims++;
    if (this.#wakeAgain) this.#pump();
    else {
      this.#armWake(claimedAt);
      this.#offerIdle();
    }
  }

  /** Tells the #claimsSettled waiters once no claim is in flight any more. */
  #tellClaimWaiters(): void {
    if (this.#claims === 0 && this.#claimWaiters.length > 0) for (const told of this.#claimWaiters.splice(0)) told();
  }

  /**
   * Resolves once no claim of this scheduler's is in flight (after what the last one's answer led to: an offer,
   * a new claim), or at `until` on the clock, whichever comes first.
   */
  #claimsSettled(until: number): Promise<void> {
    if (this.#claims === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const { clock } = this.#d;
      const timer = clock.setTimeout(done, Math.max(0, until - clock.now()));
      this.#claimWaiters.push(done);
      function done(): void {
        clock.clearTimeout(timer);
        resolve();
      }
    });
  }

  /**
   * Whether another claim may go out beside the ones in flight: the store takes claims side by side
   * (`claimsInFlight`), and the demand has room for at least half a batch beyond what those may bring, with no
   * per-name caps (two claims could each take a capped name's whole room) and no group or rate limits (each claim
   * counts the running tasks, not what the other is taking).
   */
  #mayClaimBeside(demand: SchedulerDemand | undefined): boolean {
    if (demand === undefined || this.#claims >= (this.#d.claimsInFlight ?? 1)) return false;
    if (demand.slots - this.#claimingSlots < Math.ceil(this.#d.claimBatch / 2)) return false;
    if (hasKeys(demand.perName)) return false;
    const limits = this.#d.limits?.();
    return limits === undefined || (!hasKeys(limits.groupLimits) && !hasKeys(limits.rateLimits));
  }

  /** True when claims have kept this turn for CLAIM_TURN_MS: the pump then runs again on the next turn. */
  #yieldTurn(): boolean {
    if (this.#yielding) return true;
    const now = performance.now();
    if (this.#turnStartedAt === undefined) {
      this.#turnStartedAt = now;
      setImmediate(this.#newTurn);
      return false;
    }
    if (now - this.#turnStartedAt < CLAIM_TURN_MS) return false;
    this.#yielding = true;
    this.#stats.yields++;
    setImmediate(() => {
      this.#yielding = false;
      this.#pump();
    });
    return true;
  }

  /** What a claim for `demand` asks the store for (without its time). */
  #claimRequest(demand: SchedulerDemand, room = demand.slots): Omit<ClaimRequest, 'now' | 'onHeldBack'> & { exclude: readonly string[] } {
    return {
      owner: this.#d.owner,
      limit: Math.min(room, this.#d.claimBatch),
      leaseMs: this.#d.leaseMs,
      names: this.#d.names(),
      exclude: this.#paused.size || this.#held.size ? [...demand.exclude, ...this.#excludedNames()] : demand.exclude,
      perName: demand.perName,
      ...this.#d.limits?.(),
      ...(this.#pausedGroups.size ? { excludeGroups: [...this.#pausedGroups] } : {}),
    };
  }

  /**
   * Waiting for work with free slots: offers the claim to the tracker, which makes it in the same write as the next
   * enqueue of a due task (`Store.enqueueAndClaim`). On an idle node a new task then starts after one write and no
   * wake-up round trip. A newer offer replaces the standing one; a claim of the scheduler's own withdraws it.
   */
  #offerIdle(): void {
    const demand = this.#demand;
    const { store } = this.#d;
    if (this.#stopped || this.#claims > 0 || !demand || demand.slots <= 0) return;
    // Hungry and drained: a store other processes write to is polled meanwhile (their enqueues wake no one here).
    // An empty or short claim arms this too (#armWake), once the store has named the next due time.
    if (this.#d.pollMs > 0 && this.#timer === undefined) this.#armTimer(this.#d.clock.now() + this.#d.pollMs);
    if (!store.enqueueAndClaim) return;
    const request = this.#claimRequest(demand);
    if (store.claimsInEnqueue?.(request) === false) return;
    this.#offer = ++this.#offerSerial;
    this.#offerRequest = request;
    this.#offerLimit = request.limit;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.claim-offer', offer: { serial: this.#offer, request } });
  }

  #withdrawOffer(): void {
    if (this.#offer === 0) return;
    this.#offer = 0;
    this.#offerRequest = undefined;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.claim-offer', offer: undefined });
  }

  /**
   * The tracker claimed with an offer. Its tasks went to the executor, which counts them against its outstanding
   * demand by the rule of `demandAfterOffer`, as this does with its copy: what is left stands and is offered again
   * (an idle node's run costs no demand message); when nothing is left, or per-name room or exclusions are in play,
   * the demand is spent and the executor sends a new one. Every demand the executor sent before it had these tasks
   * is counted down the same way: this news comes before any demand sent after. (A withdrawn offer the tracker had
   * already used can add tasks to a claim of the scheduler's own: the executor keeps what does not fit in its
   * buffer, leased, until a slot frees.)
   */
  #offerTaken(serial: number, claimed: number, heldBack: boolean, retryAt: number | undefined, drained: boolean): void {
    this.#stats.offerClaims++;
    this.#stats.claimed += claimed;
    if (heldBack) {
      this.#setHeldBack(true);
      if (retryAt !== undefined) this.#armTimer(retryAt);
    }
    // A store shared with other nodes is taken as drained only on its word that no due task was left (a short
    // claim of its own may have skipped tasks other nodes held locked); the same conditions as after a claim.
    const request = this.#offerRequest;
    if (drained && serial === this.#offer && request !== undefined && !heldBack && (request.exclude?.length ?? 0) === 0 && !hasKeys(request.perName) && !this.#wakeAgain) {
      this.#drained = true;
    }
    if (claimed === 0) {
      // Nothing taken (the tracker dropped the offer): the same demand is offered again.
      if (serial !== this.#offer) return;
      this.#offer = 0;
      this.#offerRequest = undefined;
      this.#offerIdle();
      return;
    }
    if (this.#demand !== undefined) {
      const rest = demandAfterOffer(this.#demand, claimed);
      this.#demand = rest === undefined ? undefined : createSchedulerDemand(rest.slots, rest.perName, rest.exclude);
    }
    if (serial === this.#offer) {
      // The tracker keeps the offer with what `offerLeft` leaves of its limit (the same rule there). It stands as it
      // is while that is at least half of what the demand would get now: an idle node's runs then cost no new offer
      // each, one in about claimBatch / 2.
      const left = offerLeft(this.#offerLimit, this.#offerRequest!, claimed);
      if (left === 0) {
        this.#offer = 0;
        this.#offerRequest = undefined;
      } else {
        this.#offerLimit = left;
        if (this.#demand !== undefined && this.#drained && left * 2 >= Math.min(this.#demand.slots, this.#d.claimBatch)) return;
      }
    } else if (this.#offer === 0) return;
    // What is left of the demand is handled as a new demand would be: an offer that stands (a newer one was made
    // for the demand before these tasks were counted) is made again, or withdrawn.
    if (this.#demand === undefined) this.#withdrawOffer();
    else if (!this.#drained) this.#pump();
    else this.#offerIdle();
  }

  /**
   * Arms one timer at the earliest delayed task due after the empty claim made at `claimedAt` (or the poll interval
   * for shared stores). A waiting task that was due then and not taken is not this node's to claim now (its name or
   * group is paused, or the node does not run its name): a timer at its time would fire at once and claim nothing,
   * over and over. A resume, a registration or an enqueue wakes the scheduler instead.
   */
  #armWake(claimedAt: number): void {
    const { store, clock } = this.#d;
    store.nextRunAt(claimedAt).then(
      (at) => {
        const poll = this.#d.pollMs > 0 ? clock.now() + this.#d.pollMs : Infinity;
        this.#armTimer(Math.min(at ?? Infinity, poll));
      },
      () => this.#armTimer(clock.now() + 1000),
    );
  }

  #armTimer(at: number): void {
    if (this.#stopped || !Number.isFinite(at)) return;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    const { clock } = this.#d;
    clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#drained = false;
      this.#pump();
    }, Math.max(0, at - clock.now()));
  }

  // ── control state shared with other nodes ─────────────────────────────────────────────────────────────

  /**
   * Pauses or resumes one name or group: here at once, then in the store by one atomic edit of its set
   * (`Store.editMetaSet`), which every node sharing the store hears of. This node's edits are written one at a
   * time, in the order they were made, so the store ends as this node's last edit left it. A failed write is
   * logged and answered to `replyTo` (the runtime's promise); this node keeps the edit until its next read of the
   * control state.
   */
  #editPaused(key: typeof PAUSED_KEY | typeof PAUSED_GROUPS_KEY, member: string, paused: boolean, replyTo: string | undefined): void {
    this.#controlEpoch++;
    const set = key === PAUSED_KEY ? this.#paused : this.#pausedGroups;
    if (paused) set.add(member);
    else set.delete(member);
    this.#pausedChanged();
    this.#pauseWriting++;
    const write = this.#pauseWrites.then(() => this.#writePaused(key, member, paused));
    this.#pauseWrites = write.catch(() => undefined);
    write.then(
      (stored) => {
        // The last edit written: the stored set is this node's edits and every other node's (adopted at once).
        if (this.#pauseWriting === 1 && !this.#stopped) this.#adoptPaused(key === PAUSED_KEY ? stored : this.#paused, key === PAUSED_GROUPS_KEY ? stored : this.#pausedGroups);
        if (replyTo !== undefined) this.#ctx.tell(replyTo, createReply(undefined));
      },
      (error: unknown) => {
        const what = key === PAUSED_KEY ? 'name' : 'group';
        this.#d.logger.error(`${paused ? 'pause' : 'resume'} of a ${what} not stored: other nodes do not apply it`, { [what]: member, error: serializeError(error).message });
        if (replyTo !== undefined) this.#ctx.tell(replyTo, createErrorReply(serializeError(error)));
      },
    ).finally(() => {
      this.#pauseWriting--;
      this.#controlEpoch++;
      if (this.#pauseWriting === 0) void this.#runSync();
    });
  }

  /** One pause-set edit in the store; the stored set after it. */
  async #writePaused(key: string, member: string, present: boolean): Promise<Set<string>> {
    const { store } = this.#d;
    if (store.editMetaSet) return new Set(await store.editMetaSet(key, member, present));
    // A store without the atomic edit: the stored set is read and written back (not this node's whole set from
    // memory, which would undo other nodes' edits), in two calls.
    const set = parseSet(await store.getMeta(key));
    if (present) set.add(member);
    else set.delete(member);
    await store.setMeta(key, set.size ? JSON.stringify([...set].sort()) : undefined);
    return set;
  }

  /** Replaces the paused sets with the stored ones; true when they differed (and the change was applied). */
  #adoptPaused(names: Set<string>, groups: Set<string>): boolean {
    if (sameSet(names, this.#paused) && sameSet(groups, this.#pausedGroups)) return false;
    const resumed = [...this.#paused].some((n) => !names.has(n)) || [...this.#pausedGroups].some((g) => !groups.has(g));
    this.#paused = new Set(names);
    this.#pausedGroups = new Set(groups);
    this.#pausedChanged();
    // A resume: the executor's demand may have been spent on an empty claim; it sends a new one.
    if (resumed) this.#ctx.tell(this.#d.orchestrator, { type: 'executor.poke' });
    return true;
  }

  /** The paused sets changed: the executor gives back what it holds of them, and the next claim follows them. */
  #pausedChanged(): void {
    this.#tellPaused();
    this.#drained = false;
    this.#pump();
  }

  /** Asks for a read of the control state a store change named (one schedule, the paused sets, or all of it). */
  #wantSync(m: Pick<SchedulerControlChanged, 'what' | 'id'>): void {
    const w = this.#syncWanted;
    if (m.what === 'all') w.all = true;
    else if (m.what === 'paused') w.paused = true;
    else if (m.id !== undefined) w.ids.add(m.id);
    void this.#runSync();
  }

  /**
   * Reads the control state asked for and applies it, one read at a time (a later answer never overwrites a newer
   * one). A read that began before a change this node made itself (its epoch moved) or while its own pause edits
   * are being written is read again afterwards instead of applied: it may not show them yet.
   */
  async #runSync(): Promise<void> {
    if (this.#syncing) return;
    this.#syncing = true;
    try {
      while (!this.#stopped && this.#pauseWriting === 0) {
        const w = this.#syncWanted;
        if (!w.all && !w.paused && w.ids.size === 0) return;
        this.#syncWanted = { all: false, paused: false, ids: new Set() };
        const epoch = this.#controlEpoch;
        let read: ControlRead;
        try {
          read = await this.#readControl(w);
        } catch (error) {
          // Read at the next control check: a full read, as the version is forgotten.
          this.#controlVersion = undefined;
          this.#d.logger.warn('control state changed elsewhere could not be read', { error: serializeError(error).message });
          return;
        }
        if (this.#stopped) return;
        if (epoch !== this.#controlEpoch || this.#pauseWriting > 0) {
          this.#mergeWanted(w);
          continue;
        }
        this.#applyControl(w, read);
      }
    } finally {
      this.#syncing = false;
    }
  }

  #mergeWanted(w: SyncWanted): void {
    const into = this.#syncWanted;
    into.all ||= w.all;
    into.paused ||= w.paused;
    for (const id of w.ids) into.ids.add(id);
  }

  async #readControl(w: SyncWanted): Promise<ControlRead> {
    const { store } = this.#d;
    const version = w.all && store.controlVersion ? await store.controlVersion() : undefined;
    const schedules: Array<[string, ScheduleRecord | undefined]> = w.all
      ? (await store.listSchedules()).map((s) => [s.id, s])
      : await Promise.all([...w.ids].map(async (id): Promise<[string, ScheduleRecord | undefined]> => [id, await store.getSchedule(id)]));
    const paused = w.all || w.paused ? await Promise.all([store.getMeta(PAUSED_KEY), store.getMeta(PAUSED_GROUPS_KEY)]) : undefined;
    return { version, schedules, paused };
  }

  #applyControl(w: SyncWanted, read: ControlRead): void {
    let changed = false;
    for (const [id, stored] of read.schedules) changed = this.#adoptSchedule(id, stored) || changed;
    if (w.all) {
      const listed = new Set(read.schedules.map(([id]) => id));
      for (const id of [...this.#schedules.keys()]) if (!listed.has(id)) changed = this.#adoptSchedule(id, undefined) || changed;
      this.#controlVersion = read.version;
    }
    if (changed) this.#armSchedules();
    if (read.paused) this.#adoptPaused(parseSet(read.paused[0]), parseSet(read.paused[1]));
  }

  /**
   * Takes the stored record of a schedule (undefined: deleted); true when that changed it here. A record that
   * defines the same schedule keeps this node's copy, so a slot prepared from it stays prepared; a changed one
   * keeps the later of the two last slots (this node's firing may not be stored yet).
   */
  #adoptSchedule(id: string, stored: ScheduleRecord | undefined): boolean {
    const mine = this.#schedules.get(id);
    if (stored === undefined) return this.#schedules.delete(id);
    if (mine !== undefined && sameSchedule(mine, stored)) return false;
    const next: ScheduleRecord = { ...stored };
    const last = Math.max(mine?.lastSlot ?? -Infinity, stored.lastSlot ?? -Infinity);
    if (Number.isFinite(last)) next.lastSlot = last;
    this.#schedules.set(id, next);
    return true;
  }

  /**
   * Arms the next control check: one small read of the store's control version (`Store.controlVersion`), and a
   * read of the whole control state only when it moved. The safety net under the store's change notifications,
   * and the only way to hear of changes made by other processes on a SQLite file.
   */
  #armControlCheck(): void {
    const ms = this.#d.controlSyncMs ?? 0;
    if (ms <= 0 || this.#stopped || !this.#d.store.controlVersion) return;
    this.#controlTimer = this.#d.clock.setTimeout(() => {
      this.#controlTimer = undefined;
      void this.#checkControl();
    }, ms);
    this.#controlTimer.unref?.();
  }

  async #checkControl(): Promise<void> {
    try {
      const version = await this.#d.store.controlVersion!();
      if (version !== this.#controlVersion) this.#wantSync({ what: 'all' });
    } catch {
      // The store is unreachable: its health says so; the next check reads again.
    } finally {
      this.#armControlCheck();
    }
  }

  /**
   * Reads a schedule again ahead of its slot: false when the stored one is paused or gone (changed on another
   * node, and this node has not heard yet: it is read in full then). A failed read counts as active: the slot
   * fires as it would have (its key still makes it fire once).
   */
  async #stillLive(s: ScheduleRecord): Promise<boolean> {
    let stored: ScheduleRecord | undefined;
    try {
      stored = await this.#d.store.getSchedule(s.id);
    } catch {
      return true;
    }
    if (stored === undefined || !sameSchedule(s, stored)) this.#wantSync({ what: 'schedule', id: s.id });
    return stored !== undefined && !stored.paused;
  }

  // ── periodic schedules ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Arms the next slot in two steps: a plain timer {@link PREPARE_LEAD_MS} ahead of it builds the slot's tasks
   * (#prepare), then the clock's precise timer fires them the moment the clock reads the slot (never before; on
   * the system clock it waits on the timer thread, see src/timer-thread.ts, so the event loop sleeps until then).
   * A plain timer alone fires about a millisecond late, plus the work that is now done ahead.
   */
  #armSchedules(): void {
    const { clock } = this.#d;
    clock.clearTimeout(this.#scheduleTimer);
    this.#scheduleTimer = undefined;
    this.#dropPrepared();
    if (this.#stopped) return;
    let earliest = Infinity;
    for (const s of this.#schedules.values()) {
      if (s.paused) continue;
      const after = s.lastSlot ?? s.createdAt;
      const next = nextSlot(s, after);
      if (next !== undefined && next < earliest) earliest = next;
    }
    if (!Number.isFinite(earliest)) return;
    const wait = earliest - clock.now();
    // A slot already due (catch-up after downtime, or a late wake-up): fire it now, nothing to prepare.
    if (wait <= 0) this.#scheduleTimer = clock.setTimeout(() => void this.#fireDue(), 0);
    else this.#scheduleTimer = clock.setTimeout(() => this.#prepareSlot(earliest), Math.max(0, wait - PREPARE_LEAD_MS));
  }

  /**
   * Forgets the slots prepared ahead, but for a slot whose task was written ahead (#writeAhead) and whose schedule
   * is unchanged: that one is fired at its slot still. One whose schedule was paused or removed is cancelled (a
   * replaced schedule's slot keeps its task: the slot was due, and its key makes the new record's firing of the
   * same slot a no-op). At stop it is forgotten, not cancelled: the executor's drain waits for it like any running task.
   */
  #dropPrepared(): void {
    for (const [id, ready] of this.#prepared) {
      const s = this.#schedules.get(id);
      if (ready.early !== undefined && s === ready.schedule && !s.paused && !this.#stopped) continue;
      this.#prepared.delete(id);
      if (ready.early !== undefined && !this.#stopped && (s === undefined || s.paused)) {
        void ready.early.then((taskId) => {
          if (taskId !== undefined) this.#cancelEarly(taskId, EARLY_CANCELLED.paused);
        });
      }
    }
  }

  /** Cancels a slot's task written ahead (#writeAhead) that must not run; a failure is logged. */
  #cancelEarly(taskId: string, reason: string): void {
    ask<TroupeMessage, Reply>(this.#ctx.bus, this.#ctx.self, this.#d.orchestrator, (replyTo) => ({ type: 'tracker.cancel', id: taskId, reason, replyTo }), { timeoutMs: 30_000 }).then(
      (reply) => {
        if (!reply.ok) this.#d.logger.error('could not cancel a slot task written ahead', { task: taskId, error: reply.error.message });
      },
      (error: unknown) => this.#d.logger.error('could not cancel a slot task written ahead', { task: taskId, error: serializeError(error).message }),
    );
  }

  /**
   * Prepares the schedules due at `at`, then waits precisely for it. The plain timer that calls it counts elapsed
   * time: after the wall clock jumped back it fires while the slot is still further off by the clock than
   * {@link PREPARE_LEAD_MS}, and it is armed again for the lead time instead (a task written ahead then would hold
   * an executor slot, and its lease, until the clock came round).
   */
  #prepareSlot(at: number): void {
    this.#scheduleTimer = undefined;
    if (this.#stopped) return;
    const { clock } = this.#d;
    const wait = at - clock.now();
    if (wait > PREPARE_LEAD_MS) {
      this.#scheduleTimer = clock.setTimeout(() => this.#prepareSlot(at), wait - PREPARE_LEAD_MS);
      return;
    }
    // The slot came before its lead time ended (the clock jumped forward, or the process stalled): nothing to write
    // ahead; the latest due slot is fired at once, as a catch-up.
    if (wait <= 0) {
      void this.#fireDue();
      return;
    }
    for (const s of this.#schedules.values()) {
      if (s.paused) continue;
      if (nextSlot(s, s.lastSlot ?? s.createdAt) !== at) continue;
      const kept = this.#prepared.get(s.id);
      if (kept !== undefined && kept.slot === at && kept.schedule === s) continue;
      this.#prepared.set(s.id, this.#prepare(s, at));
    }
    this.#scheduleTimer = setTimeoutAt(this.#d.clock, () => void this.#fireDue(), at);
  }

  /**
   * A slot's work that does not need the slot to have come: the task (input validated; its time fields are set
   * when it fires) and, unless `allow`, whether a run of the schedule is active.
   */
  #prepare(s: ScheduleRecord, slot: number): PreparedSlot {
    const task = this.#d.createTask(s.task, s.input, { key: `schedule:${s.id}:${slot}`, scheduleId: s.id, runAt: slot });
    const active = s.overlap === 'allow' ? undefined : this.#overlapActive(s);
    const live = this.#stillLive(s);
    // Fired or not, nobody may be left with an unhandled rejection: the firing awaits these again and reports.
    task.catch(() => {});
    active?.catch(() => {});
    // Asked even without an offer now: a claim in flight (an empty one on an idle node) leaves one once it is read.
    const early = this.#writeAhead(s, slot, task, active, live);
    return { slot, schedule: s, task, active, triggers: this.#triggers, early, live };
  }

  /**
   * Writes a slot's task ahead of its slot while the claim offer stands (this node waits for work with free
   * slots): the tracker claims it with the offer as of the slot, and the executor holds it, its slot taken, until
   * the clock reads the slot. At the slot only the start is left: no enqueue message, store write or claim
   * (0.2–0.6 ms on an idle node after a second of quiet; a PostgreSQL round trip more). The task is stored
   * `scheduled` (created now, due at its slot), leased and `running` as of the slot up to
   * {@link PREPARE_LEAD_MS} before it. Not when a run of the schedule is active ahead of the slot (the slot
   * decides then, as it may have ended), after a manual trigger, or once the offer is gone: the write is then made
   * at the slot. Resolves with the task's id, or undefined when nothing was written (an error too: the slot's own
   * enqueue reports it).
   */
  async #writeAhead(s: ScheduleRecord, slot: number, task: Promise<NewTask>, active: Promise<boolean> | undefined, live: Promise<boolean>): Promise<string | undefined> {
    const triggers = this.#triggers;
    try {
      // The read again runs beside the overlap question (both asked as the slot was prepared): it costs the lead
      // time the longer of the two round trips, not their sum. A task written before it answered could start on
      // its slot before a cancel reached it.
      if (!(await live)) return undefined;
      if (active !== undefined && (await active)) return undefined;
      const t = await task;
      // A claim in flight withdrew the offer (a wake-up's, or an idle PostgreSQL node's first one): once it is
      // read, an idle node offers again. Not past the slot: the slot enqueues its task itself then.
      if (this.#offer === 0 && this.#claims > 0) await this.#claimsSettled(slot);
      if (this.#offer === 0 || this.#stopped || triggers !== this.#triggers || this.#schedules.get(s.id) !== s) return undefined;
      const reply = await ask<TroupeMessage, Reply>(this.#ctx.bus, this.#ctx.self, this.#d.orchestrator, (replyTo) => ({ type: 'tracker.enqueue', tasks: [t], replyTo, startAt: slot }), { timeoutMs: 30_000 });
      return reply.ok ? (reply.value as EnqueueResult[])[0]?.id : undefined;
    } catch {
      return undefined;
    }
  }

  async #fireDue(): Promise<void> {
    if (this.#firing || this.#stopped) return;
    this.#firing = true;
    try {
      const now = this.#d.clock.now();
      // Prepared slots first, all at once: their slot is known, so no cron arithmetic (30–300 µs a schedule)
      // and no other schedule's enqueue stands between the slot and their own.
      const prepared: Array<Promise<void>> = [];
      const done = new Set<string>();
      const overtaken: Array<Promise<void>> = [];
      for (const [id, ready] of this.#prepared) {
        const s = this.#schedules.get(id);
        if (s === undefined || s !== ready.schedule || s.paused) continue;
        if (this.#isLatestSlot(s, ready.slot, now)) {
          done.add(id);
          this.#prepared.delete(id);
          prepared.push(this.#fireSlot(s, ready.slot, ready));
        } else if (ready.slot <= now && ready.slot > (s.lastSlot ?? s.createdAt)) {
          // Due, but not a moment ago: the clock jumped (or the process stalled) past it.
          this.#prepared.delete(id);
          overtaken.push(
            this.#fireOvertaken(s, ready, now).then((fired) => {
              if (fired) done.add(id);
            }),
          );
        }
      }
      await Promise.all(prepared);
      await Promise.all(overtaken);
      for (const s of [...this.#schedules.values()]) {
        if (s.paused || done.has(s.id)) continue;
        const slot = latestSlot(s, now, (s.lastSlot ?? s.createdAt) + 1);
        if (slot === undefined) continue;
        // Not prepared (a catch-up): read again first, as a prepared slot was.
        if (!(await this.#stillLive(s))) continue;
        await this.#fireSlot(s, slot);
      }
    } finally {
      this.#firing = false;
      this.#armSchedules();
    }
  }

  /**
   * Whether `slot` is the schedule's latest slot at `now` and not fired yet, without asking croner: slots are at
   * least {@link MIN_EVERY_MS} apart (the shortest `every`; cron counts whole seconds), so a slot less than that
   * ago is the latest one.
   */
  #isLatestSlot(s: ScheduleRecord, slot: number, now: number): boolean {
    return slot <= now && now - slot < MIN_EVERY_MS && slot > (s.lastSlot ?? s.createdAt);
  }

  /**
   * A prepared slot that the clock has gone past by a second or more: a forward jump (an NTP step, a VM resumed)
   * or a stall on an idle node, often past later slots too. The catch-up rule gives the missed slots one run
   * between them, and a task written ahead for the prepared slot (#writeAhead) is that run: it is already claimed
   * and starts now in the executor (its hold ends), so firing the latest slot as well would run the schedule
   * twice. The schedule records the latest slot as fired. Resolves false when no task was written ahead (or it was
   * cancelled for a trigger) and the latest slot is a later one: the caller then fires that slot as any catch-up.
   */
  async #fireOvertaken(s: ScheduleRecord, ready: PreparedSlot, now: number): Promise<boolean> {
    const latest = latestSlot(s, now, ready.slot) ?? ready.slot;
    if (latest !== ready.slot) {
      // #writeAhead never rejects: an error there is an undefined id.
      const early = ready.early === undefined || ready.revoked ? undefined : await ready.early;
      if (early === undefined) return false;
    }
    await this.#fireSlot(s, latest, ready);
    return true;
  }

  /** Fires one slot of a schedule; a failure is logged (the slot counts as fired: it is not tried again). */
  async #fireSlot(s: ScheduleRecord, slot: number, ready?: PreparedSlot): Promise<void> {
    s.lastSlot = slot;
    try {
      await this.#fire(s, slot, `schedule:${s.id}:${slot}`, ready);
    } catch (error) {
      this.#d.logger.error('schedule slot failed', { schedule: s.id, slot, error: serializeError(error).message });
    }
  }

  /** Whether a run of the schedule is active in the sense of its overlap policy. */
  async #overlapActive(s: ScheduleRecord): Promise<boolean> {
    const states = s.overlap === 'skip' ? (['queued', 'scheduled', 'running', 'retrying'] as const) : (['queued', 'scheduled', 'retrying'] as const);
    const active = await this.#d.store.list({ scheduleId: s.id, state: states, limit: 1 });
    return active.tasks.length > 0;
  }

  async #fire(s: ScheduleRecord, slot: number, key: string, ready?: PreparedSlot): Promise<string | undefined> {
    const { store, clock } = this.#d;
    // Paused or removed on another node before this node heard of it (read when the slot was prepared): no task.
    if (ready !== undefined && !(await ready.live)) return undefined;
    const early = ready?.early !== undefined ? await ready.early : undefined;
    if (early !== undefined && ready?.revoked) {
      // Cancelled for a manual trigger that came after it was written (overlap `skip`). If that run (or another)
      // is still active at the slot, the slot is skipped. If it already ended, the slot runs after all, as a new
      // task (the one built ahead has the cancelled task's id) under a key of its own: the cancelled task keeps the
      // slot's key, so every node's firing of this slot stays a no-op.
      const active = await this.#overlapActive(s).catch(() => true);
      this.#d.onSlot?.(s.task, s.id, active);
      if (!active) {
        const task = await this.#d.createTask(s.task, s.input, { key: `${key}${AFTER_TRIGGER_KEY}`, scheduleId: s.id, runAt: clock.now() });
        return this.#enqueueSlot(s, slot, task);
      }
      this.#stats.skipped++;
      await store.markScheduleSlot(s.id, slot);
      return undefined;
    }
    if (early !== undefined) {
      // Written ahead and claimed as of the slot: the executor starts it now. What is left waits until after that.
      if (s.overlap !== 'allow') this.#d.onSlot?.(s.task, s.id, false);
      await new Promise<void>((resolve) => setImmediate(resolve));
      await store.markScheduleSlot(s.id, slot);
      this.#stats.fired++;
      return early;
    }
    if (s.overlap !== 'allow') {
      // "Idle" from ahead of the slot holds unless a trigger came since (only a new task makes a schedule busy);
      // "busy" is asked again, as a run may have ended in between and the slot must not be skipped for it.
      let active = ready?.active && ready.triggers === this.#triggers ? await ready.active.catch(() => true) : true;
      if (active) active = await this.#overlapActive(s);
      this.#d.onSlot?.(s.task, s.id, active);
      if (active) {
        this.#stats.skipped++;
        await store.markScheduleSlot(s.id, slot);
        return undefined;
      }
    }
    let task: NewTask;
    if (ready) {
      // Built ahead: it is created now (so it is queued, not delayed), due at its slot.
      task = { ...(await ready.task), createdAt: clock.now() };
    } else task = await this.#d.createTask(s.task, s.input, { key, scheduleId: s.id, runAt: clock.now() });
    return this.#enqueueSlot(s, slot, task);
  }

  /** Enqueues a slot's task and records the slot as fired; resolves with the task's id. */
  async #enqueueSlot(s: ScheduleRecord, slot: number, task: NewTask): Promise<string | undefined> {
    const reply = await ask<TroupeMessage, Reply>(this.#ctx.bus, this.#ctx.self, this.#d.orchestrator, (replyTo) => ({ type: 'tracker.enqueue', tasks: [task], replyTo }), { timeoutMs: 30_000 });
    if (!reply.ok) throw deserializeError(reply.error);
    // The wake-up that claims the new task is queued behind this reply: let it claim first (a SQLite write here
    // would run before it). The slot is already kept in memory; the stored copy only serves a restart.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.#d.store.markScheduleSlot(s.id, slot);
    this.#stats.fired++;
    return (reply.value as EnqueueResult[])[0]?.id;
  }

  #trigger(id: string, replyTo: string): void {
    const s = this.#schedules.get(id);
    if (!s) {
      this.#ctx.tell(replyTo, createErrorReply(serializeError(new TroupeError(ErrorCodes.NOT_FOUND, `No schedule \`${id}\``))));
      return;
    }
    const now = this.#d.clock.now();
    this.#triggers++;
    // The next slot's task, written ahead while the schedule was idle, would now overlap the triggered run: under
    // `skip` the slot is skipped. Under `queue` both run (a running run never skips a slot there): the slot's task
    // still starts on its slot, and the triggered one waits behind it if the task's limits say so.
    const ready = this.#prepared.get(id);
    if (ready?.early !== undefined && s.overlap === 'skip' && !ready.revoked) {
      ready.revoked = true;
      void ready.early.then((taskId) => {
        if (taskId !== undefined) this.#cancelEarly(taskId, EARLY_CANCELLED.triggered);
      });
    }
    const s2: ScheduleRecord = { ...s, overlap: 'allow' };
    this.#fire(s2, s.lastSlot ?? now, `schedule:${id}:manual:${now}:${Math.random().toString(36).slice(2, 8)}`).then(
      (taskId) => this.#ctx.tell(replyTo, createReply(taskId)),
      (error: unknown) => this.#ctx.tell(replyTo, createErrorReply(serializeError(error))),
    );
  }
}
