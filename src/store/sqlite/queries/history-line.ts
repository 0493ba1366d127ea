/**
 * The SQLite store's SQL for history lines (the format: src/store/history-line.ts), for the statements that append
 * a transition's line themselves.
 */
import type { TaskState } from '../../../task.ts';
import { stateCode, stateCodeSql } from '../../history-line.ts';

/**
 * SQL: one line without reason or error, for a statement that appends it itself. `from` is a state, or a SQL
 * expression holding one (`{ sql }`); `at` and `attempt` are SQL expressions. Numbers bound from JavaScript arrive
 * as REAL, so both are cast: `1767225600000.0` is not the text `historyLine` writes.
 */
export function historySql(from: TaskState | { sql: string }, to: TaskState, at: string, attempt: string, reason?: string): string {
  const codes = typeof from === 'string' ? `'${stateCode(from)}${stateCode(to)}'` : `${stateCodeSql(from.sql)} || '${stateCode(to)}'`;
  const extra = reason === undefined ? '' : ` || '|${JSON.stringify([reason, null])}'`;
  return `${codes} || CAST(${at} AS INTEGER) || ',' || CAST(${attempt} AS INTEGER)${extra} || char(10)`;
}
