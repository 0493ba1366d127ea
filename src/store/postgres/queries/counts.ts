/** counts: tasks per state, the number of tasks due to run, and when the longest-waiting one became due (its `run_at`). */
import type { QueueCounts } from '../../store.ts';
import { TASK_STATES, type TaskState } from '../../../task.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** One row: the count per state (a JSON object), the due waiting tasks and the oldest due time ($1: now). */
export function countsSql(n: PgNames): string {
  return `SELECT (SELECT json_object_agg(state, n) FROM (SELECT state, count(*)::int AS n FROM ${n.tasks} GROUP BY state) AS s) AS by_state,
            (SELECT count(*)::int FROM ${n.tasks} WHERE state IN ('scheduled', 'retrying') AND run_at <= $1) AS due_waiting,
            (SELECT min(run_at) FROM ${n.tasks} WHERE state IN ('queued', 'scheduled', 'retrying') AND run_at <= $1) AS oldest`;
}

/**
 * Why: queue depth and lag for health checks and metrics, on every probe and scrape. The due waiting tasks are a
 * range of `tasks_waiting` (a waiting flow parent's `run_at` is never reached) and the oldest due time the first
 * entry of `tasks_due_time`, so neither adds a pass over the table to the count per state.
 */
export async function counts(db: Queryable, n: PgNames, now: number): Promise<QueueCounts> {
  const { rows } = await run<{ by_state: Record<string, number> | null; due_waiting: number; oldest: number | null }>(db, countsSql(n), [now]);
  const row = rows[0]!;
  const byState = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
  for (const [state, count] of Object.entries(row.by_state ?? {})) byState[state as TaskState] = count;
  const due = byState.queued + row.due_waiting;
  return row.oldest === null ? { byState, due } : { byState, due, oldestDueAt: row.oldest };
}
