/** scheduler.* messages: what runs next. */
import type { ActorAddress } from '../../src/ids.ts';
import type { ScheduleRecord } from '../../src/store/store.ts';

/** Sent when there may be new due work (an enqueue, a retry, a wake-up from another node). */
export interface SchedulerWake { type: 'scheduler.wake'; reason: string }
/** Sent by the executor: it has `slots` free (and per-name room); answered by one `executor.dispatch`. */
export interface SchedulerDemand { type: 'scheduler.demand'; slots: number; perName: Record<string, number>; exclude: string[] }
/**
 * The tracker used the claim offer `serial` with an enqueue: `claimed` tasks went to the executor. `retryAt`/`heldBack`
 * as a claim's `onHeldBack` reports them (a group or rate limit held due tasks back). `drained`: the store said the
 * claim left nothing of its names due (`EnqueueAndClaimResult.drained`).
 */
export interface SchedulerOfferTaken { type: 'scheduler.offer-taken'; serial: number; claimed: number; heldBack: boolean; retryAt?: number; drained?: true }
/** Sent when a schedule was created or changed (pause, resume). */
export interface SchedulerScheduleSaved { type: 'scheduler.schedule-saved'; schedule: ScheduleRecord }
/** Sent when a schedule was deleted. */
export interface SchedulerScheduleRemoved { type: 'scheduler.schedule-removed'; id: string }
/** Asks the scheduler to fire a schedule now (answered with a reply carrying the task id). */
export interface SchedulerTrigger { type: 'scheduler.trigger'; id: string; replyTo: ActorAddress }
/**
 * Pauses or resumes claiming of one task name (its queue is kept), on this node at once and in the store for every
 * node; `replyTo` is answered once the store has it (or with the store's error).
 */
export interface SchedulerPauseName { type: 'scheduler.pause-name'; name: string; paused: boolean; replyTo?: ActorAddress }
/** Pauses or resumes claiming of the tasks of one group key, whatever their name (their queue is kept); as pause-name. */
export interface SchedulerPauseGroup { type: 'scheduler.pause-group'; group: string; paused: boolean; replyTo?: ActorAddress }
/**
 * Control state changed in the store, maybe on another node (a `StoreChange`): one schedule (`schedule`, by `id`),
 * the paused names and groups (`paused`), or anything that may have been missed (`all`). The scheduler reads it
 * again and applies it.
 */
export interface SchedulerControlChanged { type: 'scheduler.control-changed'; what: 'schedule' | 'paused' | 'all'; id?: string }
/**
 * Holds claiming of `names` on this node only (replacing the names held before; none: released), kept nowhere and
 * told to no other node: resource-aware admission sheds this node's load, not the cluster's.
 */
export interface SchedulerHoldNames { type: 'scheduler.hold-names'; names: string[] }
/** Stops claiming for good (shutdown). */
export interface SchedulerStop { type: 'scheduler.stop' }

export type SchedulerMessage =
  | SchedulerWake
  | SchedulerDemand
  | SchedulerOfferTaken
  | SchedulerScheduleSaved
  | SchedulerScheduleRemoved
  | SchedulerTrigger
  | SchedulerPauseName
  | SchedulerPauseGroup
  | SchedulerControlChanged
  | SchedulerHoldNames
  | SchedulerStop;

export const createSchedulerWake = (reason: string): SchedulerWake => ({ type: 'scheduler.wake', reason });
export const createSchedulerDemand = (slots: number, perName: Record<string, number>, exclude: string[]): SchedulerDemand => ({ type: 'scheduler.demand', slots, perName, exclude });

/** The claim part of a demand. */
export interface DemandShape {
  slots: number;
  perName: Record<string, number>;
  exclude: readonly string[];
}

/**
 * The demand that stands after an enqueue took `claimed` tasks with the scheduler's standing offer: the same demand
 * less those slots, when slots remain and no per-name room or exclusion is in play (those change with the names
 * of the tasks claimed); otherwise none, and the executor sends a new one. The executor and the scheduler both
 * apply this rule to their copy of the outstanding demand, so an idle node's run costs no demand message.
 */
export function demandAfterOffer(demand: DemandShape, claimed: number): { slots: number; perName: Record<string, number>; exclude: string[] } | undefined {
  if (demand.slots <= claimed || demand.exclude.length > 0) return undefined;
  for (const _ in demand.perName) return undefined;
  return { slots: demand.slots - claimed, perName: demand.perName, exclude: demand.exclude as string[] };
}

/** What of an offer's request decides whether it can stand after a use. */
export interface OfferedClaim {
  exclude?: readonly string[];
  perName?: Readonly<Record<string, number>>;
}

/**
 * How many tasks a claim offer with `limit` left may still take after an enqueue took `claimed` with it: the
 * tracker keeps the offer standing with that limit, so the next enqueue claims without a new offer from the
 * scheduler (which applies the same rule to know what stands). 0 — the offer is spent — when nothing was taken
 * (the scheduler offers again), when nothing is left, or when per-name room or exclusions are in play (they change
 * with the names claimed). Taken together the claims of one offer never exceed its limit, which is within the
 * executor's free slots.
 */
export function offerLeft(limit: number, request: OfferedClaim, claimed: number): number {
  const left = limit - claimed;
  if (claimed === 0 || left <= 0 || (request.exclude?.length ?? 0) > 0) return 0;
  for (const _ in request.perName) return 0;
  return left;
}
