/** history: a task's transitions in the order they were written. */
import type { TaskId } from '../../../ids.ts';
import type { Transition } from '../../../task.ts';
import { TRANSITION_COLUMNS, rowToTransition, type TransitionRow } from '../rows.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a task's life can be replayed from its transitions. */
export async function history(db: Queryable, n: PgNames, id: TaskId): Promise<Transition[]> {
  const { rows } = await run<TransitionRow>(
    db,
    `SELECT ${TRANSITION_COLUMNS} FROM ${n.transitions} WHERE task_id = $1 ORDER BY seq`,
    [id],
  );
  return rows.map(rowToTransition);
}
