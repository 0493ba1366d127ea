/** get: one task by id. */
import type { TaskId } from '../../../ids.ts';
import type { TaskRecord, TaskState } from '../../../task.ts';
import { TASK_COLUMNS, rowToTask, type TaskRow } from '../rows.ts';
import { run, STATE_BY_ID, type PgNames, type Queryable } from '../sql.ts';

/** Why: status, result and timings of one task (`rt.get`). */
export async function get(db: Queryable, n: PgNames, id: TaskId): Promise<TaskRecord | undefined> {
  const { rows } = await run<TaskRow>(db, `SELECT ${TASK_COLUMNS} FROM ${n.tasks} AS t WHERE t.id = $1`, [id]);
  return rows[0] ? rowToTask(rows[0]) : undefined;
}

/** Why: the runtime's read of the tasks its callers wait for, which another node may run (one statement for many). */
export async function states(db: Queryable, n: PgNames, ids: readonly TaskId[]): Promise<Map<TaskId, TaskState>> {
  const { rows } = await run<{ id: string; state: TaskState }>(db, `SELECT t.id, t.state FROM ${n.tasks} AS t WHERE t.id = ANY($1::text[])`, [ids]);
  return new Map(rows.map((r) => [r.id, r.state]));
}

/**
 * Why: a node that awaits tasks another node may run marks them, and the statement that ends a marked task (the
 * settle, a cancel, a lease recovery that fails it) notifies the ended channel (sql.ts `notifyEndedSql`), so the
 * waiter hears the end at its commit instead of at its next read (up to 2 s later).
 *
 * Marked: a task running under another owner, and one not started yet (`queued`, `scheduled`, `retrying`), which
 * any node may claim later, but only while another owner runs some task of this schema (one probe of the running
 * tasks' partial index, once a statement): a node alone on its store writes no mark for the backlog its own callers
 * wait on (a mark is rarely a HOT update on a freshly filled table: ≈29 µs of server CPU a task, more than its
 * enqueue), and when it is not alone, the others are busy (an idle node would have claimed the task already). The
 * mark stays on the row through claims, retries and releases (no statement but this one writes `awaited`), so
 * whichever node ends it notifies. Not one `owner` runs (its end is heard there anyway), nor one final. The runtime
 * calls this at its first read of a wait, 200 ms in, and again at each later read for the tasks still unmarked,
 * so a task that a node runs at once for its own caller is never written to, and only waits that long pay.
 *
 * `SKIP LOCKED`: a row that another transaction holds is left unmarked (the caller marks it at its next read)
 * rather than waited for. A waiter then never holds up a settle, nor deadlocks with one over several rows, and a
 * claimer (which locks with `SKIP LOCKED` too) never waits on a row being marked. A claimer that met a queued row
 * while this statement held it skipped it, and may have found nothing else and gone back to sleep: so marking a
 * due task also notifies the wake channel (at commit, once a statement), and the claimers look again.
 * `awaited` has no index and no partial index names it, so the mark changes no indexed column and stays HOT.
 */
export async function awaitEnd(db: Queryable, n: PgNames, ids: readonly TaskId[], owner: string, now: number): Promise<Set<TaskId>> {
  const { rows } = await run<{ id: string }>(
    db,
    `WITH m AS (
       UPDATE ${n.tasks} AS t SET awaited = true
       WHERE t.id = ANY(ARRAY(
         SELECT t.id FROM ${n.tasks} AS t
         WHERE t.id = ANY($1::text[])
           AND ((${STATE_BY_ID} = 'running' AND t.owner <> $2)
             OR (${STATE_BY_ID} IN ('queued', 'scheduled', 'retrying')
                 AND EXISTS (SELECT 1 FROM ${n.tasks} AS r WHERE r.state = 'running' AND r.owner <> $2)))
         FOR UPDATE SKIP LOCKED
       ))
       RETURNING t.id, t.state, t.run_at
     ), wake AS (
       SELECT pg_notify($3, '') FROM (SELECT 1 FROM m WHERE state = 'queued' OR (state <> 'running' AND run_at <= $4) LIMIT 1) AS due
     )
     SELECT m.id, (SELECT count(*) FROM wake) AS woke FROM m`,
    [ids, owner, n.wakeChannel, now],
  );
  return new Set(rows.map((r) => r.id));
}
