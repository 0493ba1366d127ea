/**
 * The claimed tasks of a dispatch (`executor.dispatch`) that the executor has not taken in yet: kept outside the
 * executor (one per runtime, created in runtime.ts, as the executor's `ending` set and the tracker's backlog) so that
 * an executor restarted after a dispatch crashed its predecessor gives them back to the queue at once (a release:
 * the attempt is not counted, `executor stopped` in the history). Without it they stayed claimed and leased to this
 * node, known to no executor, and came back only when their lease ended, their attempt counted.
 *
 * A task is taken in once the executor holds it where its own stop gives it back: started (or holding its slot,
 * #hold), buffered, being checked (#recheck), or already given back or settled. A task whose start crashed the
 * executor (its run made, its code never started) is left here by the crashed executor's stop(), which drops the run.
 *
 * The crash is blamed on the task being started when it came (`taking`); when it came while the whole dispatch was
 * being read (its filters), on every task left. A task blamed at {@link CRASHES_BEFORE_GIVING_UP} crashes is not
 * given back (see {@link DispatchIntake.takeOver}).
 */
import type { TaskId } from '../../src/ids.ts';
import type { TaskRecord } from '../../src/task.ts';
import { CRASHES_BEFORE_GIVING_UP } from '../tracker/backlog.ts';

export { CRASHES_BEFORE_GIVING_UP };

/** Crash counts kept for at most this many tasks (the oldest are forgotten first). */
const CRASHES_KEPT = 1000;

/** A task left by a crashed dispatch, as the successor reads it. */
export interface LeftTask {
  task: TaskRecord;
  /** The tracker was told it started (`tracker.started`): its release is not `held`. */
  counted: boolean;
}

export class DispatchIntake {
  /** Tasks of the dispatch in hand that are not taken in yet (by identity: a claim makes new records). */
  readonly pending = new Set<TaskRecord>();
  /** The task whose take-in threw (set by the crashed executor), if the crash came while one was being taken in. */
  taking: TaskRecord | undefined;
  /** Tasks of `pending` whose start told the tracker before the crash (the crashed executor's stop() sets them). */
  readonly counted = new Set<TaskRecord>();
  /** Crashes each task (by id: it comes back in a new record) was blamed for. */
  readonly #crashes = new Map<TaskId, number>();

  /**
   * Takes what a crashed predecessor left: counts the crash against the blamed tasks and empties the intake. Returns
   * the tasks to give back, and those given up: blamed at CRASHES_BEFORE_GIVING_UP crashes, they are left to their
   * lease. Why not failed with a coded error instead: the blame may fall on tasks that only shared the dispatch (a
   * crash while the dispatch as a whole was read blames every task of it), and a failure would end work that did
   * nothing wrong; left to its lease a task comes back as it did before this intake existed (its attempt counted),
   * and a task that does crash the executor uses up its attempts one lease at a time and is dead-lettered, as one that
   * kills its process is. The tracker gives up a poison op the same way. A task's count is kept across its claims, so
   * once given up it crashes one executor per lease, not two (the supervisor allows 3 restarts in 5 s). A task
   * whose id cannot be read (a malformed record) is given up too.
   */
  takeOver(): { back: LeftTask[]; givenUp: Array<{ task: TaskRecord; crashes: number }> } {
    const back: LeftTask[] = [];
    const givenUp: Array<{ task: TaskRecord; crashes: number }> = [];
    if (this.pending.size === 0) return { back, givenUp };
    const taking = this.taking !== undefined && this.pending.has(this.taking) ? this.taking : undefined;
    for (const task of this.pending) {
      const counted = this.counted.has(task);
      let id: TaskId | undefined;
      try {
        id = task.id;
      } catch {
        givenUp.push({ task, crashes: 0 });
        continue;
      }
      if (taking !== undefined && task !== taking) {
        back.push({ task, counted });
        continue;
      }
      const crashes = (this.#crashes.get(id) ?? 0) + 1;
      this.#crashes.delete(id);
      this.#crashes.set(id, crashes);
      if (crashes >= CRASHES_BEFORE_GIVING_UP) givenUp.push({ task, crashes });
      else back.push({ task, counted });
    }
    for (const old of this.#crashes.keys()) {
      if (this.#crashes.size <= CRASHES_KEPT) break;
      this.#crashes.delete(old);
    }
    this.pending.clear();
    this.counted.clear();
    this.taking = undefined;
    return { back, givenUp };
  }
}
