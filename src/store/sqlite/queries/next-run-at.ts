/** nextRunAt: the earliest runAt among tasks waiting for their time, read from a partial index. */
import type Database from 'better-sqlite3';

/** Why: lets the scheduler arm one timer instead of polling. */
export function prepareNextRunAt(db: Database.Database): () => number | undefined {
  const stmt = db.prepare<[], { at: number | null }>(`SELECT MIN(run_at) AS at FROM tasks WHERE state IN ('scheduled', 'retrying')`);
  return () => stmt.get()?.at ?? undefined;
}
