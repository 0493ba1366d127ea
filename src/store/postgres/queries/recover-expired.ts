/**
 * recoverExpired: running tasks whose lease ran out go back to `queued` or end `failed` with LEASE_EXPIRED, as
 * `decideExpiredLease` says (the first lost run adds an attempt). `SKIP LOCKED` lets several nodes sweep at once
 * without recovering one task twice. Two statements in the caller's transaction: the error text comes from
 * pick.ts, shared with the other stores, so it is built here rather than in SQL. A task that ends `failed` here
 * and that a node awaits (marked `awaited`, get.ts `awaitEnd`) is named on the ended channel, as a settle names
 * the tasks it ends; one put back `queued` keeps its mark for the run that ends it.
 */
import type { TaskRecord } from '../../../task.ts';
import { LEASE_REASONS, createLeaseExpiredError, decideExpiredLease } from '../../pick.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { lineSql } from '../history-line.ts';
import { STATE_BY_ID, notifyEndedSql, run, type PgNames, type Queryable } from '../sql.ts';

function expiredSql(n: PgNames): string {
  return `
    SELECT id, attempts, max_attempts, lease_losses FROM ${n.tasks}
    WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $1)
    ORDER BY id FOR UPDATE SKIP LOCKED`;
}

function recoverSql(n: PgNames): string {
  return `
    WITH x AS (
      SELECT e->>'id' AS id, e->'error' AS error, (e->>'extra')::int AS extra, e->>'reason' AS reason
      FROM jsonb_array_elements($1::jsonb) AS e
    ), u AS (
      UPDATE ${n.tasks} AS t SET
        state = CASE WHEN x.error IS NULL THEN 'queued' ELSE 'failed' END,
        max_attempts = t.max_attempts + x.extra,
        lease_losses = t.lease_losses + 1,
        error = coalesce(x.error, t.error),
        finished_at = CASE WHEN x.error IS NULL THEN t.finished_at ELSE $2 END,
        owner = CASE WHEN x.error IS NULL THEN NULL ELSE t.owner END,
        lease_until = NULL,
        updated_at = $2,
        history = t.history || ${lineSql({
          from: 'running',
          to: { sql: `CASE WHEN x.error IS NULL THEN 'queued' ELSE 'failed' END` },
          at: '$2',
          attempt: 't.attempts',
          reason: { sql: 'x.reason' },
          error: 'x.error',
        })}
      FROM x WHERE t.id = x.id AND t.id = ANY(ARRAY(SELECT id FROM x)) AND ${STATE_BY_ID} = 'running'
      RETURNING ${TASK_COLUMNS}, t.awaited
    ), wake AS (
      SELECT pg_notify($3, '') FROM (SELECT 1 FROM u WHERE state = 'queued' LIMIT 1) AS requeued
    ), ended AS (
      ${notifyEndedSql('$4', 'u.id', `u WHERE u.awaited AND u.state = 'failed'`)}
    )
    SELECT u.*, (SELECT count(*) FROM wake) AS woke, (SELECT count(*) FROM ended) AS told FROM u ORDER BY id`;
}

/** Why: at-least-once delivery; a node that died mid-run loses no task. */
export async function recoverExpired(db: Queryable, n: PgNames, now: number): Promise<TaskRecord[]> {
  const expired = await run<{ id: string; attempts: number; max_attempts: number; lease_losses: number }>(db, expiredSql(n), [now]);
  if (expired.rows.length === 0) return [];
  const payload = expired.rows.map((r) => {
    const verdict = decideExpiredLease({ attempts: r.attempts, maxAttempts: r.max_attempts, leaseLosses: r.lease_losses });
    const base = { id: r.id, extra: verdict === 'requeue-extra' ? 1 : 0, reason: LEASE_REASONS[verdict] };
    return verdict === 'fail' ? { ...base, error: createLeaseExpiredError(r.attempts) } : base;
  });
  const { rows } = await run<TaskRow>(db, recoverSql(n), [JSON.stringify(payload), now, n.wakeChannel, n.endedChannel]);
  return rows.map(rowToTask);
}
