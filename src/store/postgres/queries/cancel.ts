/**
 * cancel: one statement locks the row, moves a task that is not final to `cancelled`, appends the transition and,
 * when the task was running, notifies the cancel channel with its id so the node running it ends the run.
 */
import type { TaskId } from '../../../ids.ts';
import type { CancelResult } from '../../store.ts';
import type { TaskState } from '../../../task.ts';
import { createCancelledError } from '../../pick.ts';
import { lineSql } from '../history-line.ts';
import { run, toPgJson, type PgNames, type Queryable } from '../sql.ts';
import { replaceBadText } from '../../json-value.ts';

function cancelSql(n: PgNames): string {
  return `
    WITH old AS (
      SELECT id, state, owner, attempts FROM ${n.tasks} WHERE id = $1 FOR UPDATE
    ), u AS (
      UPDATE ${n.tasks} AS t SET state = 'cancelled', error = $3::jsonb, finished_at = $2, updated_at = $2,
             lease_until = NULL,
             history = t.history || ${lineSql({ from: { sql: 'old.state' }, to: 'cancelled', at: '$2', attempt: 'old.attempts', reason: { sql: '$4' } })}
      FROM old WHERE t.id = old.id AND old.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')
      RETURNING t.id
    ), signal AS (
      SELECT pg_notify($5, old.id) FROM old JOIN u ON u.id = old.id WHERE old.state = 'running'
    )
    SELECT old.state AS previous, old.owner, u.id IS NOT NULL AS cancelled, (SELECT count(*) FROM signal) AS signalled
    FROM old LEFT JOIN u ON u.id = old.id`;
}

/** Why: `rt.cancel(id)` for a task anywhere in the cluster; the owner learns of it through NOTIFY. */
export async function cancel(db: Queryable, n: PgNames, id: TaskId, at: number, reason?: string): Promise<CancelResult> {
  const { rows } = await run<{ previous: TaskState; owner: string | null; cancelled: boolean }>(db, cancelSql(n), [
    id, at, toPgJson(createCancelledError(reason)), reason === undefined ? 'cancelled' : replaceBadText(reason), n.cancelChannel,
  ]);
  const row = rows[0];
  if (!row) return { previous: undefined, cancelled: false };
  const result: CancelResult = { previous: row.previous, cancelled: row.cancelled };
  if (row.cancelled && row.previous === 'running' && row.owner !== null) result.owner = row.owner;
  return result;
}
