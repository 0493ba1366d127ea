/**
 * settle: outcomes and facts about running tasks. An outcome is a guarded UPDATE (the row must still be
 * running under the same owner and attempt; consecutive successes share one); when it changes the row, its transition is written, and a final
 * outcome of a flow child is counted in its parent (flow.ts). The caller runs the whole batch in one transaction
 * (group commit).
 */
import type Database from 'better-sqlite3';
import type { SettleOp } from '../../store.ts';
import type { FlowQueries } from './flow.ts';
import type { OutputQueries } from './output.ts';
import { historySql } from './history-line.ts';
import type { TransitionWriter } from './record-transition.ts';
import { ID_INDEX, rowPiece, statementsByRows, toJson } from './rows.ts';

const GUARD = `WHERE id = ? AND state = 'running' AND owner = ? AND attempts = ?`;
export { ID_INDEX };

/** Successes updated by one statement at most (5 parameters each). */
const SUCCEED_CHUNK = 64;

type Succeeded = Extract<SettleOp, { type: 'succeeded' }>;

/**
 * `n` successes at once; RETURNING the rows the guard let through (a refused one is missing). Two things keep each
 * task a lookup by id whatever the statistics in the file say:
 * - the id index is pinned (INDEXED BY the primary key's index): left to the planner, statistics taken while nothing
 *   ran (`PRAGMA optimize` at close) make `tasks_running` look empty, and the plan then walked every running task,
 *   and for each one every row of the batch: work in running × batch. Measured: a batch of 64 with 5,000 other tasks
 *   running took 30 ms instead of 0.4 ms; on the 1,000,000-task file of the scale suite (64 running) it was a third
 *   of the statement.
 * - `tasks.id IN (SELECT column1 FROM v)`: with the statistics of a young file (a table of a few rows) the planner
 *   made tasks the outer loop and walked the whole table through the pinned index (the join of UPDATE … FROM cannot
 *   be ordered with CROSS JOIN). The IN list makes that outer loop one seek per row of the batch at worst. Measured
 *   on 100,000 tasks with statistics of 3: 2 rows 19 ms → 0.016 ms, 64 rows 440 ms → 0.21 ms; with statistics that
 *   fit the table, 64 rows 0.10 ms before and 0.09 ms after.
 */
export function succeedManySql(rows: number): string {
  return `WITH v AS (VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?)').join(', ')})
     UPDATE tasks INDEXED BY ${ID_INDEX} SET state = 'succeeded', result = v.column2, error = NULL, finished_at = v.column3,
       updated_at = v.column3, lease_until = NULL, history = history || ${historySql('running', 'succeeded', 'v.column3', 'v.column5')}, room = NULL
     FROM v
     WHERE tasks.id IN (SELECT column1 FROM v) AND tasks.id = v.column1 AND tasks.state = 'running' AND tasks.owner = v.column4
       AND tasks.attempts = v.column5
     RETURNING tasks.id AS id, tasks.parent_id AS parent_id`;
}

/**
 * Why: apply a batch of ops in order and say for each whether it changed the task. Consecutive successes (the
 * bulk of a busy batch) share one UPDATE … FROM (VALUES …) per chunk; every other op is one statement.
 */
export function prepareSettle(
  db: Database.Database,
  writer: TransitionWriter,
  output: OutputQueries,
  flow: FlowQueries,
): (ops: readonly SettleOp[]) => boolean[] {
  const { record } = writer;
  // RETURNING the parent (plucked: no row object per task): undefined when the guard refused, null without a parent
  const succeed = db
    .prepare<unknown[], string | null>(
      `UPDATE tasks SET state = 'succeeded', result = ?, error = NULL, finished_at = ?, updated_at = ?, lease_until = NULL,
         history = history || ${historySql('running', 'succeeded', '?', 'attempts')}, room = NULL ${GUARD}
       RETURNING parent_id`,
    )
    .pluck();
  const fail = db
    .prepare<unknown[], string | null>(
      `UPDATE tasks SET state = ?, error = ?, finished_at = ?, updated_at = ?, lease_until = NULL, room = NULL ${GUARD} RETURNING parent_id`,
    )
    .pluck();
  const retry = db.prepare(
    `UPDATE tasks SET state = 'retrying', run_at = ?, error = ?, updated_at = ?, owner = NULL, lease_until = NULL ${GUARD}`,
  );
  const release = db.prepare(
    `UPDATE tasks SET state = ?, run_at = coalesce(?, run_at), attempts = attempts - 1, updated_at = ?, owner = NULL, lease_until = NULL ${GUARD}`,
  );
  const progress = db.prepare(`UPDATE tasks SET progress = ?, updated_at = ? WHERE id = ? AND state = 'running'`);
  /** `n` successes at once (succeedManySql). */
  const succeedMany = statementsByRows((n) => db.prepare<unknown[], { id: string; parent_id: string | null }>(succeedManySql(n)));
  const succeeded = (op: Succeeded, parentId: string | null): void => {
    writer.counted('running', 'succeeded');
    if (parentId !== null) flow.childFinal({ id: op.id, state: 'succeeded', parentId }, op.at);
  };
  /** Successes `ops[from, to)` (distinct ids) in one statement; their transitions in op order. */
  const settleSuccesses = (ops: readonly SettleOp[], from: number, to: number, out: boolean[]): void => {
    writer.sync();
    const values: unknown[] = [];
    for (let i = from; i < to; i++) {
      const op = ops[i] as Succeeded;
      values.push(op.id, toJson(op.result), op.at, op.owner, op.attempt);
    }
    const changed = new Map<string, string | null>();
    for (const row of succeedMany(to - from).all(values)) changed.set(row.id, row.parent_id);
    for (let i = from; i < to; i++) {
      const op = ops[i] as Succeeded;
      const parentId = changed.get(op.id);
      out[i] = parentId !== undefined;
      if (parentId !== undefined) succeeded(op, parentId);
    }
  };
  const one = (op: SettleOp): boolean => {
    switch (op.type) {
      case 'succeeded': {
        writer.sync();
        const parentId = succeed.get(toJson(op.result), op.at, op.at, op.at, op.id, op.owner, op.attempt);
        if (parentId === undefined) return false;
        succeeded(op, parentId);
        return true;
      }
      case 'failed':
      case 'timed_out': {
        const parentId = fail.get(op.type, JSON.stringify(op.error), op.at, op.at, op.id, op.owner, op.attempt);
        if (parentId === undefined) return false;
        record(op.id, 'running', op.type, op.at, op.attempt, undefined, op.error);
        if (parentId !== null) flow.childFinal({ id: op.id, state: op.type, parentId }, op.at);
        return true;
      }
      case 'retry': {
        if (retry.run(op.runAt, JSON.stringify(op.error), op.at, op.id, op.owner, op.attempt).changes === 0) return false;
        record(op.id, 'running', 'retrying', op.at, op.attempt, op.reason, op.error);
        return true;
      }
      case 'release': {
        // A task given back before its own run_at (written ahead of its slot) waits `scheduled` for it again.
        const to = op.runAt === undefined ? 'queued' : 'scheduled';
        if (release.run(to, op.runAt ?? null, op.at, op.id, op.owner, op.attempt).changes === 0) return false;
        record(op.id, 'running', to, op.at, op.attempt, op.reason);
        return true;
      }
      case 'progress':
        return progress.run(JSON.stringify(op.progress), op.at, op.id).changes === 1;
      case 'output':
        return output.append(op.id, op.lines, op.caps);
      default:
        return false;
    }
  };
  return (ops) => {
    const out = new Array<boolean>(ops.length);
    let i = 0;
    while (i < ops.length) {
      // a run of successes of distinct tasks (a repeated id ends it: the second one must see the first's change)
      let end = i;
      const ids = new Set<string>();
      while (end < ops.length && end - i < SUCCEED_CHUNK && ops[end]!.type === 'succeeded' && !ids.has(ops[end]!.id)) ids.add(ops[end++]!.id);
      if (end - i >= 2) {
        const n = rowPiece(end - i, SUCCEED_CHUNK);
        settleSuccesses(ops, i, i + n, out);
        i += n;
      } else {
        out[i] = one(ops[i]!);
        i++;
      }
    }
    return out;
  };
}
