/**
 * The Store port, in queue terms. Memory, SQLite and PostgreSQL implement it; the rest of troupe never sees
 * SQL. One contract suite (test/store/store.contract.ts) runs against every adapter.
 *
 * Rules every adapter keeps:
 * - `enqueue` resolves only after the rows are committed (at-least-once starts here).
 * - A claim is a lease: `owner` + `leaseUntil`; the claim counts the attempt. `heartbeat` extends leases;
 *   `recoverExpired` puts tasks whose lease ran out back (or ends them when out of attempts), as
 *   `decideExpiredLease` (pick.ts) says: the first lost run of a task adds an attempt.
 * - `settle` applies many outcomes in one transaction (group commit). An outcome applies only while the row is
 *   still `running` under the same owner and attempt, so a late result never overwrites `cancelled`, and a node
 *   whose lease was taken over cannot complete the task twice.
 * - Every state change appends a `Transition` to the task's history in the same transaction.
 * - Times are epoch milliseconds.
 */
import type { SerializedError } from '../errors.ts';
import type { TaskId } from '../ids.ts';
import type { OutputCaps } from '../output-caps.ts';
import type { NewTask, OutputLine, Progress, TaskRecord, TaskState, Transition } from '../task.ts';

/** A rate limit of one task name: at most `max` starts in any `perMs` window, per name or per group of it. */
export interface RateLimit {
  max: number;
  perMs: number;
  /** `name`: all tasks of the name share the window; `group`: each group key of the name has its own. */
  by: 'name' | 'group';
}

export type Strategy = 'fifo' | 'lifo' | 'priority' | 'weighted-random';
export const STRATEGIES: readonly Strategy[] = Object.freeze(['fifo', 'lifo', 'priority', 'weighted-random']);

/** Options every adapter accepts. */
export interface StoreOptions {
  /** Order in which claims pick due tasks. @default 'fifo' */
  strategy?: Strategy;
  /** Source of randomness for `weighted-random`, in [0, 1). Tests pass a seeded one. @default Math.random */
  random?: () => number;
  /**
   * Captured lines kept per task at most, whatever an output op's `caps` say; older ones are dropped (a marker line
   * says so). @default 10000
   */
  maxOutputLines?: number;
}

export interface EnqueueResult {
  id: TaskId;
  /** false when an idempotency key matched an existing task (whose id is returned). */
  created: boolean;
  state: TaskState;
}

/** What `enqueueAndClaim` did: the enqueue's results, in order, and the tasks its claim leased. */
export interface EnqueueAndClaimResult {
  results: EnqueueResult[];
  claimed: TaskRecord[];
  /**
   * true: the claim left no task of its names due, as seen by a read that no other node's locks could hide (a
   * start in the insert whose check found nothing else due, and that started every due task of the batch). A
   * scheduler on a store shared with other nodes may then wait for a wake-up instead of claiming again.
   * Absent: not known.
   */
  drained?: boolean;
}

export interface ClaimRequest {
  /** Node identity that will hold the leases. */
  owner: string;
  /** At most this many tasks. */
  limit: number;
  leaseMs: number;
  now: number;
  /** Only tasks with these names (the names this node has registered). Omitted: any name. */
  names?: readonly string[];
  /** Never tasks with these names (paused, or at their concurrency limit). */
  exclude?: readonly string[];
  /** Per-name caps for this claim (remaining capacity of a name). A name absent here is uncapped. */
  perName?: Readonly<Record<string, number>>;
  /**
   * Per name: at most this many tasks of one group running at once, counted over the whole store (every node).
   * Tasks without a group are not limited by it.
   */
  groupLimits?: Readonly<Record<string, number>>;
  /** Per name: starts allowed per window, counted over the whole store (see claim-gate.ts). */
  rateLimits?: Readonly<Record<string, RateLimit>>;
  /** Never tasks of these groups (paused groups). */
  excludeGroups?: readonly string[];
  /**
   * Called (before the claim resolves) when it returned fewer than `limit` while a group or rate limit held tasks
   * back; `retryAt` is when a rate window frees up (absent when only running tasks block: their end frees room).
   */
  onHeldBack?: (retryAt: number | undefined) => void;
}

/**
 * A change the store made by itself as a consequence of a verb, reported after it is committed: a flow parent
 * made due or failed by its last child, a debounced task pushed back by a newer enqueue, and control changes (a
 * schedule saved or deleted, a paused set edited) that every node sharing the store must apply. The PostgreSQL
 * store reports flow and control changes through LISTEN/NOTIFY (to every node; only with `listen` on); the others
 * to their own listeners (the runtimes that share that store object).
 */
export type StoreChange =
  | { type: 'flow.released'; id: TaskId; name: string; at: number }
  | { type: 'flow.failed'; id: TaskId; name: string; at: number; error: SerializedError }
  | { type: 'debounced'; id: TaskId; name: string; at: number; runAt: number }
  /** A cancelled run on node `owner` has stopped and its output is stored (see `Store.announceStopped`). */
  | { type: 'task.stopped'; id: TaskId; name: string; at: number; owner: string }
  /** Tasks marked by `Store.awaitEnd` (on any node) reached a final state; read them for their outcome. */
  | { type: 'task.ended'; ids: TaskId[] }
  /** A schedule was saved (created, replaced, paused, resumed) or deleted: `saveSchedule`, `deleteSchedule`. */
  | { type: 'schedule.changed'; id: string }
  /** A set kept under meta `key` (paused names, paused groups) was edited: `editMetaSet`. */
  | { type: 'meta.changed'; key: string }
  /** Changes may have been missed (the PostgreSQL LISTEN connection came back): read again what is kept of them. */
  | { type: 'resync' };

/**
 * The meta key of the control version (`Store.controlVersion`). Why a key of its own: a node sharing the store with
 * others reads this one small row at each control check, and reloads its schedules and paused sets only when the
 * number moved.
 */
export const CONTROL_VERSION_KEY = 'control-version';

/** An outcome or a fact about a running task, applied by `settle` in one transaction. */
export type SettleOp =
  | { type: 'succeeded'; id: TaskId; owner: string; attempt: number; at: number; result: unknown }
  | { type: 'failed'; id: TaskId; owner: string; attempt: number; at: number; error: SerializedError }
  | { type: 'timed_out'; id: TaskId; owner: string; attempt: number; at: number; error: SerializedError }
  /** A failed attempt that will run again at `runAt` (state `retrying`). */
  | { type: 'retry'; id: TaskId; owner: string; attempt: number; at: number; runAt: number; error: SerializedError; reason?: string }
  /**
   * Gives a claimed task back without counting its attempt (shutdown, a batch whose thread was ended). It goes back
   * `queued`; with `runAt` (its own, still ahead: a schedule slot's task written before its slot) it goes back
   * `scheduled`, due at `runAt`, as it was before the claim.
   */
  | { type: 'release'; id: TaskId; owner: string; attempt: number; at: number; reason: string; runAt?: number }
  | { type: 'progress'; id: TaskId; at: number; progress: Progress }
  /**
   * Appends captured lines (their `seq` is assigned by the caller, increasing per task). The task then keeps its
   * newest lines within `caps` (its definition's `output`; src/output-caps.ts has the rule) and `maxOutputLines`:
   * older ones give way to the one marker line. Without `caps`, only `maxOutputLines` bounds it.
   */
  | { type: 'output'; id: TaskId; lines: OutputLine[]; caps?: OutputCaps | undefined };

export interface CancelResult {
  /** The state before the call; undefined when the task does not exist. */
  previous: TaskState | undefined;
  /** true when this call moved the task to `cancelled`. A final task is left as it is. */
  cancelled: boolean;
  /** The owner that was running it (so that node can end the run). */
  owner?: string;
  /**
   * The task's name, when it exists (optional for stores written against an older port; the tracker reads the task
   * then). Why: the `task.cancelled` fact is published as soon as the cancel is committed, before a reader that
   * heard of the cancel elsewhere (a notification, a poll) can see the task final and act without the fact.
   */
  name?: string;
  /**
   * A flow parent's descendants this call cancelled with it (those not final yet, whether or not the parent itself
   * was), parents before their children.
   */
  children?: CancelledChild[];
}

/** A flow parent's descendant cancelled with it (`CancelResult.children`). */
export interface CancelledChild {
  id: TaskId;
  name: string;
  previous: TaskState;
  /** The owner that was running it. */
  owner?: string;
}

export interface ListFilter {
  state?: TaskState | readonly TaskState[];
  name?: string;
  scheduleId?: string;
  /** Children of this flow parent. */
  parentId?: string;
  /** Tasks of this group. */
  group?: string;
  /** Created at or after (epoch ms). */
  since?: number;
  /** @default 50, at most 1000 */
  limit?: number;
  /** Opaque: the `nextCursor` of the previous page. */
  cursor?: string;
}

export interface ListPage {
  tasks: TaskRecord[];
  nextCursor?: string;
}

/** Tasks that ended in a time window, per final state (`Store.countFinished`). */
export interface FinishedCounts {
  succeeded: number;
  failed: number;
  timed_out: number;
  cancelled: number;
}

export interface QueueCounts {
  byState: Record<TaskState, number>;
  /**
   * Tasks due to run: every `queued` one, and each `scheduled` or `retrying` one whose `runAt` has come (a flow
   * parent waiting for its children never has). Due work that nothing starts is what `GET /api/health` calls stalled.
   */
  due: number;
  /**
   * When the longest-waiting due task became due (epoch ms): the earliest `runAt` of the due tasks. A task's `runAt`
   * is that time in every state: its enqueue, or the end of its delay or backoff, its `retry()`, its flow's release
   * (a lost lease leaves it as it was). Its `createdAt` would count a delay, a backoff or the time it lay dead as
   * waiting. A task whose `runAt` is still ahead of `now` (only a queued one written by a node whose clock runs
   * ahead) adds no age.
   */
  oldestDueAt?: number;
}

/** The states of a task that has not ended. */
export type LiveState = 'scheduled' | 'queued' | 'retrying' | 'running';

/** `QueueCounts` without the final states: what a health probe needs. */
export interface LiveCounts {
  byState: Record<LiveState, number>;
  /** As `QueueCounts.due`. */
  due: number;
  /** As `QueueCounts.oldestDueAt`. */
  oldestDueAt?: number;
}

/** A stored periodic schedule. */
export interface ScheduleRecord {
  id: string;
  task: string;
  /** Exactly one of `cron` and `everyMs`. */
  cron?: string;
  everyMs?: number;
  timezone?: string;
  input: unknown;
  overlap: 'skip' | 'queue' | 'allow';
  paused: boolean;
  /** The latest slot that produced (or deliberately skipped) a task. */
  lastSlot?: number;
  createdAt: number;
}

export interface PurgeRequest {
  /** Finished before this time (epoch ms). */
  finishedBefore: number;
  /** @default all final states */
  states?: readonly TaskState[];
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  readonly strategy: Strategy;
  /** Opens the store and migrates its schema; fails clearly on a corrupt, unwritable or newer database. */
  open(): Promise<void>;
  /**
   * Inserts tasks in one transaction, honouring idempotency keys and dedup modes (also against each other in the
   * batch). A flow's parent comes before its children in the batch; when the parent is not created (its key
   * matched), its children are not either and answer with the existing parent.
   */
  enqueue(tasks: readonly NewTask[]): Promise<EnqueueResult[]>;
  /**
   * Leases up to `limit` due tasks in strategy order: state → running, attempts + 1, startedAt = now, within the
   * request's name, group and rate limits. A claimed flow parent comes with its children's outcomes (`children`).
   */
  claim(request: ClaimRequest): Promise<TaskRecord[]>;
  /**
   * `enqueue(tasks)` then `claim(request)`: exactly what the two calls would do one after the other (the claim
   * takes due tasks in strategy order, new or not, within the request's limits), in one transaction (memory,
   * SQLite) or, on PostgreSQL, one statement when the claim takes only tasks of the batch (else the two, in turn).
   * The SQL stores write the tasks such a claim takes `running` in the insert itself (src/store/start-plan.ts).
   * An idle node uses it so that a new task starts without a second write and a second trip through the actors.
   * Optional: a store without it is enqueued to and claimed from separately.
   */
  enqueueAndClaim?(tasks: readonly NewTask[], request: ClaimRequest): Promise<EnqueueAndClaimResult>;
  /**
   * Whether `enqueueAndClaim` can make a claim like `request` in the enqueue's own write. Where it cannot, it would
   * make the claim as a second statement before the enqueue answers: the scheduler then offers no claim to the
   * enqueue, and its wake-up claims instead. Absent: always.
   */
  claimsInEnqueue?(request: Omit<ClaimRequest, 'now'>): boolean;
  /**
   * Extends the leases of `owner`'s running tasks (all of them, or `ids`) to `leaseUntil`; a lease already longer
   * is kept. Returns how many tasks it found running under `owner`. The runtime always names `ids` (the tasks its
   * process holds, a few hundred at most, in one statement): an owner is a node id, which a process restarted after
   * a crash may reuse, and renewing all of its tasks would keep alive the leases of those the crashed process held.
   */
  heartbeat(owner: string, leaseUntil: number, ids?: readonly TaskId[]): Promise<number>;
  /** Applies outcomes in one transaction; `applied[i]` says whether op i changed the task. */
  settle(ops: readonly SettleOp[]): Promise<boolean[]>;
  /**
   * Cancels a task that is not final, and, when it is a flow parent, its descendants that are not final (each with
   * `flowCancelledReason(id)`), in one transaction.
   */
  cancel(id: TaskId, at: number, reason?: string): Promise<CancelResult>;
  /** Puts a dead letter (failed, timed_out, cancelled) back to `queued` with a fresh attempt budget. */
  retry(id: TaskId, at: number): Promise<TaskRecord | undefined>;
  /**
   * Running tasks whose lease ended before `now` go back `queued` or end `failed` when out of attempts; the first
   * lost run of a task adds an attempt (`decideExpiredLease`).
   */
  recoverExpired(now: number): Promise<TaskRecord[]>;
  get(id: TaskId): Promise<TaskRecord | undefined>;
  /**
   * The state of each task of `ids` that exists (one read for many). The runtime reads it for the tasks its callers
   * wait for, which another node may run (a node hears only its own outcomes). Absent: `get` per id.
   */
  states?(ids: readonly TaskId[]): Promise<Map<TaskId, TaskState>>;
  history(id: TaskId): Promise<Transition[]>;
  /** Captured lines with `seq > after`, oldest first. */
  output(id: TaskId, after?: number, limit?: number): Promise<OutputLine[]>;
  /** Newest first. */
  list(filter?: ListFilter): Promise<ListPage>;
  /** Tasks per state, and the due ones as of `now`. Cheap: health probes and metric scrapes read it each time. */
  counts(now: number): Promise<QueueCounts>;
  /**
   * How many tasks are in a final state with `from <= finishedAt <= to` (both ends included), per final state: one
   * aggregate read, exact however many tasks there are (the SQL stores count through their index on `finished_at`).
   * A task that is not final is never counted, whatever its `finishedAt`.
   * Optional: `log-statistics` scans `list` pages of a store without it, and its counts may then stop at its scan
   * limit.
   */
  countFinished?(from: number, to: number): Promise<FinishedCounts>;
  /**
   * `counts` without the final states, read on every `GET /api/health`: its cost follows the tasks that have not
   * ended, not the whole table. Why: a count per state reads every row on PostgreSQL (180–260 ms at 1,000,000
   * tasks here), and finished tasks stay until `cleanup-runs` deletes them. Optional: without it, `counts`.
   */
  liveCounts?(now: number): Promise<LiveCounts>;
  /**
   * Earliest `runAt` among tasks waiting for their time (scheduled or retrying), to arm one timer; with `after`, the
   * earliest one later than it. Why `after`: a waiting task that was due at a claim and not taken (its name or group
   * is paused, or this node does not run its name) must not wake the node again at once, over and over.
   */
  nextRunAt(after?: number): Promise<number | undefined>;
  /**
   * Deletes final tasks (with history and output) finished before the threshold, except flow children whose parent
   * has not ended (its run reads their outcomes). Returns how many.
   */
  purge(request: PurgeRequest): Promise<number>;
  /**
   * Creates or replaces a schedule (never moving its stored `lastSlot` back). Control state: the built-in stores
   * increase the control version in the same write and report a `schedule.changed` change (PostgreSQL: to every
   * node, by NOTIFY), so every node sharing the store applies it.
   */
  saveSchedule(schedule: ScheduleRecord): Promise<void>;
  getSchedule(id: string): Promise<ScheduleRecord | undefined>;
  listSchedules(): Promise<ScheduleRecord[]>;
  /** Deletes a schedule; when it existed, a control change as `saveSchedule` says. */
  deleteSchedule(id: string): Promise<boolean>;
  /** Records that `slot` of a schedule was handled, only if it is newer than the stored one (compare-and-set). */
  markScheduleSlot(id: string, slot: number): Promise<boolean>;
  /** Small persistent settings (paused names and the like). */
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string | undefined): Promise<void>;
  /**
   * Adds (`present`) or removes one member of the set of strings kept as a JSON array under meta `key`, in one
   * atomic write, and resolves with the set as stored after it. Why: nodes edit the paused names and groups at the
   * same time; a read-modify-write of the whole set from memory lost the other node's edit. A control change: the
   * control version moves in the same write, and a `meta.changed` change is reported (PostgreSQL: to every node).
   * Optional: without it the runtime reads the stored set, edits it and writes it back (two calls: two nodes
   * editing it in the same moment may still lose one edit).
   */
  editMetaSet?(key: string, member: string, present: boolean): Promise<string[]>;
  /**
   * A number that every control change (`saveSchedule`, `deleteSchedule`, `editMetaSet`) moves, read in one small
   * read ({@link CONTROL_VERSION_KEY} in meta). A node sharing the store reads it at each control check and reloads
   * its schedules and paused sets only when it moved: the safety net under the change notifications (missed while
   * a LISTEN connection was down), and the only way for processes sharing one SQLite file to hear of them.
   * Optional: without it a node hears of other nodes' control changes only through `onChange`, or at its start.
   */
  controlVersion?(): Promise<number>;
  /**
   * Subscribes to the changes the store makes by itself (see `StoreChange`). Returns an unsubscribe function.
   * Optional for stores written before flows and dedup; the three built-in stores have it.
   */
  onChange?(listener: (change: StoreChange) => void): () => void;
  /**
   * Tells every node that a cancelled run of `owner` has stopped and its captured output is stored (its owner's
   * `task.stopped`), as a `task.stopped` change: followers of the task on other nodes end after its last lines.
   * Optional: the PostgreSQL store sends it through NOTIFY; without it, followers elsewhere end at the cancel.
   */
  announceStopped?(stop: { id: TaskId; name: string; at: number; owner: string }): Promise<void>;
  /**
   * Marks the tasks of `ids` (awaited by a caller on node `owner`) that another node is running or that any node
   * may still claim (queued, scheduled, retrying), so that whatever ends one later (the settle of whichever node
   * ran it, after any retries; a cancel; a lease recovery that fails it) tells every node, as a `task.ended`
   * change, when it commits the end. The mark stays through claims, retries and releases. Returns the ids it
   * marked. Not one `owner` runs (its end is heard here anyway), nor one final or gone, nor one whose row another
   * transaction holds at that moment (a settle or a claim under way; marked at a later read). The runtime calls it
   * at its first read of a wait, not at enqueue, so a task a node runs at once for its own caller costs no write.
   * Optional: the PostgreSQL store marks and notifies; without it, a node learns that a task it awaits ended
   * elsewhere at its next read of it (`states`).
   */
  awaitEnd?(ids: readonly TaskId[], owner: string): Promise<Set<TaskId>>;
  /**
   * Why a task input or result cannot be stored as it is (not JSON; text the database refuses), or undefined.
   * With `input`, also what JSON would change (a Map or Set, NaN or ±Infinity; see json-value.ts).
   * The runtime refuses such an input at enqueue and fails a task with such a result (permanently, with the
   * reason), so no write batch carries a value that would fail it. Absent: the store keeps values as they are
   * (the memory store).
   */
  unstorable?(value: unknown, input?: boolean): string | undefined;
  close(): Promise<void>;
}

/** Which transition a settle op writes. */
export function settleTarget(op: SettleOp): TaskState | undefined {
  switch (op.type) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return 'failed';
    case 'timed_out':
      return 'timed_out';
    case 'retry':
      return 'retrying';
    case 'release':
      return op.runAt === undefined ? 'queued' : 'scheduled';
    default:
      return undefined;
  }
}
