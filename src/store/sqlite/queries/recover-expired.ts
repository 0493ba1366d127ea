/**
 * recoverExpired: running rows whose lease ended before `now` go back to `queued` or end `failed` with
 * TROUPE_ERR_LEASE_EXPIRED, as `decideExpiredLease` says (the first lost run adds an attempt). Running rows are few;
 * they are found through their partial index.
 */
import type Database from 'better-sqlite3';
import type { TaskRecord } from '../../../task.ts';
import { LEASE_REASONS, createLeaseExpiredError, decideExpiredLease } from '../../pick.ts';
import type { FlowQueries } from './flow.ts';
import type { RecordTransition } from './record-transition.ts';
import { TASK_COLUMNS, toTaskRecord, type TaskRow } from './rows.ts';

/** Why: the recovery half of a lease; a crashed node's tasks come back without anyone's help. */
export function prepareRecoverExpired(db: Database.Database, record: RecordTransition, flow: FlowQueries): (now: number) => TaskRecord[] {
  const expired = db.prepare<[number], { id: string; attempts: number; max_attempts: number; lease_losses: number }>(
    `SELECT id, attempts, max_attempts, lease_losses FROM tasks INDEXED BY tasks_running WHERE state = 'running' AND lease_until < ? ORDER BY id`,
  );
  const requeue = db.prepare<[number, number, string], TaskRow>(
    `UPDATE tasks SET state = 'queued', max_attempts = max_attempts + ?, owner = NULL, lease_until = NULL, updated_at = ?,
       lease_losses = lease_losses + 1 WHERE id = ? RETURNING ${TASK_COLUMNS}`,
  );
  const fail = db.prepare<[string, number, number, string], TaskRow>(
    `UPDATE tasks SET state = 'failed', error = ?, finished_at = ?, updated_at = ?, lease_until = NULL, lease_losses = lease_losses + 1
     WHERE id = ? RETURNING ${TASK_COLUMNS}`,
  );
  return (now) =>
    expired.all(now).map((t) => {
      const verdict = decideExpiredLease({ attempts: t.attempts, maxAttempts: t.max_attempts, leaseLosses: t.lease_losses });
      if (verdict === 'fail') {
        const error = createLeaseExpiredError(t.attempts);
        const row = fail.get(JSON.stringify(error), now, now, t.id)!;
        record(t.id, 'running', 'failed', now, t.attempts, LEASE_REASONS.fail, error);
        if (row.parent_id !== null) flow.childFinal({ id: t.id, name: row.name, state: 'failed', parentId: row.parent_id }, now);
        return toTaskRecord(row);
      }
      const row = requeue.get(verdict === 'requeue-extra' ? 1 : 0, now, t.id)!;
      record(t.id, 'running', 'queued', now, t.attempts, LEASE_REASONS[verdict]);
      return toTaskRecord(row);
    });
}
