/** scheduler.* messages: what runs next. */
import type { ActorAddress } from '../../src/ids.ts';
import type { ScheduleRecord } from '../../src/store/store.ts';

/** Sent when there may be new due work (an enqueue, a retry, a wake-up from another node). */
export interface SchedulerWake { type: 'scheduler.wake'; reason: string }
/** Sent by the executor: it has `slots` free (and per-name room); answered by one `executor.dispatch`. */
export interface SchedulerDemand { type: 'scheduler.demand'; slots: number; perName: Record<string, number>; exclude: string[] }
/**
 * The tracker used the claim offer `serial` with an enqueue: `claimed` tasks went to the executor. `retryAt`/`heldBack`
 * as a claim's `onHeldBack` reports them (a group or rate limit held due tasks back).
 */
export interface SchedulerOfferTaken { type: 'scheduler.offer-taken'; serial: number; claimed: number; heldBack: boolean; retryAt?: number }
/** Sent when a schedule was created or changed (pause, resume). */
export interface SchedulerScheduleSaved { type: 'scheduler.schedule-saved'; schedule: ScheduleRecord }
/** Sent when a schedule was deleted. */
export interface SchedulerScheduleRemoved { type: 'scheduler.schedule-removed'; id: string }
/** Asks the scheduler to fire a schedule now (answered with a reply carrying the task id). */
export interface SchedulerTrigger { type: 'scheduler.trigger'; id: string; replyTo: ActorAddress }
/** Pauses or resumes claiming of one task name (its queue is kept). */
export interface SchedulerPauseName { type: 'scheduler.pause-name'; name: string; paused: boolean }
/** Pauses or resumes claiming of the tasks of one group key, whatever their name (their queue is kept). */
export interface SchedulerPauseGroup { type: 'scheduler.pause-group'; group: string; paused: boolean }
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
  | SchedulerStop;

export const createSchedulerWake = (reason: string): SchedulerWake => ({ type: 'scheduler.wake', reason });
export const createSchedulerDemand = (slots: number, perName: Record<string, number>, exclude: string[]): SchedulerDemand => ({ type: 'scheduler.demand', slots, perName, exclude });
