/**
 * Row shapes and their mapping to records. NULL columns become absent fields, so a record read back from
 * SQLite equals the one the memory store keeps.
 */
export {
  type TaskRow,
  type TransitionRow,
  type OutputRow,
  type ScheduleRow,
  taskFromRow as toTaskRecord,
  transitionFromRow as toTransition,
  outputFromRow as toOutputLine,
  scheduleFromRow as toScheduleRecord,
} from '../../task-row.ts';

/** The index SQLite makes for `tasks.id TEXT PRIMARY KEY` (schema version 1): its name is fixed by SQLite. */
export const ID_INDEX = 'sqlite_autoindex_tasks_1';

/** The columns a task query selects (everything but the output bookkeeping). */
export const TASK_COLUMNS = `id, name, state, input, result, error, priority, weight, key, attempts, max_attempts, progress,
  created_at, run_at, started_at, finished_at, updated_at, owner, lease_until, schedule_id, options,
  grp, dedup_key, parent_id, flow_pending, flow_policy`;

/** Why: JSON text for a user value; `undefined` is stored as NULL. */
export function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/**
 * Why: multi-row statements are prepared for power-of-two row counts only, so a verb keeps a handful of them
 * (each prepared statement holds its compiled program in memory): `n` rows (n ≥ 1) go as the largest powers of
 * two up to `max` (itself a power of two), e.g. 45 → 32, 8, 4, 1. Returns the first piece.
 */
export function rowPiece(n: number, max: number): number {
  let p = max;
  while (p > n) p >>= 1;
  return p;
}

/**
 * A multi-row statement per row count, prepared the first time that count is asked for (with `rowPiece`, only
 * powers of two are). `values(n)` is `n` copies of `row`, comma-separated, for the statement's SQL.
 */
export function statementsByRows<S>(prepare: (n: number, values: (row: string) => string) => S): (n: number) => S {
  const cache = new Map<number, S>();
  return (n) => {
    let stmt = cache.get(n);
    if (stmt === undefined) {
      stmt = prepare(n, (row) => Array.from({ length: n }, () => row).join(', '));
      cache.set(n, stmt);
    }
    return stmt;
  };
}
