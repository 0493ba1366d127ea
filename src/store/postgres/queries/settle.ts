/**
 * settle: many outcomes in one transaction (group commit), with multi-row statements instead of a round trip
 * per op. The result must equal applying the ops one by one, in order, as the memory store does:
 *
 * - `output` ops only need the task to exist, so they commute with every other op: all of them go first, as one
 *   insert (see output-append.ts).
 * - `progress` applies while the task is `running`; an outcome (succeeded, failed, timed_out, retry, release)
 *   applies while it is `running` under the op's owner and attempt, and then leaves `running`.
 *   The ops are cut into phases: within a phase every task has at most one outcome and its progress ops come
 *   before that outcome, so running "all progress, then all outcomes" per phase is the same as running them in
 *   order. A usual batch (progress and result of many tasks) is a single phase: one progress statement and one
 *   outcome statement.
 * - The outcome statement joins the ops to the rows under the guard (`state = 'running' AND owner = … AND
 *   attempts = …`), so a late result never overwrites `cancelled` and a node whose lease was taken over cannot
 *   finish the task twice; it appends each transition to the row's history in the same statement.
 * - `t.id = ANY(ARRAY(SELECT id FROM o))` (redundant with the join) keeps the generic plan on primary-key
 *   lookups; without it the planner hashes every running row. The guard's `state` is written as `STATE_BY_ID`
 *   (sql.ts) so that no partial index can join the primary key's lookups.
 * - A released task is claimable again, so the statement notifies the wake channel (delivered at commit).
 * - A task that ends and was marked `awaited` by a node waiting for it elsewhere (`awaitEnd`) is named on the ended
 *   channel, so that node hears the end at commit; an unmarked one (nearly all) costs nothing more.
 */
import type { SettleOp } from '../../store.ts';
import { lineSql } from '../history-line.ts';
import { STATE_BY_ID, notifyEndedSql, run, toPgJson, type PgNames, type Queryable } from '../sql.ts';
import { appendOutput, type OutputOp } from './output-append.ts';

type ProgressOp = Extract<SettleOp, { type: 'progress' }>;
type OutcomeOp = Exclude<SettleOp, { type: 'progress' } | { type: 'output' }>;

interface Phase {
  progress: { i: number; op: ProgressOp }[];
  outcomes: { i: number; op: OutcomeOp }[];
}

/** Splits progress and outcome ops into phases that can each run as one progress and one outcome statement. */
export function planPhases(ops: readonly SettleOp[]): Phase[] {
  const phases: Phase[] = [];
  let phase: Phase = { progress: [], outcomes: [] };
  /** ids with an outcome in the current phase. */
  let finished = new Set<string>();
  const flush = (): void => {
    if (phase.progress.length > 0 || phase.outcomes.length > 0) phases.push(phase);
    phase = { progress: [], outcomes: [] };
    finished = new Set();
  };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.type === 'output') continue;
    if (finished.has(op.id)) flush();
    if (op.type === 'progress') phase.progress.push({ i, op });
    else {
      phase.outcomes.push({ i, op });
      finished.add(op.id);
    }
  }
  flush();
  return phases;
}

export function progressSql(n: PgNames): string {
  return `
    WITH o AS (
      SELECT DISTINCT ON (id) id, at, progress FROM (
        SELECT (e->>'i')::int AS i, e->>'id' AS id, (e->>'at')::bigint AS at, e->'progress' AS progress
        FROM jsonb_array_elements($1::jsonb) AS e
      ) AS raw ORDER BY id, i DESC
    )
    UPDATE ${n.tasks} AS t SET progress = o.progress, updated_at = o.at
    FROM o WHERE t.id = o.id AND t.id = ANY(ARRAY(SELECT id FROM o)) AND ${STATE_BY_ID} = 'running'
    RETURNING t.id`;
}

export function outcomeSql(n: PgNames): string {
  return `
    WITH o AS (
      SELECT (e->>'i')::int AS i, e->>'id' AS id, e->>'type' AS type, e->>'owner' AS owner,
             (e->>'attempt')::int AS attempt, (e->>'at')::bigint AS at, e->'result' AS result,
             e->'error' AS error, (e->>'runAt')::bigint AS run_at, e->>'reason' AS reason,
             CASE e->>'type' WHEN 'retry' THEN 'retrying' WHEN 'release' THEN COALESCE(e->>'to', 'queued') ELSE e->>'type' END AS target
      FROM jsonb_array_elements($1::jsonb) AS e
    ), u AS (
      UPDATE ${n.tasks} AS t SET
        state = o.target,
        result = CASE WHEN o.type = 'succeeded' THEN o.result ELSE t.result END,
        error = CASE o.type WHEN 'succeeded' THEN NULL WHEN 'release' THEN t.error ELSE o.error END,
        finished_at = CASE WHEN o.type IN ('succeeded', 'failed', 'timed_out') THEN o.at ELSE t.finished_at END,
        run_at = COALESCE(o.run_at, t.run_at),
        attempts = CASE WHEN o.type = 'release' THEN o.attempt - 1 ELSE t.attempts END,
        owner = CASE WHEN o.type IN ('retry', 'release') THEN NULL ELSE t.owner END,
        lease_until = NULL,
        updated_at = o.at,
        history = t.history || ${lineSql({
          from: 'running',
          to: { sql: 'o.target' },
          at: 'o.at',
          attempt: 'o.attempt',
          reason: { sql: `CASE WHEN o.type IN ('retry', 'release') THEN o.reason END` },
          error: `CASE WHEN o.type IN ('failed', 'timed_out', 'retry') THEN o.error END`,
        })}
      FROM o
      WHERE t.id = o.id AND t.id = ANY(ARRAY(SELECT id FROM o))
        AND ${STATE_BY_ID} = 'running' AND t.owner = o.owner AND t.attempts = o.attempt
      RETURNING o.i, o.type, t.id AS task_id, t.awaited
    ), wake AS (
      SELECT pg_notify($2, '') FROM (SELECT 1 FROM u WHERE type = 'release' LIMIT 1) AS released
    ), ended AS (
      ${notifyEndedSql('$3', 'task_id', `u WHERE awaited AND type IN ('succeeded', 'failed', 'timed_out')`)}
    )
    SELECT u.i, (SELECT count(*) FROM wake) AS woke, (SELECT count(*) FROM ended) AS told FROM u`;
}

/** Why: the tracker's group commit; `applied[i]` tells whether op i changed its task. */
export async function settle(
  client: Queryable,
  n: PgNames,
  maxOutputLines: number,
  ops: readonly SettleOp[],
): Promise<boolean[]> {
  const applied = new Array<boolean>(ops.length).fill(false);
  const outputs: { i: number; op: OutputOp }[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.type === 'output') outputs.push({ i, op });
  }
  if (outputs.length > 0) {
    const exists = await appendOutput(client, n, maxOutputLines, outputs.map((o) => o.op));
    for (const { i, op } of outputs) applied[i] = exists.has(op.id);
  }
  for (const phase of planPhases(ops)) {
    if (phase.progress.length > 0) {
      const payload = phase.progress.map(({ i, op }) => ({ i, id: op.id, at: op.at, progress: op.progress }));
      const { rows } = await run<{ id: string }>(client, progressSql(n), [toPgJson(payload)]);
      const changed = new Set(rows.map((r) => r.id));
      for (const { i, op } of phase.progress) applied[i] = changed.has(op.id);
    }
    if (phase.outcomes.length > 0) {
      const payload = phase.outcomes.map(({ i, op }) => outcomeRow(i, op));
      const { rows } = await run<{ i: number }>(client, outcomeSql(n), [toPgJson(payload), n.wakeChannel, n.endedChannel]);
      for (const r of rows) applied[r.i] = true;
    }
  }
  return applied;
}

function outcomeRow(i: number, op: OutcomeOp): Record<string, unknown> {
  const row: Record<string, unknown> = { i, id: op.id, type: op.type, owner: op.owner, attempt: op.attempt, at: op.at };
  switch (op.type) {
    case 'succeeded':
      row.result = op.result;
      break;
    case 'failed':
    case 'timed_out':
      row.error = op.error;
      break;
    case 'retry':
      row.error = op.error;
      row.runAt = op.runAt;
      row.reason = op.reason;
      break;
    case 'release':
      row.reason = op.reason;
      // Given back before its own run_at (written ahead of its slot): it waits `scheduled` for it again.
      if (op.runAt !== undefined) {
        row.to = 'scheduled';
        row.runAt = op.runAt;
      }
      break;
  }
  return row;
}

/** True when `ops` takes more than one statement, so the caller must wrap them in a transaction. */
export function needsTransaction(ops: readonly SettleOp[]): boolean {
  if (ops.some((op) => op.type === 'output')) return true;
  let statements = 0;
  for (const p of planPhases(ops)) statements += Number(p.progress.length > 0) + Number(p.outcomes.length > 0);
  return statements > 1;
}
