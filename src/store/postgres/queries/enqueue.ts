/**
 * enqueue: one statement inserts the whole batch, each new task with its first transition as its history, and sends the wake
 * notification (delivered at commit). Idempotency keys (and ids) are settled by the unique indexes: `ON CONFLICT
 * DO NOTHING` skips a key that another transaction holds, even one committing at this moment, and a follow-up
 * read returns the task that owns it. Duplicates inside one batch are folded before the insert (first one wins).
 * A flow parent is stored waiting (`FLOW_WAITING_RUN_AT`), a debounced task a window later; batches with dedup
 * modes or a keyed flow parent go through enqueue-features.ts, which calls this for the plain stretches.
 */
import type { EnqueueResult } from '../../store.ts';
import { debounceRunAt } from '../../../dedup.ts';
import { FLOW_WAITING_RUN_AT, type DedupSpec, type NewTask, type TaskState } from '../../../task.ts';
import { ErrorCodes, TroupeError } from '../../../errors.ts';
import { run, type PgNames, type Queryable } from '../sql.ts';

/** The batch as the insert reads it: one JSON object per row (`i`: the task's place in the batch). */
export interface InsertRow {
  i: number;
  id: string;
  name: string;
  input: unknown;
  priority: number;
  weight: number;
  key: string | undefined;
  maxAttempts: number;
  createdAt: number;
  runAt: number;
  scheduleId: string | undefined;
  options: unknown;
  group: string | undefined;
  dedupKey: string | undefined;
  parentId: string | undefined;
  flowPending: number | undefined;
  flowPolicy: string | undefined;
  /** enqueue-start.ts: start this task now if nothing else is due (absent: insert it waiting). */
  start?: true;
}

/** The input rows of the insert (`$1`, a JSON array of InsertRow). */
export const INPUT_SQL = `
      SELECT (e->>'i')::int AS i, e->>'id' AS id, e->>'name' AS name, e->'input' AS input,
             (e->>'priority')::float8 AS priority, (e->>'weight')::float8 AS weight, e->>'key' AS key,
             (e->>'maxAttempts')::int AS max_attempts, (e->>'createdAt')::bigint AS created_at,
             (e->>'runAt')::bigint AS run_at, e->>'scheduleId' AS schedule_id, e->'options' AS options,
             e->>'group' AS grp, e->>'dedupKey' AS dedup_key, e->>'parentId' AS parent_id,
             (e->>'flowPending')::int AS flow_pending, e->>'flowPolicy' AS flow_policy`;

/** The first history line of a new task (history-line.ts): created `scheduled` or `queued`, attempt 0. */
export const FIRST_LINE_SQL = `CASE WHEN run_at > created_at THEN '-s' ELSE '-q' END || created_at || E',0\\n'`;

function insertSql(n: PgNames): string {
  return `
    WITH input AS (${INPUT_SQL}
      FROM jsonb_array_elements($1::jsonb) AS e
    ), ins AS (
      INSERT INTO ${n.tasks} AS t (id, name, state, input, priority, weight, key, attempts, max_attempts,
                                   created_at, run_at, updated_at, schedule_id, options,
                                   grp, dedup_key, parent_id, flow_pending, flow_policy, history)
      SELECT id, name, CASE WHEN run_at > created_at THEN 'scheduled' ELSE 'queued' END, input, priority, weight,
             key, 0, max_attempts, created_at, run_at, created_at, schedule_id, options,
             grp, dedup_key, parent_id, flow_pending, flow_policy, ${FIRST_LINE_SQL}
      FROM input ORDER BY i
      ON CONFLICT DO NOTHING
      RETURNING t.id, t.state
    ), wake AS (
      SELECT pg_notify($2, '') FROM (SELECT 1 FROM ins LIMIT 1) AS any_row
    )
    SELECT ins.id, ins.state, (SELECT count(*) FROM wake) AS woke FROM ins`;
}

function existingSql(n: PgNames): string {
  return `SELECT key, id, state FROM ${n.tasks} WHERE key = ANY($1::text[]) OR id = ANY($2::text[])`;
}

/** When a new task may first run: a waiting flow parent never by time, a debounced task a window later. */
function effectiveRunAt(t: NewTask): number {
  if (t.flow !== undefined && t.flow.pending > 0) return FLOW_WAITING_RUN_AT;
  if (t.dedup?.mode === 'debounce') return debounceRunAt(t as NewTask & { dedup: DedupSpec });
  return t.runAt;
}

/** The batch's rows, duplicates inside it folded before the insert (the first id or key wins). */
export function insertRows(tasks: readonly NewTask[]): InsertRow[] {
  const seenKeys = new Set<string>();
  const seenIds = new Set<string>();
  const rows: InsertRow[] = [];
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!;
    if (seenIds.has(t.id) || (t.key !== undefined && seenKeys.has(t.key))) continue;
    seenIds.add(t.id);
    if (t.key !== undefined) seenKeys.add(t.key);
    rows.push({
      i, id: t.id, name: t.name, input: t.input, priority: t.priority, weight: t.weight, key: t.key,
      maxAttempts: t.maxAttempts, createdAt: t.createdAt, runAt: effectiveRunAt(t), scheduleId: t.scheduleId, options: t.options,
      group: t.group, dedupKey: t.dedup?.key, parentId: t.parentId, flowPending: t.flow?.pending, flowPolicy: t.flow?.policy,
    });
  }
  return rows;
}

/** Why: the durable write behind `rt.enqueue`; resolves only after the batch is committed. */
export async function enqueue(db: Queryable, n: PgNames, tasks: readonly NewTask[]): Promise<EnqueueResult[]> {
  if (tasks.length === 0) return [];
  const inserted = await run<{ id: string; state: TaskState }>(db, insertSql(n), [JSON.stringify(insertRows(tasks)), n.wakeChannel]);
  const created = new Map<string, TaskState>();
  for (const r of inserted.rows) created.set(r.id, r.state);
  return answer(db, n, tasks, created);
}

/**
 * The enqueue's answer per input, in order, from the tasks the insert `created` (id → state): each created task
 * answers once, for the first input that carried it; every other input finds the task that owns its id or key.
 */
export async function answer(db: Queryable, n: PgNames, tasks: readonly NewTask[], created: Map<string, TaskState>): Promise<EnqueueResult[]> {
  const results: (EnqueueResult | undefined)[] = new Array(tasks.length);
  const missing: number[] = [];
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!;
    const state = created.get(t.id);
    if (state !== undefined) {
      created.delete(t.id);
      results[i] = { id: t.id, created: true, state };
    } else missing.push(i);
  }
  if (missing.length > 0) {
    const keys = missing.map((i) => tasks[i]!.key).filter((k): k is string => k !== undefined);
    const ids = missing.map((i) => tasks[i]!.id);
    const existing = await run<{ key: string | null; id: string; state: TaskState }>(db, existingSql(n), [keys, ids]);
    const byKey = new Map<string, { id: string; state: TaskState }>();
    const byId = new Map<string, { id: string; state: TaskState }>();
    for (const r of existing.rows) {
      if (r.key !== null) byKey.set(r.key, r);
      byId.set(r.id, r);
    }
    for (const i of missing) {
      const t = tasks[i]!;
      const row = (t.key !== undefined ? byKey.get(t.key) : undefined) ?? byId.get(t.id);
      if (!row) {
        throw new TroupeError(ErrorCodes.STORE, `Task ${t.id} conflicted with an existing one that is gone`, { details: { id: t.id, key: t.key } });
      }
      results[i] = { id: row.id, created: false, state: row.state };
    }
  }
  return results as EnqueueResult[];
}
