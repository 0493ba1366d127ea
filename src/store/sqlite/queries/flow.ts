/**
 * flow: what happens to a waiting parent when one of its children becomes final (see src/flow.ts), and the
 * children's outcomes a claimed parent gets. `childFinal` runs inside the transaction of the verb that ended the
 * child (settle, cancel, lease recovery), so the child's end and its parent's count commit together; a parent
 * failed by policy `fail` is itself a child that ended, so nested flows cascade in the same transaction.
 *
 * The changes made this way (`flow.released`, `flow.failed`) are collected and handed to the store's listeners
 * after the commit; a rolled-back transaction discards them.
 */
import type Database from 'better-sqlite3';
import { FLOW_FAILED_REASON, FLOW_RELEASED_REASON, createChildFailedError, decideFlowStep, visibleChildren } from '../../../flow.ts';
import type { FlowChild, FlowPolicy, TaskState } from '../../../task.ts';
import type { StoreChange } from '../../store.ts';
import type { RecordTransition } from './record-transition.ts';
import type { SerializedError } from '../../../errors.ts';

export interface FlowQueries {
  /** A task just became final in this transaction: count it in its parent (no-op without a parent). */
  childFinal(child: { id: string; name?: string; state: TaskState; parentId: string | null }, at: number): void;
  /** The outcomes of a parent's children, in creation order, as its policy shows them. */
  children(parentId: string, policy: FlowPolicy): FlowChild[];
  /** Records a change to report after the commit (also used by enqueue for debounced tasks). */
  push(change: StoreChange): void;
  /** The changes of the committed transaction (emptied). */
  take(): StoreChange[];
  /** Forgets the changes of a rolled-back transaction. */
  discard(): void;
}

interface ParentRow {
  id: string;
  name: string;
  state: TaskState;
  attempts: number;
  parent_id: string | null;
  flow_pending: number | null;
  flow_policy: string | null;
}

interface ChildRow {
  id: string;
  name: string;
  state: TaskState;
  result: string | null;
  error: string | null;
}

/** Why: one home for the flow statements the verbs share. */
export function prepareFlow(db: Database.Database, record: RecordTransition): FlowQueries {
  const readParent = db.prepare<[string], ParentRow>(
    'SELECT id, name, state, attempts, parent_id, flow_pending, flow_policy FROM tasks WHERE id = ?',
  );
  const count = db.prepare<[number, string]>('UPDATE tasks SET flow_pending = ? WHERE id = ?');
  const release = db.prepare<[number, number, string]>(
    `UPDATE tasks SET state = 'queued', flow_pending = 0, run_at = ?, updated_at = ? WHERE id = ?`,
  );
  const fail = db.prepare<[number, string, number, number, string]>(
    `UPDATE tasks SET state = 'failed', flow_pending = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
  );
  const children = db.prepare<[string], ChildRow>(
    'SELECT id, name, state, result, error FROM tasks INDEXED BY tasks_parent WHERE parent_id = ? ORDER BY id',
  );
  const nameOf = db.prepare<[string], string>('SELECT name FROM tasks WHERE id = ?').pluck();
  let changes: StoreChange[] = [];

  const childFinal: FlowQueries['childFinal'] = (child, at) => {
    if (child.parentId === null) return;
    const p = readParent.get(child.parentId);
    if (!p || p.flow_pending === null) return;
    const step = decideFlowStep({ state: p.state, flow: { pending: p.flow_pending, policy: p.flow_policy as FlowPolicy } }, child.state);
    switch (step.kind) {
      case 'none':
        return;
      case 'count':
        count.run(step.pending, p.id);
        return;
      case 'release':
        release.run(at, at, p.id);
        record(p.id, 'scheduled', 'queued', at, p.attempts, FLOW_RELEASED_REASON);
        changes.push({ type: 'flow.released', id: p.id, name: p.name, at });
        return;
      case 'fail': {
        const error = createChildFailedError({ id: child.id, name: child.name ?? nameOf.get(child.id) ?? '', state: child.state });
        fail.run(p.flow_pending - 1, JSON.stringify(error), at, at, p.id);
        record(p.id, 'scheduled', 'failed', at, p.attempts, FLOW_FAILED_REASON, error);
        changes.push({ type: 'flow.failed', id: p.id, name: p.name, at, error });
        childFinal({ id: p.id, name: p.name, state: 'failed', parentId: p.parent_id }, at);
        return;
      }
    }
  };

  return {
    childFinal,
    children(parentId, policy) {
      const list = children.all(parentId).map((row) => {
        const c: FlowChild = { id: row.id, name: row.name, state: row.state };
        if (row.result !== null) c.result = JSON.parse(row.result) as unknown;
        if (row.error !== null) c.error = JSON.parse(row.error) as SerializedError;
        return c;
      });
      return visibleChildren(policy, list);
    },
    push: (change) => void changes.push(change),
    take() {
      const out = changes;
      changes = [];
      return out;
    },
    discard() {
      changes = [];
    },
  };
}
