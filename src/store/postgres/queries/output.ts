/** output: captured lines after a seq, oldest first (a drop marker sorts before the lines it stands behind). */
import type { TaskId } from '../../../ids.ts';
import type { OutputLine } from '../../../task.ts';
import { rowToOutput, type OutputRow } from '../rows.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: `tail` and SSE read output incrementally by seq. */
export async function output(db: Queryable, n: PgNames, id: TaskId, after?: number, limit?: number): Promise<OutputLine[]> {
  const max = limit === undefined ? null : Math.max(0, Math.floor(limit));
  const { rows } = await run<OutputRow>(
    db,
    `SELECT seq, stream, text, at FROM ${n.output} WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
    [id, after ?? Number.MIN_SAFE_INTEGER, max],
  );
  return rows.map(rowToOutput);
}
