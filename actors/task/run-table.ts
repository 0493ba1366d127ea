/**
 * The runs in progress on one node. Not a `Map` by id: a map that takes a run in and out for every task (a busy
 * runtime does so tens of thousands of times a second) was measured to keep ≈350 bytes per run alive through two
 * scavenges, into the old generation (21 MB promoted for 60,000 inline no-ops on SQLite, against 1.7 MB with this
 * table), and the old generation then grows by that until a full collection, which is most of a deep drain's peak
 * RSS. Each run knows its slot, so adding and removing are O(1); a lookup by id (cancel, abort) scans the slots,
 * of which there are at most the concurrency.
 */
import type { TaskActor } from './task-actor.ts';

export class RunTable {
  readonly #runs: TaskActor[] = [];

  get size(): number {
    return this.#runs.length;
  }

  add(run: TaskActor): void {
    run.slot = this.#runs.length;
    this.#runs.push(run);
  }

  /** Whether `run` is in the table (false once removed). */
  has(run: TaskActor): boolean {
    return this.#runs[run.slot] === run;
  }

  /** Removes `run`; false when it was not in the table. */
  remove(run: TaskActor): boolean {
    const i = run.slot;
    if (this.#runs[i] !== run) return false;
    const last = this.#runs.pop()!;
    if (last !== run) {
      this.#runs[i] = last;
      last.slot = i;
    }
    run.slot = -1;
    return true;
  }

  /** The run of task `id`, if it is in progress here. */
  get(id: string): TaskActor | undefined {
    for (const run of this.#runs) if (run.id === id) return run;
    return undefined;
  }

  /** A copy: callers may end runs (and so remove them) while they iterate. */
  list(): TaskActor[] {
    return this.#runs.slice();
  }
}
