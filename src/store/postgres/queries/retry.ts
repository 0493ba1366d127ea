/** retry: puts a dead letter (failed, timed_out, cancelled) back to `queued` with a fresh attempt budget. */
import type { TaskId } from '../../../ids.ts';
import type { TaskRecord } from '../../../task.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { lineSql } from '../history-line.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

function retrySql(n: PgNames): string {
  return `
    WITH old AS (
      SELECT id, state, parent_id FROM ${n.tasks} WHERE id = $1 AND state IN ('failed', 'timed_out', 'cancelled') FOR UPDATE
    ), u AS (
      UPDATE ${n.tasks} AS t SET state = 'queued', attempts = 0, run_at = $2, updated_at = $2, result = NULL,
             error = NULL, finished_at = NULL, started_at = NULL, owner = NULL, lease_until = NULL, progress = NULL,
             history = t.history || ${lineSql({ from: { sql: 'old.state' }, to: 'queued', at: '$2', attempt: '0', reason: 'retried' })}
      FROM old WHERE t.id = old.id
      RETURNING ${TASK_COLUMNS}
    ), parent AS (
      -- A flow child not final again is pending again in its parent (src/flow.ts: the count stays true).
      UPDATE ${n.tasks} AS p SET flow_pending = p.flow_pending + 1
      FROM old WHERE p.id = old.parent_id AND p.flow_pending IS NOT NULL
      RETURNING p.id
    ), wake AS (
      SELECT pg_notify($3, '') FROM old
    )
    SELECT u.*, (SELECT count(*) FROM wake) AS woke, (SELECT count(*) FROM parent) AS counted FROM u`;
}

/** Why: an operator's second chance for a dead letter (`rt.retry(id)`). */
export async function retry(db: Queryable, n: PgNames, id: TaskId, at: number): Promise<TaskRecord | undefined> {
  const { rows } = await run<TaskRow>(db, retrySql(n), [id, at, n.wakeChannel]);
  return rows[0] ? rowToTask(rows[0]) : undefined;
}
