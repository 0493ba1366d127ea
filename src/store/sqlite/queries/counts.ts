/** counts: tasks per state (kept in `task_counts`), and the creation time of the oldest task waiting to run. */
import type Database from 'better-sqlite3';
import { TASK_STATES, type TaskState } from '../../../task.ts';
import type { QueueCounts } from '../../store.ts';

/** Why: the numbers health checks and metrics read, without scanning the tasks. */
export function prepareCounts(db: Database.Database, dueIndex: string): (now: number) => QueueCounts {
  const byState = db.prepare<[], { state: TaskState; n: number }>('SELECT state, n FROM task_counts');
  const oldestDue = db.prepare<[number], { at: number | null }>(
    `SELECT MIN(created_at) AS at FROM tasks INDEXED BY ${dueIndex}
     WHERE state IN ('queued', 'scheduled', 'retrying') AND run_at <= ?`,
  );
  return (now) => {
    const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const row of byState.all()) counts[row.state] = row.n;
    const at = oldestDue.get(now)?.at ?? null;
    return at === null ? { byState: counts } : { byState: counts, oldestDueAt: at };
  };
}
