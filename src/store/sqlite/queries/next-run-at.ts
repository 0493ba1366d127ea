/** nextRunAt: the earliest runAt among tasks waiting for their time, read from a partial index. */
import type Database from 'better-sqlite3';
import { FLOW_WAITING_RUN_AT } from '../../../task.ts';

/** Why: lets the scheduler arm one timer instead of polling. Flow parents waiting for children are not waiting for a time. */
export function prepareNextRunAt(db: Database.Database): (after?: number) => number | undefined {
  const stmt = db.prepare<[number], { at: number | null }>(
    `SELECT MIN(run_at) AS at FROM tasks WHERE state IN ('scheduled', 'retrying') AND run_at > ? AND run_at < ${FLOW_WAITING_RUN_AT}`,
  );
  // Times are epoch milliseconds (≥ 0): -1 leaves no waiting task out.
  return (after = -1) => stmt.get(after)?.at ?? undefined;
}
