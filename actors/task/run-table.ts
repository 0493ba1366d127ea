/**
 * The runs in progress on one node. Not a `Map` by id: a map that takes a run in and out for every task (a busy
 * runtime does so tens of thousands of times a second) was measured to keep ≈350 bytes per run alive through two
 * scavenges, into the old generation (21 MB promoted for 60,000 inline no-ops on SQLite, against 1.7 MB with this
 * table), and the old generation then grows by that until a full collection, which is most of a deep drain's peak
 * RSS. Each run knows its index, so adding and removing are O(1); a lookup by id (cancel, abort) scans the runs,
 * of which there are at most the concurrency.
 */
import { IndexedList } from '../../src/indexed-list.ts';
import type { TaskActor } from './task-actor.ts';

export class RunTable {
  readonly #runs = new IndexedList<TaskActor>();

  get size(): number {
    return this.#runs.size;
  }

  add(run: TaskActor): void {
    this.#runs.add(run);
  }

  /** Whether `run` is in the table (false once removed). */
  has(run: TaskActor): boolean {
    return this.#runs.has(run);
  }

  /** Removes `run`; false when it was not in the table. */
  remove(run: TaskActor): boolean {
    return this.#runs.remove(run);
  }

  /** The run of task `id`, if it is in progress here. */
  get(id: string): TaskActor | undefined {
    for (const run of this.#runs.values()) if (run.id === id) return run;
    return undefined;
  }

  /** A copy: callers may end runs (and so remove them) while they iterate. */
  list(): TaskActor[] {
    return this.#runs.slice();
  }
}
