/** cancel: a task that is not final becomes `cancelled`; the running owner is reported so it can end the run. */
import type Database from 'better-sqlite3';
import { FINAL_STATES, type TaskState } from '../../../task.ts';
import { createCancelledError } from '../../pick.ts';
import type { CancelResult } from '../../store.ts';
import type { FlowQueries } from './flow.ts';
import type { RecordTransition } from './record-transition.ts';

/** Why: read-then-update inside the caller's transaction, so the reported previous state is the one replaced. */
export function prepareCancel(
  db: Database.Database,
  record: RecordTransition,
  flow: FlowQueries,
): (id: string, at: number, reason?: string) => CancelResult {
  const read = db.prepare<[string], { name: string; state: TaskState; owner: string | null; attempts: number; parent_id: string | null }>(
    'SELECT name, state, owner, attempts, parent_id FROM tasks WHERE id = ?',
  );
  const cancel = db.prepare(
    `UPDATE tasks SET state = 'cancelled', error = ?, finished_at = ?, updated_at = ?, lease_until = NULL WHERE id = ?`,
  );
  return (id, at, reason) => {
    const row = read.get(id);
    if (!row) return { previous: undefined, cancelled: false };
    if (FINAL_STATES.has(row.state)) return { previous: row.state, cancelled: false };
    cancel.run(JSON.stringify(createCancelledError(reason)), at, at, id);
    record(id, row.state, 'cancelled', at, row.attempts, reason ?? 'cancelled');
    if (row.parent_id !== null) flow.childFinal({ id, name: row.name, state: 'cancelled', parentId: row.parent_id }, at);
    if (row.state === 'running' && row.owner !== null) return { previous: row.state, cancelled: true, owner: row.owner };
    return { previous: row.state, cancelled: true };
  };
}
