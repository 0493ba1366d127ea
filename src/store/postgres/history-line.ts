/**
 * A task's history in its own row (`tasks.history`, schema version 4), in the line format both stores share
 * (src/store/history-line.ts): one line per transition, appended with `||` by the statement that makes the
 * transition.
 *
 *   <from><to><at>,<attempt>[|<JSON [reason, error]>]\n
 *
 * Why: a `transitions` row per change cost each claim and each settle a heap tuple and an index entry of their
 * own. On 10,000 no-ops at concurrency 8 (bench/pg-cpu.ts --mode drain), the server's CPU for claim → settle was
 * ≈60 µs per task with the table and ≈50 µs with the line appended to the row the statement already writes.
 * The `transitions` view (migration 4) still shows every line as a row, for operators' SQL.
 *
 * Every function here returns SQL text; the expressions passed in must be non-NULL where a line needs a value
 * (`'a' || NULL` is NULL, and the column is NOT NULL).
 */
import { TASK_STATES, type TaskState } from '../../task.ts';
import { STATE_CODES, parseHistory, stateCodeSql } from '../history-line.ts';

export { parseHistory };

/** A SQL string literal. */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export interface LineSql {
  /** A state, `null` (the first line), or `{ sql }` for an expression holding a state name. */
  from: TaskState | null | { sql: string };
  /** A state, or `{ sql }` for an expression holding one. */
  to: TaskState | { sql: string };
  /** SQL: epoch ms. */
  at: string;
  /** SQL: the attempt. */
  attempt: string;
  /** A fixed reason, or `{ sql }` for a text expression that may be NULL. */
  reason?: string | { sql: string };
  /** SQL: a jsonb expression that may be NULL. */
  error?: string;
}

function codeOf(state: TaskState | null | { sql: string }): string {
  if (state === null) return `'-'`;
  if (typeof state === 'string') return literal(STATE_CODES[state]);
  return `(${stateCodeSql(state.sql)})`;
}

/** SQL: one history line, ended by its newline. */
export function lineSql(line: LineSql): string {
  const head = `${codeOf(line.from)} || ${codeOf(line.to)} || (${line.at})::bigint || ',' || (${line.attempt})::int`;
  let extra: string;
  if (line.error === undefined && (line.reason === undefined || typeof line.reason === 'string')) {
    // A constant part, written as JSON.stringify writes it (as the SQLite store does).
    extra = line.reason === undefined ? '' : ` || ${literal(`|${JSON.stringify([line.reason, null])}`)}`;
  } else {
    const reason = line.reason === undefined ? 'NULL::text' : typeof line.reason === 'string' ? `${literal(line.reason)}::text` : `(${line.reason.sql})::text`;
    const error = line.error === undefined ? 'NULL::jsonb' : `(${line.error})::jsonb`;
    extra = ` || CASE WHEN ${reason} IS NULL AND ${error} IS NULL THEN '' ELSE '|' || jsonb_build_array(${reason}, ${error})::text END`;
  }
  return `${head}${extra} || E'\\n'`;
}

/**
 * SQL: the `transitions` view over the history lines, with the columns of the table it replaced (and `seq`, the
 * line's place in its task's history).
 */
export function transitionsViewSql(tasks: string, view: string): string {
  const decode = (expr: string): string =>
    `CASE ${expr} ${TASK_STATES.map((s) => `WHEN '${STATE_CODES[s]}' THEN '${s}'`).join(' ')} END`;
  return `CREATE VIEW ${view} AS
    SELECT t.id AS task_id, l.seq,
           ${decode('substr(l.line, 1, 1)')} AS from_state,
           ${decode('substr(l.line, 2, 1)')} AS to_state,
           split_part(split_part(substr(l.line, 3), '|', 1), ',', 1)::bigint AS at,
           split_part(split_part(substr(l.line, 3), '|', 1), ',', 2)::int AS attempt,
           CASE WHEN strpos(l.line, '|') > 0 THEN (substr(l.line, strpos(l.line, '|') + 1)::jsonb) ->> 0 END AS reason,
           CASE WHEN strpos(l.line, '|') > 0 THEN nullif((substr(l.line, strpos(l.line, '|') + 1)::jsonb) -> 1, 'null'::jsonb) END AS error
    FROM ${tasks} AS t
    CROSS JOIN LATERAL regexp_split_to_table(rtrim(t.history, E'\\n'), E'\\n') WITH ORDINALITY AS l(line, seq)
    WHERE t.history <> ''`;
}
