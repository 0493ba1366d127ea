/**
 * enqueue with dedup modes or keyed flow parents, in the caller's transaction (src/dedup.ts, src/flow.ts).
 *
 * Dedup keys are serialised across nodes first: one transaction-scoped advisory lock per (name, key), taken in
 * sorted order so two batches never wait on each other in a cycle. Under the lock, the latest task of the key
 * decides: throttle answers with it inside its window; debounce pushes it back while it has not started
 * (input replaced, `runAt = now + window`, a `scheduled → scheduled` transition with reason `debounced`).
 *
 * A keyed flow parent is inserted alone first; if its key matched an existing task, its children (and their
 * children) in the batch are not inserted and answer with that task. Stretches of plain tasks go through the
 * one-statement insert of enqueue.ts.
 */
import { DEBOUNCED_REASON, debounceRunAt, throttleSince } from '../../../dedup.ts';
import type { DedupSpec, NewTask, TaskState } from '../../../task.ts';
import type { EnqueueResult, StoreChange } from '../../store.ts';
import { lineSql } from '../history-line.ts';
import { run, toJson, type PgNames, type Queryable } from '../sql.ts';
import { enqueue } from './enqueue.ts';

/** The first int4 of dedup-key advisory locks ("trp3"); the second is `hashtext(schema:name:key)`. */
const DEDUP_LOCK_CLASS = 0x74727033;

/** Why: plain batches keep their single statement; only these need the transaction. */
export function needsFeatureEnqueue(tasks: readonly NewTask[]): boolean {
  return tasks.some((t) => t.dedup !== undefined || (t.flow !== undefined && t.key !== undefined));
}

function lockSql(): string {
  return `SELECT count(pg_advisory_xact_lock(${DEDUP_LOCK_CLASS}, hashtext(k))) AS locked
    FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS keys`;
}

function latestSql(n: PgNames): string {
  return `SELECT id, state, attempts, created_at, flow_pending FROM ${n.tasks}
    WHERE name = $1 AND dedup_key = $2 ORDER BY created_at DESC, id DESC LIMIT 1`;
}

function debounceSql(n: PgNames): string {
  return `
    UPDATE ${n.tasks} SET input = $2::jsonb, run_at = $3::bigint, state = 'scheduled', updated_at = $4::bigint,
      history = history || ${lineSql({ from: { sql: '$5::text' }, to: 'scheduled', at: '$4::bigint', attempt: 'attempts', reason: { sql: '$6::text' } })}
    WHERE id = $1`;
}

interface Latest {
  id: string;
  state: TaskState;
  attempts: number;
  created_at: number;
  flow_pending: number | null;
}

/** Why: dedup decisions and flow keys that must see the batch's own earlier rows and other nodes' commits. */
export async function enqueueWithFeatures(
  db: Queryable,
  n: PgNames,
  tasks: readonly NewTask[],
): Promise<{ results: EnqueueResult[]; changes: StoreChange[] }> {
  const keys = tasks.filter((t) => t.dedup !== undefined).map((t) => `${n.schema}:${t.name}:${t.dedup!.key}`);
  if (keys.length > 0) await run(db, lockSql(), [keys]);
  const results = new Array<EnqueueResult>(tasks.length);
  const changes: StoreChange[] = [];
  const skipped = new Map<string, EnqueueResult>();
  let plain: number[] = [];
  const flush = async (): Promise<void> => {
    if (plain.length === 0) return;
    const batch = plain;
    plain = [];
    const out = await enqueue(db, n, batch.map((i) => tasks[i]!));
    batch.forEach((i, k) => (results[i] = out[k]!));
  };
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i]!;
    const parentSkip = t.parentId !== undefined ? skipped.get(t.parentId) : undefined;
    if (parentSkip) {
      if (t.flow) skipped.set(t.id, parentSkip);
      results[i] = parentSkip;
      continue;
    }
    if (t.dedup === undefined && !(t.flow !== undefined && t.key !== undefined)) {
      plain.push(i);
      continue;
    }
    await flush();
    if (t.dedup !== undefined) {
      const answer = await dedupe(db, n, t as NewTask & { dedup: DedupSpec }, changes);
      if (answer) {
        results[i] = answer;
        continue;
      }
    }
    const [result] = await enqueue(db, n, [t]);
    results[i] = result!;
    if (t.flow && !result!.created) skipped.set(t.id, result!);
  }
  await flush();
  return { results, changes };
}

async function dedupe(db: Queryable, n: PgNames, t: NewTask & { dedup: DedupSpec }, changes: StoreChange[]): Promise<EnqueueResult | undefined> {
  if (t.key !== undefined) {
    const { rows } = await run<{ id: string; state: TaskState }>(db, `SELECT id, state FROM ${n.tasks} WHERE key = $1`, [t.key]);
    if (rows[0]) return { id: rows[0].id, created: false, state: rows[0].state };
  }
  const { rows } = await run<Latest>(db, latestSql(n), [t.name, t.dedup.key]);
  const last = rows[0];
  if (!last) return undefined;
  if (t.dedup.mode === 'throttle') return last.created_at > throttleSince(t) ? { id: last.id, created: false, state: last.state } : undefined;
  if ((last.state !== 'queued' && last.state !== 'scheduled') || last.attempts > 0 || last.flow_pending !== null) return undefined;
  const runAt = debounceRunAt(t);
  await run(db, debounceSql(n), [last.id, toJson(t.input), runAt, t.createdAt, last.state, DEBOUNCED_REASON]);
  changes.push({ type: 'debounced', id: last.id, name: t.name, at: t.createdAt, runAt });
  return { id: last.id, created: false, state: 'scheduled' };
}
