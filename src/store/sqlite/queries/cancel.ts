/**
 * cancel: a task that is not final becomes `cancelled`; the running owner is reported so it can end the run. A flow
 * parent's descendants that are not final are cancelled with it, parents first.
 */
import type Database from 'better-sqlite3';
import { flowCancelledReason } from '../../../flow.ts';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import { createCancelledError } from '../../pick.ts';
import type { CancelResult, CancelledChild } from '../../store.ts';
import type { FlowQueries } from './flow.ts';
import type { RecordTransition } from './record-transition.ts';

interface Row {
  id: string;
  name: string;
  state: TaskState;
  owner: string | null;
  attempts: number;
  parent_id: string | null;
}

/** Why: read-then-update inside the caller's transaction, so the reported previous state is the one replaced. */
export function prepareCancel(
  db: Database.Database,
  record: RecordTransition,
  flow: FlowQueries,
): (id: string, at: number, reason?: string) => CancelResult {
  const read = db.prepare<[string], Row & { flow_pending: number | null }>(
    'SELECT id, name, state, owner, attempts, parent_id, flow_pending FROM tasks WHERE id = ?',
  );
  // Sorted by depth: each parent before its children.
  const descendants = db.prepare<[string], Row>(
    `WITH RECURSIVE tree(id, depth) AS (
       SELECT id, 1 FROM tasks INDEXED BY tasks_parent WHERE parent_id = ?
       UNION ALL
       SELECT t.id, tree.depth + 1 FROM tasks AS t INDEXED BY tasks_parent JOIN tree ON t.parent_id = tree.id
     )
     SELECT t.id, t.name, t.state, t.owner, t.attempts, t.parent_id FROM tree JOIN tasks AS t ON t.id = tree.id
     WHERE t.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')
     ORDER BY tree.depth, t.id`,
  );
  const cancel = db.prepare(
    `UPDATE tasks SET state = 'cancelled', error = ?, finished_at = ?, updated_at = ?, lease_until = NULL WHERE id = ?`,
  );
  const cancelOne = (row: Row, at: number, reason: string | undefined): void => {
    cancel.run(JSON.stringify(createCancelledError(reason)), at, at, row.id);
    record(row.id, row.state, 'cancelled', at, row.attempts, reason ?? 'cancelled');
    if (row.parent_id !== null) flow.childFinal({ id: row.id, name: row.name, state: 'cancelled', parentId: row.parent_id }, at);
  };
  return (id, at, reason) => {
    const row = read.get(id);
    if (!row) return { previous: undefined, cancelled: false };
    const final = FINAL_STATES.has(row.state);
    if (!final) cancelOne(row, at, reason);
    const result: CancelResult = { previous: row.state, cancelled: !final, name: row.name };
    if (!final && row.state === 'running' && row.owner !== null) result.owner = row.owner;
    if (row.flow_pending !== null) {
      const children: CancelledChild[] = [];
      const childReason = flowCancelledReason(id);
      for (const c of descendants.all(id)) {
        cancelOne(c, at, childReason);
        children.push(c.state === 'running' && c.owner !== null ? { id: c.id, name: c.name, previous: c.state, owner: c.owner } : { id: c.id, name: c.name, previous: c.state });
      }
      if (children.length > 0) result.children = children;
    }
    return result;
  };
}
