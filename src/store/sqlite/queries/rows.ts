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

/**
 * Bytes of `tasks.room` (schema version 6) an enqueued row carries: zeros that its claim gives up as the lease
 * fields and the history line fill the row, and its end (success, failure, timeout) frees (NULL), so that neither
 * the claim nor a success with a small result makes the row larger.
 * Rows are appended in id order, which leaves their pages full, and a row that grew in such a page split it: at the
 * head of a deep queue, pages of rows the next claims take. A claim by an owner of L characters takes L + 36 bytes
 * (lease_until, started_at, the running line), so an owner of up to 60 fits; a success adds about 22 (finished_at,
 * the result `null`, its line) and fits after an owner of up to about 36 (a runtime's `host:pid:start:tag`).
 * Measured with bench/wal-pages.ts, WAL pages per claim 64 + settle 64 on the scale suite's 1,000,000-task file:
 * 25.7 → 21.9 (table leaves 11.2 → 9.9, table interior pages 2.1 → 0); near-empty 19.9 → 17.3. SQLite's
 * instructions per round (bench/claim-instructions.ts) 6.56 → 6.36 M deep, 6.05 → 6.01 M near-empty; claim + settle
 * rate at depth, the two versions alternated in one process (deep-claim.bench.ts, 3 passes): 26.9–35.3k → 29.2–38.7k
 * tasks/s. The cost: 96 bytes a row (the scale suite's file 261 → 359 MB) and about 1.5 more pages read from the OS
 * per claim of 64 at depth (bench/wal-pages.ts --calls).
 */
export const TASK_ROOM = 96;

/**
 * SQL: the room of a row after a change that grows it by about `growth` bytes (an SQL expression); a row without
 * room (enqueued before version 6) keeps none.
 */
export function roomAfter(growth: string): string {
  return `CASE WHEN room IS NOT NULL THEN zeroblob(length(room) - (${growth})) END`;
}

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
