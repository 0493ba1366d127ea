/**
 * settle: outcomes and facts about running tasks. An outcome is one guarded UPDATE (the row must still be
 * running under the same owner and attempt); when it changes the row, its transition is written, and a final
 * outcome of a flow child is counted in its parent (flow.ts). The caller runs the whole batch in one transaction
 * (group commit).
 */
import type Database from 'better-sqlite3';
import type { SettleOp } from '../../store.ts';
import type { FlowQueries } from './flow.ts';
import type { OutputQueries } from './output.ts';
import type { RecordTransition } from './record-transition.ts';
import { toJson } from './rows.ts';

const GUARD = `WHERE id = ? AND state = 'running' AND owner = ? AND attempts = ?`;


/** Why: apply one op and say whether it changed the task. */
export function prepareSettle(
  db: Database.Database,
  record: RecordTransition,
  output: OutputQueries,
  flow: FlowQueries,
): (op: SettleOp) => boolean {
  // RETURNING the parent (plucked: no row object per task): undefined when the guard refused, null without a parent
  const succeed = db
    .prepare<unknown[], string | null>(
      `UPDATE tasks SET state = 'succeeded', result = ?, error = NULL, finished_at = ?, updated_at = ?, lease_until = NULL ${GUARD}
       RETURNING parent_id`,
    )
    .pluck();
  const fail = db
    .prepare<unknown[], string | null>(
      `UPDATE tasks SET state = ?, error = ?, finished_at = ?, updated_at = ?, lease_until = NULL ${GUARD} RETURNING parent_id`,
    )
    .pluck();
  const retry = db.prepare(
    `UPDATE tasks SET state = 'retrying', run_at = ?, error = ?, updated_at = ?, owner = NULL, lease_until = NULL ${GUARD}`,
  );
  const release = db.prepare(
    `UPDATE tasks SET state = 'queued', attempts = attempts - 1, updated_at = ?, owner = NULL, lease_until = NULL ${GUARD}`,
  );
  const progress = db.prepare(`UPDATE tasks SET progress = ?, updated_at = ? WHERE id = ? AND state = 'running'`);
  return (op) => {
    switch (op.type) {
      case 'succeeded': {
        const parentId = succeed.get(toJson(op.result), op.at, op.at, op.id, op.owner, op.attempt);
        if (parentId === undefined) return false;
        record(op.id, 'running', 'succeeded', op.at, op.attempt);
        if (parentId !== null) flow.childFinal({ id: op.id, state: 'succeeded', parentId }, op.at);
        return true;
      }
      case 'failed':
      case 'timed_out': {
        const parentId = fail.get(op.type, JSON.stringify(op.error), op.at, op.at, op.id, op.owner, op.attempt);
        if (parentId === undefined) return false;
        record(op.id, 'running', op.type, op.at, op.attempt, undefined, op.error);
        if (parentId !== null) flow.childFinal({ id: op.id, state: op.type, parentId }, op.at);
        return true;
      }
      case 'retry': {
        if (retry.run(op.runAt, JSON.stringify(op.error), op.at, op.id, op.owner, op.attempt).changes === 0) return false;
        record(op.id, 'running', 'retrying', op.at, op.attempt, op.reason, op.error);
        return true;
      }
      case 'release': {
        if (release.run(op.at, op.id, op.owner, op.attempt).changes === 0) return false;
        record(op.id, 'running', 'queued', op.at, op.attempt, op.reason);
        return true;
      }
      case 'progress':
        return progress.run(JSON.stringify(op.progress), op.at, op.id).changes === 1;
      case 'output':
        return output.append(op.id, op.lines);
      default:
        return false;
    }
  };
}
