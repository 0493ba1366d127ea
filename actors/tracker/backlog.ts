/**
 * What the tracker has taken in and not written yet, and the writes it has in flight: kept outside the tracker (one
 * per runtime, created in runtime.ts, as the executor's `ending` set) so that a tracker restarted after a crash
 * writes what its predecessor had queued and answers its callers. Without it the outcomes queued in a crashed
 * tracker were lost (their tasks came back at lease expiry and ran again), and so were the callers of `flush()`.
 *
 * One writer at a time, across a restart: the busy flags live here, so a successor does not start a write while
 * its predecessor's is in flight. A stopped tracker starts no write of its own; when its write in flight ends it
 * hands on to the live one (`wake`).
 *
 * A crash while a write was being prepared (between taking its ops from the queues and the store call) leaves
 * them in `taken`: the successor puts them back and writes them alone, and an op taken at
 * {@link CRASHES_BEFORE_GIVING_UP} crashes is given up (see Tracker.#adopt), so a poison op cannot crash-loop it.
 */
import type { TaskId } from '../../src/ids.ts';
import type { SettleOp } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import type { TrackerSettle, TrackerStopped } from './messages.ts';

/** Crashes of the tracker that an op was taken for a write at, before it is given up (the supervisor's default intensity allows 3). */
export const CRASHES_BEFORE_GIVING_UP = 2;

export interface PendingEnqueue {
  tasks: NewTask[];
  replyTo: string;
  /** A schedule slot's tasks written ahead of it (TrackerEnqueue.startAt): written alone. */
  startAt?: number;
}

const NO_SETTLES: readonly TrackerSettle[] = Object.freeze([]);

export class TrackerBacklog {
  enqueues: PendingEnqueue[] = [];
  /** Requests with `startAt` among `enqueues` (each is written alone). */
  aheadPending = 0;
  enqueueBusy = false;
  /** Enqueue requests still to be written one by one (after a refused batch, or a crash). */
  enqueueSolo = 0;
  settles: TrackerSettle[] = [];
  /** The outcomes of the settle write in flight: their leases are renewed until it ends. */
  settling: readonly TrackerSettle[] = NO_SETTLES;
  sideOps: SettleOp[] = [];
  /** The side ops of the settle write in flight. */
  inFlight: SettleOp[] = [];
  progress = new Map<TaskId, SettleOp>();
  settleBusy = false;
  /** Cancelled runs that have stopped, until their captured output is stored. */
  stops: TrackerStopped[] = [];
  flushWaiters: string[] = [];
  /** While a refused (or crashed) batch is being narrowed down: at most this many ops per write. */
  writeLimit: number | undefined;
  /** The op written alone and refused, and how many times in a row. */
  refused: { op: SettleOp; times: number } | undefined;
  /** Outcomes replaced by a failure because the store refused them. */
  readonly replaced = new WeakSet<TrackerSettle>();
  /** Ops taken from the queues for a write whose store call has not been made yet (see the header). */
  taken: { enqueues: PendingEnqueue[] } | { settles: TrackerSettle[]; side: SettleOp[] } | undefined;
  /** Crashes each op (by identity) was taken for a write at. */
  readonly crashes = new WeakMap<object, number>();
  /** The live tracker's hand-on: a stopped one calls it when its write in flight has ended. */
  wake: (() => void) | undefined;

  /** Counts a crash against `item`; true once it reached CRASHES_BEFORE_GIVING_UP. */
  crashedWith(item: object): boolean {
    const times = (this.crashes.get(item) ?? 0) + 1;
    this.crashes.set(item, times);
    return times >= CRASHES_BEFORE_GIVING_UP;
  }
}
