/** children: the outcomes a claimed flow parent gets, read once per claim for all its parents. */
import type { SerializedError } from '../../../errors.ts';
import { visibleChildren } from '../../../flow.ts';
import type { FlowChild, TaskRecord, TaskState } from '../../../task.ts';
import { fromJson, run, type PgNames, type Queryable } from '../sql.ts';

interface ChildRow {
  parent_id: string;
  id: string;
  name: string;
  state: TaskState;
  result: string | null;
  error: string | null;
}

/** Why: `ctx.children` of a parent; a claim without flow parents costs nothing. Mutates and returns `tasks`. */
export async function attachChildren(db: Queryable, n: PgNames, tasks: TaskRecord[]): Promise<TaskRecord[]> {
  const parents = tasks.filter((t) => t.flow !== undefined);
  if (parents.length === 0) return tasks;
  const { rows } = await run<ChildRow>(
    db,
    `SELECT parent_id, id, name, state, result::text AS result, error::text AS error FROM ${n.tasks}
     WHERE parent_id = ANY($1::text[]) ORDER BY parent_id, id`,
    [parents.map((p) => p.id)],
  );
  const byParent = new Map<string, FlowChild[]>();
  for (const row of rows) {
    const c: FlowChild = { id: row.id, name: row.name, state: row.state };
    if (row.result !== null) c.result = fromJson(row.result);
    if (row.error !== null) c.error = fromJson(row.error) as SerializedError;
    const list = byParent.get(row.parent_id);
    if (list) list.push(c);
    else byParent.set(row.parent_id, [c]);
  }
  for (const p of parents) p.children = visibleChildren(p.flow!.policy, byParent.get(p.id) ?? []);
  return tasks;
}
