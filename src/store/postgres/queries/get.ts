/** get: one task by id. */
import type { TaskId } from '../../../ids.ts';
import type { TaskRecord } from '../../../task.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: status, result and timings of one task (`rt.get`). */
export async function get(db: Queryable, n: PgNames, id: TaskId): Promise<TaskRecord | undefined> {
  const { rows } = await run<TaskRow>(db, `SELECT ${TASK_COLUMNS} FROM ${n.tasks} AS t WHERE t.id = $1`, [id]);
  return rows[0] ? rowToTask(rows[0]) : undefined;
}
