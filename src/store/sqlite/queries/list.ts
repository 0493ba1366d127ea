/**
 * list: newest first (ids are time-ordered), keyset-paged by the last id of the previous page. One statement
 * per combination of filters, prepared on first use, so each can use its own index: the dead-letter or
 * running partial index, (name, id), (schedule_id, id), (parent_id, id), (grp, id), or the primary key walked
 * backwards.
 */
import type Database from 'better-sqlite3';
import { DEAD_STATES, type TaskState } from '../../../task.ts';
import type { ListFilter, ListPage } from '../../store.ts';
import { TASK_COLUMNS, toTaskRecord, type TaskRow } from './rows.ts';

const MAX_LIMIT = 1000;

/** Why: paging that never skips or repeats a task, whatever is inserted meanwhile. */
export function prepareList(db: Database.Database): (filter?: ListFilter) => ListPage {
  const cache = new Map<string, Database.Statement<Record<string, unknown>, TaskRow>>();
  const statementFor = (shape: string[]): Database.Statement<Record<string, unknown>, TaskRow> => {
    const key = shape.join(',');
    let stmt = cache.get(key);
    if (!stmt) {
      const where = shape.map((part) => {
        switch (part) {
          case 'state':
            return 'state IN (SELECT value FROM json_each(@state))';
          case 'dead':
            return `state IN ('failed', 'timed_out', 'cancelled')`;
          case 'running':
            return `state = 'running'`;
          case 'name':
            return 'name = @name';
          case 'scheduleId':
            return 'schedule_id = @scheduleId';
          case 'parentId':
            return 'parent_id = @parentId';
          case 'group':
            return 'grp = @group';
          case 'since':
            return 'created_at >= @since';
          default:
            return 'id < @cursor';
        }
      });
      const sql = `SELECT ${TASK_COLUMNS} FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      stmt = db.prepare<Record<string, unknown>, TaskRow>(sql);
      cache.set(key, stmt);
    }
    return stmt;
  };
  return (filter = {}) => {
    const limit = Math.min(MAX_LIMIT, Math.max(1, Math.floor(filter.limit ?? 50)));
    const shape: string[] = [];
    const params: Record<string, unknown> = { limit: limit + 1 };
    if (filter.state !== undefined) {
      const states: readonly TaskState[] = typeof filter.state === 'string' ? [filter.state] : filter.state;
      shape.push('state');
      params.state = JSON.stringify(states);
      // the literal terms let the planner use the partial indexes of dead letters and running tasks
      if (states.length > 0 && states.every((s) => DEAD_STATES.has(s))) shape.push('dead');
      else if (states.length > 0 && states.every((s) => s === 'running')) shape.push('running');
    }
    if (filter.name !== undefined) {
      shape.push('name');
      params.name = filter.name;
    }
    if (filter.scheduleId !== undefined) {
      shape.push('scheduleId');
      params.scheduleId = filter.scheduleId;
    }
    if (filter.parentId !== undefined) {
      shape.push('parentId');
      params.parentId = filter.parentId;
    }
    if (filter.group !== undefined) {
      shape.push('group');
      params.group = filter.group;
    }
    if (filter.since !== undefined) {
      shape.push('since');
      params.since = filter.since;
    }
    if (filter.cursor !== undefined) {
      shape.push('cursor');
      params.cursor = filter.cursor;
    }
    const tasks = statementFor(shape).all(params).map(toTaskRecord);
    if (tasks.length > limit) {
      tasks.length = limit;
      return { tasks, nextCursor: tasks[limit - 1]!.id };
    }
    return { tasks };
  };
}
