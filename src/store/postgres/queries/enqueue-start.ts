/**
 * enqueue-start: the PostgreSQL store's `enqueueAndClaim`, an enqueue that starts some of its own tasks in the
 * same statement, as the claim would, when nothing else is due.
 *
 * An idle node with free slots offers its claim to the next enqueue (the scheduler's claim offer). Without this,
 * a new task on PostgreSQL takes the insert's round trip (with its commit's WAL flush), then the wake notification,
 * then a claim's round trip, which writes a second version of the row. Here the insert writes the task `running`,
 * leased to the node, with both transitions in its history (created `queued`, then `queued → running` at the
 * claim's time): one round trip and one row version.
 *
 * Which tasks: those start-plan.ts picks, the ones the claim would take if the batch were all that is due. They
 * start only if no task of the claim's allowed names is due already (checked in the statement's snapshot, one
 * probe of the strategy's name-leading index per name): a due task that was there first is the claim's to take, so
 * then every task of the batch is inserted waiting (`blocked`) and the store claims after it, as for the batches
 * start-plan.ts does not serve and those that need enqueue-features.ts (dedup modes, keyed flow parents). A task
 * whose id or key is taken is not inserted, so not started either. Claims that start-plan.ts never serves (group or
 * rate limits, no name list, weighted-random) are never offered by the scheduler (`startsInInsert`, the store's
 * `claimsInEnqueue`), so that an enqueue does not wait for such a claim.
 *
 * The started tasks' records are built from what the batch sent, except `input` and `options`, which are read back
 * as the claim reads them (jsonb's text), so that a record equals what `get` returns.
 */
import type { ClaimRequest, EnqueueAndClaimResult, Strategy } from '../../store.ts';
import { pickStarts } from '../../start-plan.ts';
import { startedRowOfNew, startedTaskFromRow } from '../../task-row.ts';
import type { NewTask, TaskRecord, TaskState } from '../../../task.ts';
import { lineSql } from '../history-line.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';
import { dueSql } from './claim.ts';
import { FIRST_LINE_SQL, INPUT_SQL, answer, insertRows, type InsertRow } from './enqueue.ts';

/** What `enqueueAndStart` does with a batch: which of its rows may start, and the names whose due tasks come first. */
export interface StartPlan {
  rows: InsertRow[];
  /** The names a due task of which keeps the batch from starting (the claim's allowed names). */
  names: string[];
  /** The rows to start, in claim order. */
  starts: InsertRow[];
  /** They are every due row of the allowed names in the batch. */
  all: boolean;
}

/**
 * Why: decides, without the database, which of a batch's tasks a claim would take first if the batch were all
 * that is due (start-plan.ts); undefined when the claim cannot be made this way or takes none of them.
 */
export function planStart(tasks: readonly NewTask[], strategy: Strategy, request: ClaimRequest): StartPlan | undefined {
  const rows = insertRows(tasks);
  const picks = pickStarts(rows, strategy, request);
  if (picks === undefined) return undefined;
  for (const r of picks.starts) r.start = true;
  return { rows, names: picks.names, starts: picks.starts, all: picks.all };
}

/**
 * Parameters: $1 the rows (JSON), $2 the wake channel, $3 now, $4 the names, $5 owner, $6 lease until. The wake
 * notification goes out when a task was inserted waiting (a started one needs no claim).
 */
export function enqueueStartSql(n: PgNames): string {
  return `
    WITH input AS (${INPUT_SQL}, (e->>'start')::boolean IS TRUE AS start
      FROM jsonb_array_elements($1::jsonb) AS e
    ), free AS (
      SELECT NOT EXISTS (
        SELECT 1 FROM unnest($4::text[]) AS allowed(name)
        CROSS JOIN LATERAL (
          SELECT 1 FROM ${n.tasks}
          WHERE ${dueSql('$3')} AND name = allowed.name
          LIMIT 1
        ) AS due
      ) AS ok
    ), rows AS (
      SELECT input.*, input.start AND free.ok AS go FROM input, free
    ), ins AS (
      INSERT INTO ${n.tasks} AS t (id, name, state, input, priority, weight, key, attempts, max_attempts,
                                   created_at, run_at, updated_at, schedule_id, options,
                                   grp, dedup_key, parent_id, flow_pending, flow_policy,
                                   owner, lease_until, started_at, history)
      SELECT id, name, CASE WHEN go THEN 'running' WHEN run_at > created_at THEN 'scheduled' ELSE 'queued' END,
             input, priority, weight, key, CASE WHEN go THEN 1 ELSE 0 END, max_attempts,
             created_at, run_at, CASE WHEN go THEN $3::bigint ELSE created_at END, schedule_id, options,
             grp, dedup_key, parent_id, flow_pending, flow_policy,
             CASE WHEN go THEN $5::text END, CASE WHEN go THEN $6::bigint END, CASE WHEN go THEN $3::bigint END,
             ${FIRST_LINE_SQL} || CASE WHEN go THEN ${lineSql({ from: 'queued', to: 'running', at: '$3', attempt: '1' })} ELSE '' END
      FROM rows ORDER BY i
      ON CONFLICT DO NOTHING
      RETURNING t.id, t.state,
                CASE WHEN t.state = 'running' THEN t.input::text END AS input,
                CASE WHEN t.state = 'running' THEN t.options::text END AS options
    ), wake AS (
      SELECT pg_notify($2, '') FROM (SELECT 1 FROM ins WHERE state <> 'running' LIMIT 1) AS any_row
    )
    SELECT ins.id, ins.state, ins.input, ins.options, free.ok AS free, (SELECT count(*) FROM wake) AS woke
    FROM free LEFT JOIN ins ON true`;
}

/** Statement texts per schema, built once. */
const texts = new Map<string, string>();

/**
 * Why: a new task on an idle node starts in its enqueue's own statement (see the file's comment). `blocked`: a
 * task of the claim's names was due already, so nothing started; the caller's claim takes it.
 */
export async function enqueueAndStart(
  db: Queryable,
  n: PgNames,
  tasks: readonly NewTask[],
  plan: StartPlan,
  request: ClaimRequest,
): Promise<EnqueueAndClaimResult & { blocked: boolean }> {
  let sql = texts.get(n.tasks);
  if (sql === undefined) texts.set(n.tasks, (sql = enqueueStartSql(n)));
  const leaseUntil = request.now + request.leaseMs;
  const { rows } = await run<{ id: string | null; state: TaskState; input: string | null; options: string | null; free: boolean }>(db, sql, [
    JSON.stringify(plan.rows),
    n.wakeChannel,
    request.now,
    plan.names,
    request.owner,
    leaseUntil,
  ]);
  const created = new Map<string, TaskState>();
  const started = new Map<string, { input: string | null; options: string | null }>();
  for (const r of rows) {
    if (r.id === null) continue;
    // The enqueue answers as any enqueue does (the task was created queued); the claim's records say `running`.
    created.set(r.id, r.state === 'running' ? 'queued' : r.state);
    if (r.state === 'running') started.set(r.id, { input: r.input, options: r.options });
  }
  const claimed: TaskRecord[] = [];
  for (const s of plan.starts) {
    const back = started.get(s.id);
    if (back === undefined) continue;
    claimed.push(startedTaskFromRow(startedRowOfNew(s, back.input, back.options), request.now, request.owner, leaseUntil));
  }
  const blocked = rows[0]?.free === false;
  // Nothing was due before (a plain read, which no other node's lock hides), and the batch left nothing due either.
  return { results: await answer(db, n, tasks, created), claimed, blocked, drained: !blocked && plan.all };
}
