/** tracker.* messages: the source of truth for task state; every change goes through the store here. */
import type { SerializedError } from '../../src/errors.ts';
import type { ActorAddress, TaskId } from '../../src/ids.ts';
import type { OutputCaps } from '../../src/output-caps.ts';
import type { ClaimRequest, ListFilter, SettleOp } from '../../src/store/store.ts';
import type { NewTask, OutputStream, Progress } from '../../src/task.ts';

/**
 * Persists new tasks (batched with other enqueues); answered with the enqueue results.
 * `startAt`: the tasks are a schedule slot's, written ahead of it. The write is not batched with other requests,
 * the standing claim offer (if any) claims as of `startAt`, and what it claims waits in the executor until then.
 */
export interface TrackerEnqueue { type: 'tracker.enqueue'; tasks: NewTask[]; replyTo: ActorAddress; startAt?: number }
/** An attempt started (the claim already recorded it): publish the fact. */
export interface TrackerStarted { type: 'tracker.started'; id: TaskId; name: string; attempt: number; owner: string; at: number }
/**
 * An outcome to persist (group commit) and then publish. `held`: the task never started here (a release of a
 * claimed task from the executor's buffer), so no running count ends with it.
 */
export interface TrackerSettle { type: 'tracker.settle'; op: SettleOp; name: string; startedAt: number; held?: boolean }
/**
 * Whether claimed tasks wait in the executor, in its buffer or for their schedule slot: while any wait or run, the
 * tracker renews leases (it asks the executor which tasks it holds, `executor.leases`).
 */
export interface TrackerHeld { type: 'tracker.held'; holding: boolean }
/**
 * The claimed tasks the executor holds (the answer to `executor.leases`): the tracker renews their leases, and those
 * of the tasks whose outcome it has not written yet. It comes through the tracker's mailbox, after every outcome
 * the executor sent before it, so a task that ended before the answer is among the tracker's pending outcomes.
 */
export interface TrackerLeases { type: 'tracker.leases'; ids: TaskId[] }
/** Progress reported by running code. */
export interface TrackerProgress { type: 'tracker.progress'; id: TaskId; name: string; progress: Progress; at: number }
/**
 * Output lines of one stream captured together (a pipe chunk, or one log line), oldest first. `caps`: what the task
 * keeps (its definition's `output`), carried to the store with the lines.
 */
export interface TrackerOutput { type: 'tracker.output'; id: TaskId; name: string; stream: OutputStream; texts: readonly string[]; at: number; caps: OutputCaps | undefined }
/**
 * A cancelled task that this node held has stopped (its run ended, or it was dropped before it started): the
 * tracker publishes `task.stopped` once the output lines captured before this message are stored.
 */
export interface TrackerStopped { type: 'tracker.stopped'; id: TaskId; name: string; at: number }
/** Cancels a task; answered with the store's CancelResult. */
export interface TrackerCancel { type: 'tracker.cancel'; id: TaskId; reason: string; replyTo: ActorAddress }
/** Puts a dead letter back; answered with the task record or undefined. */
export interface TrackerRetry { type: 'tracker.retry'; id: TaskId; replyTo: ActorAddress }
/** Reads state; answered with the value. */
export interface TrackerQuery { type: 'tracker.query'; query: TrackerQueryKind; replyTo: ActorAddress }
/**
 * The scheduler's standing offer while it waits for work with free slots (undefined: withdrawn). The tracker writes
 * its next enqueue batch holding a due task together with this claim (`Store.enqueueAndClaim`), hands what it
 * claimed to the executor and answers with `scheduler.offer-taken`. `request` lacks `now` (the time of the write).
 */
export interface TrackerClaimOffer { type: 'tracker.claim-offer'; offer: ClaimOffer | undefined }
export interface ClaimOffer { serial: number; request: Omit<ClaimRequest, 'now' | 'onHeldBack'> }
/** Writes everything pending; answered when committed. */
export interface TrackerFlush { type: 'tracker.flush'; replyTo: ActorAddress }

export type TrackerQueryKind =
  | { kind: 'get'; id: TaskId; history?: boolean }
  | { kind: 'list'; filter: ListFilter }
  | { kind: 'output'; id: TaskId; after?: number; limit?: number }
  /** `live`: the states before the end only (Store.liveCounts, when the store has it). */
  | { kind: 'counts'; live?: boolean };

export type TrackerMessage =
  | TrackerEnqueue
  | TrackerStarted
  | TrackerSettle
  | TrackerHeld
  | TrackerLeases
  | TrackerProgress
  | TrackerOutput
  | TrackerStopped
  | TrackerCancel
  | TrackerRetry
  | TrackerQuery
  | TrackerClaimOffer
  | TrackerFlush;

/** The answer to any request made with `ask`. */
export type Reply = { type: 'reply'; ok: true; value: unknown } | { type: 'reply'; ok: false; error: SerializedError };

export const createTrackerLeases = (ids: TaskId[]): TrackerLeases => ({ type: 'tracker.leases', ids });
export const createReply = (value: unknown): Reply => ({ type: 'reply', ok: true, value });
export const createErrorReply = (error: SerializedError): Reply => ({ type: 'reply', ok: false, error });
