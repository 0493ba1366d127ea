/** history: a task's transitions in the order they were written (the lines of its `history` column). */
import type { TaskId } from '../../../ids.ts';
import type { Transition } from '../../../task.ts';
import { parseHistory } from '../history-line.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: a task's life can be replayed from its transitions. */
export async function history(db: Queryable, n: PgNames, id: TaskId): Promise<Transition[]> {
  const { rows } = await run<{ history: string }>(db, `SELECT history FROM ${n.tasks} WHERE id = $1`, [id]);
  return rows[0] ? parseHistory(id, rows[0].history) : [];
}
