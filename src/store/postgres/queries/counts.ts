/** counts: tasks per state, the number of tasks due to run, and when the longest-waiting one became due (its `run_at`). */
import type { LiveCounts, LiveState, QueueCounts } from '../../store.ts';
import { TASK_STATES, type TaskState } from '../../../task.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** The due waiting tasks and the oldest due time, as two sub-selects ($1: now). */
function dueColumns(n: PgNames): string {
  return `(SELECT count(*)::int FROM ${n.tasks} WHERE state IN ('scheduled', 'retrying') AND run_at <= $1) AS due_waiting,
            (SELECT min(run_at) FROM ${n.tasks} WHERE state IN ('queued', 'scheduled', 'retrying') AND run_at <= $1) AS oldest`;
}

/** One row: the count per state (a JSON object), the due waiting tasks and the oldest due time ($1: now). */
export function countsSql(n: PgNames): string {
  return `SELECT (SELECT json_object_agg(state, n) FROM (SELECT state, count(*)::int AS n FROM ${n.tasks} GROUP BY state) AS s) AS by_state,
            ${dueColumns(n)}`;
}

/**
 * `countsSql` for the states before the end only. Each predicate is the one of a partial index, so the counts read
 * `tasks_due_time` (the three claimable states) and `tasks_running`, and the rows they point to, never the
 * finished ones.
 */
export function liveCountsSql(n: PgNames): string {
  return `SELECT (SELECT json_object_agg(state, n) FROM (
              SELECT state, count(*)::int AS n FROM ${n.tasks} WHERE state IN ('queued', 'scheduled', 'retrying') GROUP BY state
              UNION ALL SELECT 'running', count(*)::int FROM ${n.tasks} WHERE state = 'running'
            ) AS s) AS by_state,
            ${dueColumns(n)}`;
}

interface CountsRow {
  by_state: Record<string, number> | null;
  due_waiting: number;
  oldest: number | null;
}

/**
 * Why: queue depth and lag for metrics and the dashboard. The due waiting tasks are a range of `tasks_waiting` (a
 * waiting flow parent's `run_at` is never reached) and the oldest due time the first entry of `tasks_due_time`, so
 * neither adds a pass over the table to the count per state.
 */
export async function counts(db: Queryable, n: PgNames, now: number): Promise<QueueCounts> {
  const { rows } = await run<CountsRow>(db, countsSql(n), [now]);
  const byState = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
  return withDue(byState, rows[0]!);
}

/** Why: health probes, on every probe; their cost follows the tasks not yet ended, however many have. */
export async function liveCounts(db: Queryable, n: PgNames, now: number): Promise<LiveCounts> {
  const { rows } = await run<CountsRow>(db, liveCountsSql(n), [now]);
  const byState: Record<LiveState, number> = { scheduled: 0, queued: 0, retrying: 0, running: 0 };
  return withDue(byState, rows[0]!);
}

function withDue<S extends Record<string, number> & { queued: number }>(byState: S, row: CountsRow): { byState: S; due: number; oldestDueAt?: number } {
  for (const [state, count] of Object.entries(row.by_state ?? {})) (byState as Record<string, number>)[state] = count;
  const due = byState.queued + row.due_waiting;
  return row.oldest === null ? { byState, due } : { byState, due, oldestDueAt: row.oldest };
}
