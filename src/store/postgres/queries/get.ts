/** get: one task by id. */
import type { TaskId } from '../../../ids.ts';
import type { TaskRecord, TaskState } from '../../../task.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { run, STATE_BY_ID, type PgNames, type Queryable } from '../sql.ts';

/** Why: status, result and timings of one task (`rt.get`). */
export async function get(db: Queryable, n: PgNames, id: TaskId): Promise<TaskRecord | undefined> {
  const { rows } = await run<TaskRow>(db, `SELECT ${TASK_COLUMNS} FROM ${n.tasks} AS t WHERE t.id = $1`, [id]);
  return rows[0] ? rowToTask(rows[0]) : undefined;
}

/** Why: the runtime's read of the tasks its callers wait for, which another node may run (one statement for many). */
export async function states(db: Queryable, n: PgNames, ids: readonly TaskId[]): Promise<Map<TaskId, TaskState>> {
  const { rows } = await run<{ id: string; state: TaskState }>(db, `SELECT t.id, t.state FROM ${n.tasks} AS t WHERE t.id = ANY($1::text[])`, [ids]);
  return new Map(rows.map((r) => [r.id, r.state]));
}

/**
 * Why: a node that awaits tasks another node runs marks them, and the settle that ends a marked task notifies the
 * ended channel (settle.ts). Only tasks running elsewhere: marking every awaited task would add a write to each
 * task a node runs for its own callers. `SKIP LOCKED`: a row that a settle holds is not waited for (a waiter never holds up a
 * settle, nor deadlocks with one over several rows); the caller marks it again at its next read.
 */
export async function awaitEnd(db: Queryable, n: PgNames, ids: readonly TaskId[], owner: string): Promise<Set<TaskId>> {
  const { rows } = await run<{ id: string }>(
    db,
    `UPDATE ${n.tasks} AS t SET awaited = true
     WHERE t.id = ANY(ARRAY(
       SELECT t.id FROM ${n.tasks} AS t
       WHERE t.id = ANY($1::text[]) AND ${STATE_BY_ID} = 'running' AND t.owner <> $2
       FOR UPDATE SKIP LOCKED
     ))
     RETURNING t.id`,
    [ids, owner],
  );
  return new Set(rows.map((r) => r.id));
}
