/**
 * The in-memory Store: tests, throw-away runs, and the hot path of `rt.run()` in memory mode.
 *
 * Claim and settle cost O(names + log n), never a scan of all tasks:
 * - due tasks wait in per-name buckets (one per weight under weighted-random, else one), each a heap in claim
 *   order; a claim compares the heads of the allowed names' buckets, so `names`/`exclude`/`perName` skip a
 *   name's whole bucket;
 * - tasks waiting for their time (`scheduled`, `retrying`) sit in one min-heap by `runAt` and move into their
 *   bucket when a claim finds them due (their state changes only when they are claimed, as in SQL stores);
 * - running tasks are indexed by owner for heartbeats and lease recovery.
 * Heaps drop entries lazily: an entry carries a generation number, bumped whenever the task moves, so stale
 * heap items are skipped when they surface.
 *
 * Records handed out are shallow copies; `input` and `result` values are shared, not cloned. Inside, a record keeps
 * one shape for its whole life (every optional field present, `undefined` when unset, never deleted): deleting
 * a property turns a V8 object into a slow dictionary, and every settle used to. The copies carry only the set fields.
 */
import type { Clock } from '../clock.ts';
import { DEBOUNCED_REASON, debounceRunAt, throttleSince } from '../dedup.ts';
import { ErrorCodes, TroupeError, invalidOption, type SerializedError } from '../errors.ts';
import { FLOW_FAILED_REASON, FLOW_RELEASED_REASON, createChildFailedError, decideFlowStep, flowCancelledReason, visibleChildren } from '../flow.ts';
import type { TaskId } from '../ids.ts';
import type { OutputCaps } from '../output-caps.ts';
import {
  DEAD_STATES,
  FINAL_STATES,
  FLOW_WAITING_RUN_AT,
  TASK_STATES,
  isFinalState,
  type DedupSpec,
  type FlowChild,
  type NewTask,
  type OutputLine,
  type TaskRecord,
  type TaskState,
  type Transition,
} from '../task.ts';
import {
  Heap,
  compareByTime,
  compareForStrategy,
  createCancelledError,
  createLeaseExpiredError,
  decideExpiredLease,
  LEASE_REASONS,
  pickWeightClass,
  resolveStoreOptions,
  type OrderKey,
  type ResolvedStoreOptions,
  type WeightClass,
} from './pick.ts';
import { ClaimGate, hasEntries, limitedNames, needsGate, pairKey } from './claim-gate.ts';
import { IndexedList } from '../indexed-list.ts';
import { OutputRuns } from './output-runs.ts';
import type {
  CancelResult,
  CancelledChild,
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
} from './store.ts';

const Where = { none: 0, ready: 1, delayed: 2 } as const;
type Where = (typeof Where)[keyof typeof Where];

interface Entry {
  rec: TaskRecord;
  /**
   * Transitions, flat: HISTORY_WIDTH cells each (from, to, at − rec.createdAt, attempt, reason, error). One array
   * per task instead of an object per transition: fewer live objects for the collector while thousands of tasks
   * are kept. `at` is kept as an offset from the task's creation: a small integer is stored in the cell itself,
   * where an epoch-millisecond time would be a heap number of its own (an allocation per transition).
   *
   * Undefined while every transition so far is implied (see `implied`).
   */
  history: unknown[] | undefined;
  /**
   * How many of the task's transitions are implied by its record instead of stored, or -1 once they are stored.
   * The usual life of a task is `null → queued` at `createdAt` (attempt 0), `queued → running` at `startedAt`
   * (attempt 1), `running → succeeded` at `finishedAt` (attempt 1), with no reason or error: as long as a task
   * follows it, those times are already in its record and the task has no history array. Why: thousands of
   * finished tasks are kept, each one outlives the young generation, and what outlives it is copied: the array
   * (25 slots for 18 cells) and its three times were ≈300 bytes of each kept task (a heap snapshot), and the bytes
   * the collector promoted per idle `rt.run` fell from ≈790 to ≈550 with this and the retention change below.
   */
  implied: number;
  output?: OutputRuns;
  where: Where;
  gen: number;
  bucket?: Bucket;
  /** Sequence number of the latest time the task became final (for retention); 0 once forgotten. */
  fin: number;
  /** Index in its owner's running list while it runs, else -1. */
  listIndex: number;
  /** Runs lost to an expired lease (see `decideExpiredLease`). */
  leaseLosses: number;
}

/**
 * A heap item: its sort key is copied at push time, because a task's `runAt` changes while stale items of it may
 * still sit in a heap (a debounce pushes a scheduled task back, `retry` makes a cancelled one due now); a heap
 * that read the live record would see a key change under it and lose its order, hiding due tasks behind later ones.
 */
interface Item extends OrderKey {
  e: Entry;
  gen: number;
}

interface Bucket {
  weight: number;
  /** Tasks of one group wait in buckets of their own, so a full or paused group is skipped whole. */
  group: string | undefined;
  heap: Heap<Item>;
  /** Live (non-stale) items. */
  size: number;
}

interface NameQueue {
  name: string;
  /** By weight (a number) for tasks without a group, by `group \u001f weight` for grouped ones. */
  buckets: Map<number | string, Bucket>;
}

const Status = { open: 'open', closed: 'closed' } as const;
type Status = (typeof Status)[keyof typeof Status];

export interface MemoryStoreOptions extends StoreOptions {
  /** Unused by the logic (every method takes its time), kept for symmetry with the other stores. */
  clock?: Clock;
  /**
   * Final tasks kept (with their history and output); beyond it the earliest finished are forgotten, as a
   * purge would. A finished task costs about 1.5 KB, so an unbounded store under `rt.run()` at tens of
   * thousands of tasks per second would fill the heap in minutes. A flow's finished children are kept past it
   * until their parent ends (its run reads their outcomes). @default 10000
   */
  maxFinished?: number;
}

/** Why: a Store with no I/O, fast enough to sit under `rt.run()` at tens of thousands of tasks per second. */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store & AsyncDisposable {
  const maxFinished = options.maxFinished ?? 10_000;
  if (maxFinished !== Infinity && (!Number.isSafeInteger(maxFinished) || maxFinished < 0)) {
    throw invalidOption('store.maxFinished', 'a non-negative integer or Infinity', maxFinished);
  }
  return new MemoryStore(resolveStoreOptions(options), maxFinished);
}

class MemoryStore implements Store, AsyncDisposable {
  readonly kind = 'memory' as const;
  readonly strategy: Strategy;
  readonly #options: ResolvedStoreOptions;
  readonly #compareItems: (a: Item, b: Item) => number;
  #status: Status = Status.open;
  #tasks = new Map<TaskId, Entry>();
  #byKey = new Map<string, Entry>();
  /** Task ids in creation order (sorted lazily for `list`). */
  #order: TaskId[] = [];
  #orderSorted = true;
  #queues = new Map<string, NameQueue>();
  #delayed = new Heap<Item>(compareByTime);
  /** Delayed tasks moved to a bucket but not yet claimed (still `scheduled`/`retrying`). */
  #promoted = new Set<Entry>();
  /** Running tasks per owner (unordered; see IndexedList for why not a Set). */
  #running = new Map<string, IndexedList<Entry>>();
  #counts = new StateCounts();
  #schedules = new Map<string, ScheduleRecord>();
  #meta = new Map<string, string>();
  /** Moved by every control change (`controlVersion`). */
  #controlVersion = 0;
  readonly #maxFinished: number;
  /** Final tasks in the order they finished (stale items are skipped), for retention. */
  #finished: (Entry | undefined)[] = [];
  /** `fin` of each #finished entry when it was pushed (a later finish of the same task makes that item stale). */
  #finishedFin: number[] = [];
  #finishedHead = 0;
  #finSeq = 0;
  /** Flow parent id → its children, in creation order. */
  #children = new Map<TaskId, Entry[]>();
  /** `name \u001f dedup key` → the latest task created with it. */
  #dedup = new Map<string, Entry>();
  /** Rate-limited starts per name, oldest first (pruned to the window at each gated claim). */
  #rateEvents = new Map<string, Array<{ group: string; at: number }>>();
  #listeners = new Set<(change: StoreChange) => void>();
  #changes: StoreChange[] = [];

  constructor(options: ResolvedStoreOptions, maxFinished: number) {
    this.#options = options;
    this.#maxFinished = maxFinished;
    this.strategy = options.strategy;
    this.#compareItems = compareForStrategy(options.strategy);
  }

  async open(): Promise<void> {
    this.#assertOpen();
  }

  async enqueue(tasks: readonly NewTask[]): Promise<EnqueueResult[]> {
    this.#assertOpen();
    const results = this.#enqueueNow(tasks);
    this.#emitChanges();
    return results;
  }

  async enqueueAndClaim(tasks: readonly NewTask[], request: ClaimRequest): Promise<EnqueueAndClaimResult> {
    this.#assertOpen();
    const results = this.#enqueueNow(tasks);
    const claimed = this.#claimNow(request);
    this.#emitChanges();
    return { results, claimed };
  }

  #enqueueNow(tasks: readonly NewTask[]): EnqueueResult[] {
    const results: EnqueueResult[] = [];
    /** Flow parents of this batch that were not created (their key matched): their children are not either. */
    let skipped: Map<TaskId, EnqueueResult> | undefined;
    for (const t of tasks) {
      const parentSkip = t.parentId !== undefined ? skipped?.get(t.parentId) : undefined;
      if (parentSkip) {
        if (t.flow) skipped!.set(t.id, parentSkip);
        results.push(parentSkip);
        continue;
      }
      const existing = (t.key !== undefined ? this.#byKey.get(t.key) : undefined) ?? this.#tasks.get(t.id);
      if (existing) {
        const result: EnqueueResult = { id: existing.rec.id, created: false, state: existing.rec.state };
        if (t.flow) (skipped ??= new Map()).set(t.id, result);
        results.push(result);
        continue;
      }
      if (t.dedup !== undefined) {
        const answer = this.#dedupe(t as NewTask & { dedup: DedupSpec });
        if (answer) {
          results.push(answer);
          continue;
        }
      }
      results.push(this.#insert(t));
    }
    return results;
  }

  /** Throttle or debounce against the latest task of the same name and dedup key; undefined: create the task. */
  #dedupe(t: NewTask & { dedup: DedupSpec }): EnqueueResult | undefined {
    const latest = this.#dedup.get(pairKey(t.name, t.dedup.key));
    if (!latest || this.#tasks.get(latest.rec.id) !== latest) return undefined;
    const rec = latest.rec;
    if (t.dedup.mode === 'throttle') {
      return rec.createdAt > throttleSince(t) ? { id: rec.id, created: false, state: rec.state } : undefined;
    }
    if ((rec.state !== 'queued' && rec.state !== 'scheduled') || rec.attempts > 0 || rec.flow) return undefined;
    const from = rec.state;
    const at = t.createdAt;
    this.#leaveQueue(latest);
    rec.input = t.input;
    rec.runAt = debounceRunAt(t);
    rec.updatedAt = at;
    this.#setState(latest, 'scheduled');
    this.#record(latest, from, 'scheduled', at, rec.attempts, DEBOUNCED_REASON);
    this.#toDelayed(latest);
    this.#changes.push({ type: 'debounced', id: rec.id, name: rec.name, at, runAt: rec.runAt });
    return { id: rec.id, created: false, state: 'scheduled' };
  }

  #insert(t: NewTask): EnqueueResult {
    const waiting = t.flow !== undefined && t.flow.pending > 0;
    const runAt = waiting ? FLOW_WAITING_RUN_AT : t.dedup?.mode === 'debounce' ? debounceRunAt(t as NewTask & { dedup: DedupSpec }) : t.runAt;
    const state: TaskState = runAt > t.createdAt ? 'scheduled' : 'queued';
    // Every field, in the order exportRecord copies them: the record keeps this one shape (see the file's note).
    const rec: TaskRecord = {
      id: t.id,
      name: t.name,
      state,
      input: t.input,
      priority: t.priority,
      weight: t.weight,
      attempts: 0,
      maxAttempts: t.maxAttempts,
      createdAt: t.createdAt,
      runAt,
      updatedAt: t.createdAt,
      key: t.key,
      scheduleId: t.scheduleId,
      options: t.options,
      group: t.group,
      dedupKey: t.dedup?.key,
      parentId: t.parentId,
      flow: t.flow === undefined ? undefined : { pending: t.flow.pending, policy: t.flow.policy },
      owner: undefined,
      leaseUntil: undefined,
      startedAt: undefined,
      progress: undefined,
      result: undefined,
      error: undefined,
      finishedAt: undefined,
      children: undefined,
    };
    const e: Entry = { rec, history: undefined, implied: 0, output: undefined, where: Where.none, gen: 0, bucket: undefined, fin: 0, listIndex: -1, leaseLosses: 0 };
    this.#tasks.set(t.id, e);
    if (t.key !== undefined) this.#byKey.set(t.key, e);
    if (t.dedup !== undefined) this.#dedup.set(pairKey(t.name, t.dedup.key), e);
    if (t.parentId !== undefined) {
      const siblings = this.#children.get(t.parentId);
      if (siblings) siblings.push(e);
      else this.#children.set(t.parentId, [e]);
    }
    const last = this.#order[this.#order.length - 1];
    if (last !== undefined && t.id < last) this.#orderSorted = false;
    this.#order.push(t.id);
    this.#counts.add(state, 1);
    this.#record(e, null, state, t.createdAt, 0);
    // a waiting flow parent sits in no queue: its last child puts it in one
    if (waiting) e.where = Where.none;
    else if (state === 'scheduled') this.#toDelayed(e);
    else this.#toReady(e);
    return { id: t.id, created: true, state };
  }

  async claim(request: ClaimRequest): Promise<TaskRecord[]> {
    this.#assertOpen();
    return this.#claimNow(request);
  }

  #claimNow(request: ClaimRequest): TaskRecord[] {
    const { owner, limit, leaseMs, now } = request;
    if (!(limit > 0)) return [];
    this.#promoteDue(now);
    if (needsGate(request)) return this.#claimGated(request);
    // Name filters as given (a node has few names): no Set or Map built per claim unless a cap is in play.
    const only = request.names;
    const exclude = request.exclude !== undefined && request.exclude.length > 0 ? request.exclude : undefined;
    const caps = hasEntries(request.perName) ? new Map<string, number>(Object.entries(request.perName!)) : undefined;
    let eligible: NameQueue[] = [];
    for (const q of this.#queues.values()) {
      if (only && !only.includes(q.name)) continue;
      if (exclude?.includes(q.name)) continue;
      const cap = caps?.get(q.name);
      if (cap !== undefined && !(cap > 0)) continue;
      eligible.push(q);
    }
    const claimed: TaskRecord[] = [];
    while (claimed.length < limit && eligible.length > 0) {
      const bucket = this.strategy === 'weighted-random' ? this.#pickWeighted(eligible) : this.#pickOrdered(eligible);
      if (!bucket) break;
      const item = bucket.heap.pop()!;
      const e = item.e;
      this.#leaveQueue(e);
      const name = e.rec.name;
      const cap = caps?.get(name);
      if (cap !== undefined) {
        caps!.set(name, cap - 1);
        if (cap - 1 <= 0) eligible = eligible.filter((q) => q.name !== name);
      }
      this.#start(e, owner, now, leaseMs);
      claimed.push(this.#claimedRecord(e));
    }
    return claimed;
  }

  /** The claim under group/rate limits and paused groups: buckets of blocked pairs and names are skipped whole. */
  #claimGated(request: ClaimRequest): TaskRecord[] {
    const { owner, limit, leaseMs, now } = request;
    const gate = new ClaimGate(request);
    const names = limitedNames(request);
    if (names.length > 0) this.#loadCounts(gate, names, now);
    const only = request.names ? new Set(request.names) : undefined;
    const pausedGroups = new Set(gate.excludedGroups);
    const claimed: TaskRecord[] = [];
    while (claimed.length < limit) {
      const eligible: NameQueue[] = [];
      for (const q of this.#queues.values()) {
        if ((only && !only.has(q.name)) || gate.excludedNames.has(q.name)) continue;
        eligible.push(q);
      }
      const open = (q: NameQueue, b: Bucket): boolean =>
        b.group === undefined ? !gate.blockedPairs.has(pairKey(q.name, undefined)) : !pausedGroups.has(b.group) && !gate.blockedPairs.has(pairKey(q.name, b.group));
      const bucket = this.strategy === 'weighted-random' ? this.#pickWeighted(eligible, open) : this.#pickOrdered(eligible, open);
      if (!bucket) break;
      const e = this.#bucketHead(bucket)!.e;
      if (!gate.admit(e.rec.name, e.rec.group)) break;
      bucket.heap.pop();
      this.#leaveQueue(e);
      this.#start(e, owner, now, leaseMs);
      claimed.push(this.#claimedRecord(e));
    }
    for (const s of gate.starts) {
      let list = this.#rateEvents.get(s.name);
      if (!list) this.#rateEvents.set(s.name, (list = []));
      list.push({ group: s.group, at: s.at });
    }
    gate.finish(claimed.length);
    return claimed;
  }

  /** Running tasks per group and recent starts per group of the limited names, for the gate. */
  #loadCounts(gate: ClaimGate, names: readonly string[], now: number): void {
    const wanted = new Set(names);
    const running = new Map<string, Map<string, number>>();
    for (const list of this.#running.values()) {
      for (const e of list.values()) {
        const { name, group } = e.rec;
        if (group === undefined || !wanted.has(name)) continue;
        let byGroup = running.get(name);
        if (!byGroup) running.set(name, (byGroup = new Map()));
        byGroup.set(group, (byGroup.get(group) ?? 0) + 1);
      }
    }
    for (const name of names) {
      const recent = new Map<string, { n: number; oldest: number }>();
      const rate = gate.rateOf(name);
      const list = this.#rateEvents.get(name);
      if (rate && list) {
        const since = now - rate.perMs;
        let drop = 0;
        while (drop < list.length && list[drop]!.at <= since) drop++;
        if (drop > 0) list.splice(0, drop);
        for (const ev of list) {
          const r = recent.get(ev.group);
          if (r) {
            r.n++;
            r.oldest = Math.min(r.oldest, ev.at);
          } else recent.set(ev.group, { n: 1, oldest: ev.at });
        }
      }
      gate.load(name, { running: running.get(name) ?? new Map(), recent });
    }
  }

  /** A copy of a just-claimed record; a flow parent's carries its children's outcomes. */
  #claimedRecord(e: Entry): TaskRecord {
    const rec = exportRecord(e.rec);
    if (rec.flow) {
      rec.flow = { ...rec.flow };
      const children: FlowChild[] = [];
      for (const c of this.#children.get(rec.id) ?? []) {
        if (this.#tasks.get(c.rec.id) !== c) continue;
        const child: FlowChild = { id: c.rec.id, name: c.rec.name, state: c.rec.state };
        if (c.rec.result !== undefined) child.result = c.rec.result;
        if (c.rec.error !== undefined) child.error = c.rec.error;
        children.push(child);
      }
      rec.children = visibleChildren(rec.flow.policy, children);
    }
    return rec;
  }

  async heartbeat(owner: string, leaseUntil: number, ids?: readonly TaskId[]): Promise<number> {
    this.#assertOpen();
    let n = 0;
    if (ids) {
      for (const id of ids) {
        const e = this.#tasks.get(id);
        if (e && e.rec.state === 'running' && e.rec.owner === owner) {
          e.rec.leaseUntil = Math.max(e.rec.leaseUntil ?? 0, leaseUntil);
          n++;
        }
      }
      return n;
    }
    for (const e of this.#running.get(owner)?.values() ?? []) {
      e.rec.leaseUntil = Math.max(e.rec.leaseUntil ?? 0, leaseUntil);
      n++;
    }
    return n;
  }

  async settle(ops: readonly SettleOp[]): Promise<boolean[]> {
    this.#assertOpen();
    const applied = ops.map((op) => this.#settleOne(op));
    this.#retain();
    this.#emitChanges();
    return applied;
  }

  async cancel(id: TaskId, at: number, reason?: string): Promise<CancelResult> {
    this.#assertOpen();
    const e = this.#tasks.get(id);
    if (!e) return { previous: undefined, cancelled: false };
    const previous = e.rec.state;
    const final = isFinalState(previous);
    const owner = final ? undefined : this.#cancelOne(e, at, reason);
    const children = e.rec.flow ? this.#cancelDescendants(e, at, flowCancelledReason(id)) : [];
    if (!final || children.length > 0) {
      this.#retain();
      this.#emitChanges();
    }
    const result: CancelResult = { previous, cancelled: !final, name: e.rec.name };
    if (owner !== undefined) result.owner = owner;
    if (children.length > 0) result.children = children;
    return result;
  }

  /** Moves a task that is not final to `cancelled`; returns the owner that was running it. */
  #cancelOne(e: Entry, at: number, reason: string | undefined): string | undefined {
    const previous = e.rec.state;
    const owner = previous === 'running' ? e.rec.owner : undefined;
    this.#leaveQueue(e);
    this.#leaveRunning(e);
    this.#setState(e, 'cancelled');
    e.rec.error = createCancelledError(reason);
    e.rec.finishedAt = at;
    e.rec.updatedAt = at;
    e.rec.leaseUntil = undefined;
    this.#record(e, previous, 'cancelled', at, e.rec.attempts, reason ?? 'cancelled');
    this.#childFinal(e, at);
    return owner;
  }

  /** Cancels a flow parent's descendants that are not final, each parent before its children. */
  #cancelDescendants(parent: Entry, at: number, reason: string): CancelledChild[] {
    const out: CancelledChild[] = [];
    let level = [parent];
    while (level.length > 0) {
      const next: Entry[] = [];
      for (const p of level) {
        for (const c of this.#children.get(p.rec.id) ?? []) {
          if (this.#tasks.get(c.rec.id) !== c) continue;
          if (c.rec.flow) next.push(c);
          const previous = c.rec.state;
          if (isFinalState(previous)) continue;
          const owner = this.#cancelOne(c, at, reason);
          out.push(owner === undefined ? { id: c.rec.id, name: c.rec.name, previous } : { id: c.rec.id, name: c.rec.name, previous, owner });
        }
      }
      level = next;
    }
    return out;
  }

  async retry(id: TaskId, at: number): Promise<TaskRecord | undefined> {
    this.#assertOpen();
    const e = this.#tasks.get(id);
    if (!e || !DEAD_STATES.has(e.rec.state)) return undefined;
    const previous = e.rec.state;
    const rec = e.rec;
    this.#setState(e, 'queued');
    rec.attempts = 0;
    rec.runAt = at;
    rec.updatedAt = at;
    for (const k of ['result', 'error', 'finishedAt', 'startedAt', 'owner', 'leaseUntil', 'progress'] as const) rec[k] = undefined;
    this.#record(e, previous, 'queued', at, 0, 'retried');
    this.#toReady(e);
    // A flow child not final again is pending again in its parent (src/flow.ts: the count stays true).
    const parent = rec.parentId === undefined ? undefined : this.#tasks.get(rec.parentId)?.rec;
    if (parent?.flow) parent.flow = { ...parent.flow, pending: parent.flow.pending + 1 };
    return exportRecord(rec);
  }

  async recoverExpired(now: number): Promise<TaskRecord[]> {
    this.#assertOpen();
    const expired: Entry[] = [];
    for (const list of this.#running.values()) {
      for (const e of list.values()) if ((e.rec.leaseUntil ?? -Infinity) < now) expired.push(e);
    }
    expired.sort((a, b) => (a.rec.id < b.rec.id ? -1 : 1));
    const records = expired.map((e) => {
      const rec = e.rec;
      this.#leaveRunning(e);
      rec.updatedAt = now;
      rec.leaseUntil = undefined;
      const verdict = decideExpiredLease({ attempts: rec.attempts, maxAttempts: rec.maxAttempts, leaseLosses: e.leaseLosses });
      e.leaseLosses++;
      if (verdict === 'fail') {
        const error = createLeaseExpiredError(rec.attempts);
        this.#setState(e, 'failed');
        rec.error = error;
        rec.finishedAt = now;
        this.#record(e, 'running', 'failed', now, rec.attempts, LEASE_REASONS.fail, error);
        this.#childFinal(e, now);
      } else {
        this.#setState(e, 'queued');
        rec.owner = undefined;
        this.#record(e, 'running', 'queued', now, rec.attempts, LEASE_REASONS[verdict]);
        if (verdict === 'requeue-extra') rec.maxAttempts++;
        this.#toReady(e);
      }
      return exportRecord(rec);
    });
    this.#retain();
    this.#emitChanges();
    return records;
  }

  async get(id: TaskId): Promise<TaskRecord | undefined> {
    this.#assertOpen();
    const e = this.#tasks.get(id);
    return e ? exportRecord(e.rec) : undefined;
  }

  async states(ids: readonly TaskId[]): Promise<Map<TaskId, TaskState>> {
    this.#assertOpen();
    const found = new Map<TaskId, TaskState>();
    for (const id of ids) {
      const e = this.#tasks.get(id);
      if (e) found.set(id, e.rec.state);
    }
    return found;
  }

  async history(id: TaskId): Promise<Transition[]> {
    this.#assertOpen();
    const e = this.#tasks.get(id);
    if (e === undefined) return [];
    const h = e.history ?? impliedHistory(e);
    const out: Transition[] = [];
    for (let at = 0; at < h.length; at += HISTORY_WIDTH) {
      const t: Transition = { taskId: e.rec.id, from: h[at] as TaskState | null, to: h[at + 1] as TaskState, at: e.rec.createdAt + (h[at + 2] as number), attempt: h[at + 3] as number };
      if (h[at + 4] !== undefined) t.reason = h[at + 4] as string;
      if (h[at + 5] !== undefined) t.error = h[at + 5] as SerializedError;
      out.push(t);
    }
    return out;
  }

  async output(id: TaskId, after?: number, limit?: number): Promise<OutputLine[]> {
    this.#assertOpen();
    return this.#tasks.get(id)?.output?.read(after, limit) ?? [];
  }

  async list(filter: ListFilter = {}): Promise<ListPage> {
    this.#assertOpen();
    const limit = Math.min(1000, Math.max(1, Math.floor(filter.limit ?? 50)));
    const states = filter.state === undefined ? undefined : new Set(typeof filter.state === 'string' ? [filter.state] : filter.state);
    if (!this.#orderSorted) {
      this.#order.sort();
      this.#orderSorted = true;
    }
    const order = this.#order;
    let start = order.length - 1;
    if (filter.cursor !== undefined) {
      const cursor = filter.cursor;
      let lo = 0;
      let hi = order.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (order[mid]! < cursor) lo = mid + 1;
        else hi = mid;
      }
      start = lo - 1;
    }
    const tasks: TaskRecord[] = [];
    for (let i = start; i >= 0 && tasks.length <= limit; i--) {
      const rec = this.#tasks.get(order[i]!)?.rec;
      if (!rec) continue;
      if (states && !states.has(rec.state)) continue;
      if (filter.name !== undefined && rec.name !== filter.name) continue;
      if (filter.scheduleId !== undefined && rec.scheduleId !== filter.scheduleId) continue;
      if (filter.parentId !== undefined && rec.parentId !== filter.parentId) continue;
      if (filter.group !== undefined && rec.group !== filter.group) continue;
      if (filter.since !== undefined && rec.createdAt < filter.since) continue;
      tasks.push(exportRecord(rec));
    }
    if (tasks.length > limit) {
      tasks.length = limit;
      return { tasks, nextCursor: tasks[limit - 1]!.id };
    }
    return { tasks };
  }

  async counts(now: number): Promise<QueueCounts> {
    this.#assertOpen();
    // A waiting flow parent is in no queue, so it is never met here.
    let dueWaiting = 0;
    let oldestDueAt: number | undefined;
    const consider = (item: Item, bucket: Bucket | undefined): void => {
      const e = item.e;
      if (item.gen !== e.gen || e.bucket !== bucket) return;
      const { state, runAt } = e.rec;
      if (runAt > now) return;
      if (state !== 'queued') dueWaiting++;
      if (oldestDueAt === undefined || runAt < oldestDueAt) oldestDueAt = runAt;
    };
    for (const q of this.#queues.values()) {
      for (const b of q.buckets.values()) for (const item of b.heap.values()) if (item.e.where === Where.ready) consider(item, b);
    }
    for (const item of this.#delayed.values()) if (item.e.where === Where.delayed) consider(item, undefined);
    const byState = this.#counts.toRecord();
    const due = byState.queued + dueWaiting;
    return oldestDueAt === undefined ? { byState, due } : { byState, due, oldestDueAt };
  }

  async nextRunAt(after?: number): Promise<number | undefined> {
    this.#assertOpen();
    const later = (at: number): boolean => after === undefined || at > after;
    let next: number | undefined;
    const head = this.#delayedHead();
    if (head !== undefined) {
      if (later(head.e.rec.runAt)) next = head.e.rec.runAt;
      else {
        // Rare: a claim promotes what is due, so the head is later than the claim's time unless added since.
        for (const item of this.#delayed.values()) {
          if (item.gen !== item.e.gen || item.e.where !== Where.delayed) continue;
          const at = item.e.rec.runAt;
          if (later(at) && (next === undefined || at < next)) next = at;
        }
      }
    }
    for (const e of this.#promoted) if (later(e.rec.runAt) && (next === undefined || e.rec.runAt < next)) next = e.rec.runAt;
    return next;
  }

  async purge(request: PurgeRequest): Promise<number> {
    this.#assertOpen();
    const states = new Set((request.states ?? [...FINAL_STATES]).filter((s) => FINAL_STATES.has(s)));
    let n = 0;
    for (const e of this.#tasks.values()) {
      const { rec } = e;
      if (!states.has(rec.state) || rec.finishedAt === undefined || rec.finishedAt >= request.finishedBefore) continue;
      if (rec.parentId !== undefined && this.#parentAwaits(rec.parentId)) continue;
      this.#forget(e);
      n++;
    }
    if (n > 0) this.#order = this.#order.filter((id) => this.#tasks.has(id));
    return n;
  }

  /** One pass over the tasks: no index by finish time is kept, as nothing on the hot path would read it. */
  async countFinished(from: number, to: number): Promise<FinishedCounts> {
    this.#assertOpen();
    const n: FinishedCounts = { succeeded: 0, failed: 0, timed_out: 0, cancelled: 0 };
    for (const { rec } of this.#tasks.values()) {
      const at = rec.finishedAt;
      if (at === undefined || at < from || at > to) continue;
      switch (rec.state) {
        case 'succeeded':
        case 'failed':
        case 'timed_out':
        case 'cancelled':
          n[rec.state]++;
      }
    }
    return n;
  }

  async saveSchedule(schedule: ScheduleRecord): Promise<void> {
    this.#assertOpen();
    const existing = this.#schedules.get(schedule.id);
    const next: ScheduleRecord = { ...schedule };
    if (existing) {
      next.createdAt = existing.createdAt;
      if (existing.lastSlot !== undefined && (next.lastSlot === undefined || next.lastSlot < existing.lastSlot)) {
        next.lastSlot = existing.lastSlot;
      }
    }
    for (const k of ['cron', 'everyMs', 'timezone', 'lastSlot'] as const) if (next[k] === undefined) delete next[k];
    this.#schedules.set(schedule.id, next);
    this.#controlChanged({ type: 'schedule.changed', id: schedule.id });
  }

  async getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    this.#assertOpen();
    const s = this.#schedules.get(id);
    return s ? { ...s } : undefined;
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    this.#assertOpen();
    return [...this.#schedules.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((s) => ({ ...s }));
  }

  async deleteSchedule(id: string): Promise<boolean> {
    this.#assertOpen();
    const removed = this.#schedules.delete(id);
    if (removed) this.#controlChanged({ type: 'schedule.changed', id });
    return removed;
  }

  async markScheduleSlot(id: string, slot: number): Promise<boolean> {
    this.#assertOpen();
    const s = this.#schedules.get(id);
    if (!s || (s.lastSlot !== undefined && slot <= s.lastSlot)) return false;
    s.lastSlot = slot;
    return true;
  }

  async getMeta(key: string): Promise<string | undefined> {
    this.#assertOpen();
    return this.#meta.get(key);
  }

  async setMeta(key: string, value: string | undefined): Promise<void> {
    this.#assertOpen();
    if (value === undefined) this.#meta.delete(key);
    else this.#meta.set(key, value);
  }

  async editMetaSet(key: string, member: string, present: boolean): Promise<string[]> {
    this.#assertOpen();
    const text = this.#meta.get(key);
    const set = new Set(text === undefined ? [] : (JSON.parse(text) as string[]));
    if (present) set.add(member);
    else set.delete(member);
    const members = [...set].sort();
    this.#meta.set(key, JSON.stringify(members));
    this.#controlChanged({ type: 'meta.changed', key });
    return members;
  }

  async controlVersion(): Promise<number> {
    this.#assertOpen();
    return this.#controlVersion;
  }

  /** A control change: the version moves, and the runtimes sharing this store hear of it. */
  #controlChanged(change: StoreChange): void {
    this.#controlVersion++;
    this.#changes.push(change);
    this.#emitChanges();
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#status === Status.closed) return;
    this.#status = Status.closed;
    this.#listeners.clear();
    this.#children.clear();
    this.#dedup.clear();
    this.#rateEvents.clear();
    this.#tasks.clear();
    this.#byKey.clear();
    this.#queues.clear();
    this.#running.clear();
    this.#promoted.clear();
    this.#order = [];
    this.#finished = [];
    this.#finishedFin = [];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#status === Status.closed) throw new TroupeError(ErrorCodes.CLOSED, 'The memory store is closed');
  }

  #settleOne(op: SettleOp): boolean {
    const e = this.#tasks.get(op.id);
    if (!e) return false;
    const rec = e.rec;
    if (op.type === 'progress') {
      if (rec.state !== 'running') return false;
      rec.progress = op.progress;
      rec.updatedAt = op.at;
      return true;
    }
    if (op.type === 'output') {
      this.#appendOutput(e, op.lines, op.caps);
      return true;
    }
    if (rec.state !== 'running' || rec.owner !== op.owner || rec.attempts !== op.attempt) return false;
    this.#leaveRunning(e);
    rec.updatedAt = op.at;
    rec.leaseUntil = undefined;
    switch (op.type) {
      case 'succeeded':
        this.#setState(e, 'succeeded');
        rec.result = op.result;
        rec.error = undefined;
        rec.finishedAt = op.at;
        this.#record(e, 'running', 'succeeded', op.at, op.attempt);
        this.#childFinal(e, op.at);
        break;
      case 'failed':
      case 'timed_out':
        this.#setState(e, op.type);
        rec.error = op.error;
        rec.finishedAt = op.at;
        this.#record(e, 'running', op.type, op.at, op.attempt, undefined, op.error);
        this.#childFinal(e, op.at);
        break;
      case 'retry':
        this.#setState(e, 'retrying');
        rec.error = op.error;
        rec.runAt = op.runAt;
        rec.owner = undefined;
        this.#record(e, 'running', 'retrying', op.at, op.attempt, op.reason, op.error);
        this.#toDelayed(e);
        break;
      case 'release':
        rec.attempts = op.attempt - 1;
        rec.owner = undefined;
        if (op.runAt === undefined) {
          this.#setState(e, 'queued');
          this.#record(e, 'running', 'queued', op.at, op.attempt, op.reason);
          this.#toReady(e);
        } else {
          this.#setState(e, 'scheduled');
          rec.runAt = op.runAt;
          this.#record(e, 'running', 'scheduled', op.at, op.attempt, op.reason);
          this.#toDelayed(e);
        }
        break;
    }
    return true;
  }

  /** Keeps the task's newest lines within its caps, and within `maxOutputLines` whatever they say. */
  #appendOutput(e: Entry, lines: readonly OutputLine[], caps: OutputCaps | undefined): void {
    const ceiling = this.#options.maxOutputLines;
    const output = (e.output ??= new OutputRuns());
    if (caps === undefined) output.append(lines, ceiling);
    else output.append(lines, caps.maxLines < ceiling ? caps.maxLines : ceiling, caps.maxBytes);
  }

  #start(e: Entry, owner: string, now: number, leaseMs: number): void {
    const rec = e.rec;
    if (rec.state !== 'queued') {
      const from = rec.state;
      this.#promoted.delete(e);
      this.#setState(e, 'queued');
      this.#record(e, from, 'queued', now, rec.attempts, 'due');
    }
    rec.attempts++;
    this.#setState(e, 'running');
    rec.owner = owner;
    rec.leaseUntil = now + leaseMs;
    rec.startedAt = now;
    rec.updatedAt = now;
    rec.progress = undefined;
    this.#record(e, 'queued', 'running', now, rec.attempts);
    let list = this.#running.get(owner);
    if (!list) this.#running.set(owner, (list = new IndexedList()));
    list.add(e);
  }

  #pickOrdered(eligible: readonly NameQueue[], open?: (q: NameQueue, b: Bucket) => boolean): Bucket | undefined {
    let best: Bucket | undefined;
    let bestItem: Item | undefined;
    for (const q of eligible) {
      for (const b of q.buckets.values()) {
        if (open && !open(q, b)) continue;
        const head = this.#bucketHead(b);
        if (head && (!bestItem || this.#compareItems(head, bestItem) < 0)) {
          best = b;
          bestItem = head;
        }
      }
    }
    return best;
  }

  #pickWeighted(eligible: readonly NameQueue[], open?: (q: NameQueue, b: Bucket) => boolean): Bucket | undefined {
    const byWeight = new Map<number, number>();
    for (const q of eligible) {
      for (const b of q.buckets.values()) if (b.size > 0 && (!open || open(q, b))) byWeight.set(b.weight, (byWeight.get(b.weight) ?? 0) + b.size);
    }
    if (byWeight.size === 0) return undefined;
    const classes: WeightClass[] = [...byWeight].map(([weight, count]) => ({ weight, count })).sort((a, b) => a.weight - b.weight);
    const index = pickWeightClass(classes, this.#options.random());
    if (index < 0) return undefined;
    const weight = classes[index]!.weight;
    let best: Bucket | undefined;
    let bestItem: Item | undefined;
    for (const q of eligible) {
      for (const b of q.buckets.values()) {
        if (b.weight !== weight || (open && !open(q, b))) continue;
        const head = this.#bucketHead(b);
        if (head && (!bestItem || compareByTime(head, bestItem) < 0)) {
          best = b;
          bestItem = head;
        }
      }
    }
    return best;
  }

  /** The live head of a bucket, dropping stale items on the way. */
  #bucketHead(b: Bucket): Item | undefined {
    for (;;) {
      const item = b.heap.peek();
      if (!item) return undefined;
      if (item.gen === item.e.gen && item.e.where === Where.ready && item.e.bucket === b) return item;
      b.heap.pop();
    }
  }

  #delayedHead(): Item | undefined {
    for (;;) {
      const item = this.#delayed.peek();
      if (!item) return undefined;
      if (item.gen === item.e.gen && item.e.where === Where.delayed) return item;
      this.#delayed.pop();
    }
  }

  #promoteDue(now: number): void {
    for (;;) {
      const item = this.#delayedHead();
      if (!item || item.e.rec.runAt > now) return;
      this.#delayed.pop();
      this.#promoted.add(item.e);
      this.#toReady(item.e);
    }
  }

  #toReady(e: Entry): void {
    const name = e.rec.name;
    let q = this.#queues.get(name);
    if (!q) this.#queues.set(name, (q = { name, buckets: new Map() }));
    const weight = this.strategy === 'weighted-random' ? e.rec.weight : 0;
    const group = e.rec.group;
    const key = group === undefined ? weight : `${group}\u001f${weight}`;
    let b = q.buckets.get(key);
    if (!b) q.buckets.set(key, (b = { weight, group, heap: new Heap(this.#compareItems), size: 0 }));
    e.where = Where.ready;
    e.gen++;
    e.bucket = b;
    b.size++;
    b.heap.push(itemOf(e));
    if (b.heap.size > 64 && b.heap.size > 4 * b.size) {
      b.heap.filter((item) => item.gen === item.e.gen && item.e.where === Where.ready && item.e.bucket === b);
    }
  }

  #toDelayed(e: Entry): void {
    e.where = Where.delayed;
    e.gen++;
    this.#delayed.push(itemOf(e));
  }

  /** Takes a task out of whatever queue it waits in (its heap items become stale). */
  #leaveQueue(e: Entry): void {
    if (e.where === Where.ready && e.bucket) e.bucket.size--;
    e.where = Where.none;
    e.bucket = undefined;
    e.gen++;
    this.#promoted.delete(e);
  }

  #leaveRunning(e: Entry): void {
    const owner = e.rec.owner;
    if (owner === undefined) return;
    // An owner's list stays when it empties: on an idle node every run would otherwise drop it and make it again.
    this.#running.get(owner)?.remove(e);
  }

  #setState(e: Entry, to: TaskState): void {
    this.#counts.add(e.rec.state, -1);
    this.#counts.add(to, 1);
    e.rec.state = to;
    if (isFinalState(to)) {
      e.fin = ++this.#finSeq;
      this.#finished.push(e);
      this.#finishedFin.push(e.fin);
    }
  }

  /** Forgets the earliest finished tasks beyond `maxFinished` (called once a verb has done its work). */
  #retain(): void {
    const c = this.#counts;
    let excess = c.succeeded + c.failed + c.cancelled + c.timed_out - this.#maxFinished;
    // Entries put back at the tail (below) are looked at again on a later call, not in this loop.
    const end = this.#finished.length;
    while (excess > 0 && this.#finishedHead < end) {
      const fin = this.#finishedFin[this.#finishedHead]!;
      const e = this.#finished[this.#finishedHead]!;
      // The slot lets go of the entry at once: an entry behind the head would otherwise stay alive (its record,
      // history and result) until the next compaction, up to `maxFinished` of them.
      this.#finished[this.#finishedHead++] = undefined;
      // A forgotten entry (purged, say, and its id perhaps enqueued again) has fin 0: no lookup of its id needed.
      if (e.fin !== fin || !isFinalState(e.rec.state)) continue;
      // A flow child whose parent has not ended is kept: the parent's run reads its outcome.
      if (e.rec.parentId !== undefined && this.#parentAwaits(e.rec.parentId)) {
        this.#finished.push(e);
        this.#finishedFin.push(fin);
        continue;
      }
      this.#forget(e);
      excess--;
    }
    if (this.#finishedHead > 1024 && this.#finishedHead * 2 > this.#finished.length) {
      this.#finished = this.#finished.slice(this.#finishedHead);
      this.#finishedFin = this.#finishedFin.slice(this.#finishedHead);
      this.#finishedHead = 0;
    }
    if (this.#order.length > 2 * this.#tasks.size + 1024) this.#order = this.#order.filter((id) => this.#tasks.has(id));
  }

  /** True when the flow parent `id` is still here and not final: its children's outcomes are still to be read. */
  #parentAwaits(id: TaskId): boolean {
    const p = this.#tasks.get(id);
    return p !== undefined && !isFinalState(p.rec.state);
  }

  #forget(e: Entry): void {
    const { rec } = e;
    e.fin = 0;
    this.#tasks.delete(rec.id);
    if (rec.key !== undefined && this.#byKey.get(rec.key) === e) this.#byKey.delete(rec.key);
    if (rec.flow) this.#children.delete(rec.id);
    if (rec.dedupKey !== undefined) {
      const k = pairKey(rec.name, rec.dedupKey);
      if (this.#dedup.get(k) === e) this.#dedup.delete(k);
    }
    this.#counts.add(rec.state, -1);
  }

  /** A task became final: its waiting flow parent counts it (and may become due, or fail and cascade). */
  #childFinal(child: Entry, at: number): void {
    const parentId = child.rec.parentId;
    if (parentId === undefined) return;
    const p = this.#tasks.get(parentId);
    if (!p) return;
    const rec = p.rec;
    const step = decideFlowStep(rec, child.rec.state);
    switch (step.kind) {
      case 'none':
        return;
      case 'count':
        rec.flow = { ...rec.flow!, pending: step.pending };
        return;
      case 'release':
        rec.flow = { ...rec.flow!, pending: 0 };
        rec.runAt = at;
        rec.updatedAt = at;
        this.#setState(p, 'queued');
        this.#record(p, 'scheduled', 'queued', at, rec.attempts, FLOW_RELEASED_REASON);
        this.#toReady(p);
        this.#changes.push({ type: 'flow.released', id: rec.id, name: rec.name, at });
        return;
      case 'fail': {
        const error = createChildFailedError(child.rec);
        rec.flow = { ...rec.flow!, pending: rec.flow!.pending - 1 };
        rec.error = error;
        rec.finishedAt = at;
        rec.updatedAt = at;
        this.#leaveQueue(p);
        this.#setState(p, 'failed');
        this.#record(p, 'scheduled', 'failed', at, rec.attempts, FLOW_FAILED_REASON, error);
        this.#changes.push({ type: 'flow.failed', id: rec.id, name: rec.name, at, error });
        this.#childFinal(p, at);
        return;
      }
    }
  }

  /** Tells listeners what the last verb changed by itself, once it is done. */
  #emitChanges(): void {
    if (this.#changes.length === 0) return;
    const changes = this.#changes;
    this.#changes = [];
    for (const change of changes) {
      for (const fn of this.#listeners) {
        try {
          fn(change);
        } catch {
          // a listener's failure must not undo or stop the store's work
        }
      }
    }
  }

  #record(
    e: Entry,
    from: TaskState | null,
    to: TaskState,
    at: number,
    attempt: number,
    reason?: string,
    error?: SerializedError,
  ): void {
    const k = e.implied;
    if (k >= 0 && reason === undefined && error === undefined && isImplied(e.rec, k, from, to, at, attempt)) {
      e.implied = k + 1;
      return;
    }
    let h = e.history;
    if (h === undefined) {
      // The first transition off the usual path: the implied ones are written out first, from the record's times
      // (none of which has changed since: each is set with its transition, and only a later one changes them).
      h = e.history = impliedHistory(e);
      e.implied = -1;
    }
    h.push(from, to, at - e.rec.createdAt, attempt, reason, error);
  }
}

/** Cells per transition in Entry.history. */
const HISTORY_WIDTH = 6;

/** Whether a transition is the `k`-th one of a task's usual life (see Entry.implied), so that its record implies it. */
function isImplied(rec: TaskRecord, k: number, from: TaskState | null, to: TaskState, at: number, attempt: number): boolean {
  switch (k) {
    case 0:
      return from === null && to === 'queued' && attempt === 0 && at === rec.createdAt;
    case 1:
      return from === 'queued' && to === 'running' && attempt === 1 && at === rec.startedAt;
    case 2:
      return from === 'running' && to === 'succeeded' && attempt === 1 && at === rec.finishedAt;
    default:
      return false;
  }
}

/** The implied transitions of an entry written out as history cells (a new array). */
function impliedHistory(e: Entry): unknown[] {
  const k = e.implied;
  if (k <= 0) return [];
  const rec = e.rec;
  const h: unknown[] = [null, 'queued', 0, 0, undefined, undefined];
  if (k >= 2) h.push('queued', 'running', rec.startedAt! - rec.createdAt, 1, undefined, undefined);
  if (k >= 3) h.push('running', 'succeeded', rec.finishedAt! - rec.createdAt, 1, undefined, undefined);
  return h;
}

/** A heap item of the task as it is now (its sort key copied: see Item). */
function itemOf(e: Entry): Item {
  const rec = e.rec;
  return { e, gen: e.gen, id: rec.id, runAt: rec.runAt, priority: rec.priority };
}

/** The copy of a record handed out: the set fields only (inside, unset ones are present as `undefined`). */
function exportRecord(rec: TaskRecord): TaskRecord {
  const out: TaskRecord = {
    id: rec.id,
    name: rec.name,
    state: rec.state,
    input: rec.input,
    priority: rec.priority,
    weight: rec.weight,
    attempts: rec.attempts,
    maxAttempts: rec.maxAttempts,
    createdAt: rec.createdAt,
    runAt: rec.runAt,
    updatedAt: rec.updatedAt,
  };
  if (rec.key !== undefined) out.key = rec.key;
  if (rec.scheduleId !== undefined) out.scheduleId = rec.scheduleId;
  if (rec.options !== undefined) out.options = rec.options;
  if (rec.group !== undefined) out.group = rec.group;
  if (rec.dedupKey !== undefined) out.dedupKey = rec.dedupKey;
  if (rec.parentId !== undefined) out.parentId = rec.parentId;
  if (rec.flow !== undefined) out.flow = rec.flow;
  if (rec.owner !== undefined) out.owner = rec.owner;
  if (rec.leaseUntil !== undefined) out.leaseUntil = rec.leaseUntil;
  if (rec.startedAt !== undefined) out.startedAt = rec.startedAt;
  if (rec.progress !== undefined) out.progress = rec.progress;
  if (rec.result !== undefined) out.result = rec.result;
  if (rec.error !== undefined) out.error = rec.error;
  if (rec.finishedAt !== undefined) out.finishedAt = rec.finishedAt;
  if (rec.children !== undefined) out.children = rec.children;
  return out;
}

/**
 * Tasks per state, as named fields. Why: `counts[state]++` with a varying state is a megamorphic keyed access
 * (a stub-cache lookup for the name, ≈60 instructions each, several per task run); a switch on the interned
 * state string is a few pointer compares.
 */
class StateCounts {
  scheduled = 0;
  queued = 0;
  running = 0;
  retrying = 0;
  succeeded = 0;
  failed = 0;
  cancelled = 0;
  timed_out = 0;

  add(state: TaskState, delta: number): void {
    switch (state) {
      case 'scheduled':
        this.scheduled += delta;
        break;
      case 'queued':
        this.queued += delta;
        break;
      case 'running':
        this.running += delta;
        break;
      case 'retrying':
        this.retrying += delta;
        break;
      case 'succeeded':
        this.succeeded += delta;
        break;
      case 'failed':
        this.failed += delta;
        break;
      case 'cancelled':
        this.cancelled += delta;
        break;
      case 'timed_out':
        this.timed_out += delta;
        break;
    }
  }

  toRecord(): Record<TaskState, number> {
    const out = {} as Record<TaskState, number>;
    for (const s of TASK_STATES) out[s] = this[s];
    return out;
  }
}
