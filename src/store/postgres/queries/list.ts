/** list: tasks newest first (by id, which is time-ordered), filtered, paged by an id cursor. */
import type { ListFilter, ListPage } from '../../store.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** The statement of one page and its parameters (it asks for `limit + 1` rows, to tell whether more follow). */
export function listQuery(n: PgNames, filter: ListFilter = {}): { sql: string; values: unknown[]; limit: number } {
  const limit = Math.min(1000, Math.max(1, Math.floor(filter.limit ?? 50)));
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (value: unknown): string => {
    values.push(value);
    return `$${values.length}`;
  };
  if (filter.state !== undefined) {
    const states = typeof filter.state === 'string' ? [filter.state] : [...filter.state];
    where.push(`t.state = ANY(${param(states)}::text[])`);
  }
  if (filter.name !== undefined) where.push(`t.name = ${param(filter.name)}`);
  if (filter.scheduleId !== undefined) where.push(`t.schedule_id = ${param(filter.scheduleId)}`);
  if (filter.parentId !== undefined) where.push(`t.parent_id = ${param(filter.parentId)}`);
  if (filter.group !== undefined) where.push(`t.grp = ${param(filter.group)}`);
  if (filter.since !== undefined) where.push(`t.created_at >= ${param(filter.since)}`);
  if (filter.cursor !== undefined) where.push(`t.id < ${param(filter.cursor)}`);
  const take = param(limit + 1);
  const select = (extra?: string): string => {
    const all = extra === undefined ? where : [...where, extra];
    return `SELECT ${TASK_COLUMNS} FROM ${n.tasks} AS t ${all.length ? `WHERE ${all.join(' AND ')}` : ''} ORDER BY t.id DESC LIMIT ${take}`;
  };
  // `tasks_name` leaves out running tasks (migration 5): by name, the rest walk it newest first, and the running
  // ones, few, come from `tasks_running`; the two pages merge by id.
  const sql =
    filter.name === undefined
      ? select()
      : `SELECT * FROM ((${select(`t.state <> 'running'`)}) UNION ALL (${select(`t.state = 'running'`)})) AS t ORDER BY t.id DESC LIMIT ${take}`;
  return { sql, values, limit };
}

/** Why: the task table of the HTTP API and the REPL, one page at a time. */
export async function list(db: Queryable, n: PgNames, filter: ListFilter = {}): Promise<ListPage> {
  const { sql, values, limit } = listQuery(n, filter);
  const { rows } = await run<TaskRow>(db, sql, values);
  const tasks = rows.slice(0, limit).map(rowToTask);
  return rows.length > limit ? { tasks, nextCursor: tasks[limit - 1]!.id } : { tasks };
}
