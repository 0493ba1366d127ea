/**
 * cancel: one statement locks the rows, moves the task (when not final) and, when it is a flow parent, its
 * descendants that are not final to `cancelled`, appends each transition, and notifies the cancel channel with the
 * id of each one that was running, so the node running it ends the run. The ones not running that a node awaits
 * (marked `awaited`, get.ts `awaitEnd`) are named on the ended channel instead, as a settle names those it ends:
 * a caller on another node waiting for a queued task hears its cancel at commit. A queued task's cancel sends
 * nothing on the cancel channel (no run to stop), and an unmarked one nothing at all.
 *
 * The rows are locked deepest first: a child's settle locks the child and then (its flow trigger) the parent, so a
 * cancel taking the parent last waits for it instead of closing a cycle. The trigger fires for each cancelled
 * child at the end of the statement and finds its parent no longer waiting: it only counts the child down.
 */
import { flowCancelledReason } from '../../../flow.ts';
import type { TaskId } from '../../../ids.ts';
import type { CancelResult, CancelledChild } from '../../store.ts';
import type { TaskState } from '../../../task.ts';
import { createCancelledError } from '../../pick.ts';
import { lineSql } from '../history-line.ts';
import { notifyEndedSql, run, toPgJson, type PgNames, type Queryable } from '../sql.ts';
import { replaceBadText } from '../../json-value.ts';

function cancelSql(n: PgNames): string {
  return `
    WITH RECURSIVE tree AS (
      SELECT id, 0 AS depth FROM ${n.tasks} WHERE id = $1
      UNION ALL
      SELECT c.id, tree.depth + 1 FROM ${n.tasks} AS c JOIN tree ON c.parent_id = tree.id
    ), old AS (
      SELECT t.id, t.name, t.state, t.owner, t.attempts, t.awaited, tree.depth
      FROM ${n.tasks} AS t JOIN tree ON t.id = tree.id
      ORDER BY tree.depth DESC, t.id FOR UPDATE OF t
    ), u AS (
      UPDATE ${n.tasks} AS t SET state = 'cancelled',
             error = CASE WHEN old.depth = 0 THEN $3::jsonb ELSE $6::jsonb END,
             finished_at = $2, updated_at = $2, lease_until = NULL,
             history = t.history || ${lineSql({ from: { sql: 'old.state' }, to: 'cancelled', at: '$2', attempt: 'old.attempts', reason: { sql: 'CASE WHEN old.depth = 0 THEN $4 ELSE $7 END' } })}
      FROM old WHERE t.id = old.id AND old.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')
      RETURNING t.id
    ), signal AS (
      SELECT pg_notify($5, old.id) FROM old JOIN u ON u.id = old.id WHERE old.state = 'running'
    ), ended AS (
      ${notifyEndedSql('$8', 'old.id', `old JOIN u ON u.id = old.id WHERE old.awaited AND old.state <> 'running'`)}
    )
    SELECT old.id, old.name, old.depth, old.state AS previous, old.owner, u.id IS NOT NULL AS cancelled,
           (SELECT count(*) FROM signal) AS signalled, (SELECT count(*) FROM ended) AS told
    FROM old LEFT JOIN u ON u.id = old.id
    ORDER BY old.depth, old.id`;
}

interface Row {
  id: TaskId;
  name: string;
  depth: number;
  previous: TaskState;
  owner: string | null;
  cancelled: boolean;
}

/** Why: `rt.cancel(id)` for a task anywhere in the cluster; the owner learns of it through NOTIFY. */
export async function cancel(db: Queryable, n: PgNames, id: TaskId, at: number, reason?: string): Promise<CancelResult> {
  const childReason = flowCancelledReason(id);
  const { rows } = await run<Row>(db, cancelSql(n), [
    id, at, toPgJson(createCancelledError(reason)), reason === undefined ? 'cancelled' : replaceBadText(reason), n.cancelChannel,
    toPgJson(createCancelledError(childReason)), childReason, n.endedChannel,
  ]);
  const root = rows[0];
  if (!root) return { previous: undefined, cancelled: false };
  const result: CancelResult = { previous: root.previous, cancelled: root.cancelled, name: root.name };
  if (root.cancelled && root.previous === 'running' && root.owner !== null) result.owner = root.owner;
  const children: CancelledChild[] = [];
  for (let i = 1; i < rows.length; i++) {
    const c = rows[i]!;
    if (!c.cancelled) continue;
    children.push(c.previous === 'running' && c.owner !== null ? { id: c.id, name: c.name, previous: c.previous, owner: c.owner } : { id: c.id, name: c.name, previous: c.previous });
  }
  if (children.length > 0) result.children = children;
  return result;
}
