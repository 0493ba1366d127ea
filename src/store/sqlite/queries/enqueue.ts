/**
 * enqueue: INSERTs that do nothing on a conflicting id or idempotency key (consecutive plain tasks share one
 * multi-row INSERT … RETURNING id); on a conflict the existing task answers. Runs inside the caller's transaction, so a batch sees its own earlier rows.
 *
 * Dedup modes (src/dedup.ts) read the latest task of the same name and dedup key first: throttle answers with it
 * inside its window; debounce pushes it back (new input, `runAt = now + window`) while it has not started. A flow
 * parent is stored waiting (`FLOW_WAITING_RUN_AT`); when a parent's key matched an existing task, its children in
 * the batch are not inserted and answer with that task.
 */
import type Database from 'better-sqlite3';
import { DEBOUNCED_REASON, debounceRunAt, throttleSince } from '../../../dedup.ts';
import { FLOW_WAITING_RUN_AT, type DedupSpec, type NewTask, type TaskState } from '../../../task.ts';
import type { EnqueueResult } from '../../store.ts';
import type { FlowQueries } from './flow.ts';
import { historyLine } from '../../history-line.ts';
import { startedRowOfNew, type StartedRow } from '../../task-row.ts';
import type { TransitionWriter } from './record-transition.ts';
import { TASK_ROOM, rowPiece, statementsByRows, toJson } from './rows.ts';

interface Latest {
  id: string;
  state: TaskState;
  attempts: number;
  created_at: number;
  flow_pending: number | null;
}

const INSERT = `INSERT INTO tasks (id, name, state, input, priority, weight, key, max_attempts, created_at, run_at, updated_at, schedule_id,
  options, grp, dedup_key, parent_id, flow_pending, flow_policy, history, room) VALUES`;
/** A row's values: 19 parameters, and the room its claim and success will take (rows.ts, TASK_ROOM). */
const ROW = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, zeroblob(${TASK_ROOM}))`;
/** Plain tasks inserted by one statement at most (19 parameters each). */
const INSERT_CHUNK = 32;
/**
 * A task its enqueue starts (`InsertStart`): inserted `running`, leased, attempt 1, with both lines of history (created
 * `queued`, then `queued → running`), and the room a claim would have left it (the lease's growth: the owner and 36).
 */
const STARTED_INSERT = `INSERT INTO tasks (id, name, state, input, priority, weight, key, max_attempts, created_at, run_at, updated_at,
  schedule_id, options, grp, parent_id, history, attempts, owner, lease_until, started_at, room)
  VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, zeroblob(${TASK_ROOM} - 36 - length(?))) ON CONFLICT DO NOTHING`;

/** The tasks of a batch its insert starts (see enqueue-start.ts), and where it puts what it wrote. */
export interface InsertStart {
  /** Their places in the batch: plain tasks, each the first of its id and key in it. */
  at: ReadonlySet<number>;
  owner: string;
  now: number;
  leaseUntil: number;
  /** Filled in: the row of each task started, by its place in the batch (one whose id or key was taken is not). */
  started: Map<number, StartedRow>;
}

export type Enqueue = (tasks: readonly NewTask[], start?: InsertStart) => EnqueueResult[];

/** Why: idempotent inserts; consecutive plain tasks share one multi-row INSERT (the statement is the cost). */
export function prepareEnqueue(
  db: Database.Database,
  writer: TransitionWriter,
  flow: FlowQueries,
): Enqueue {
  const { record } = writer;
  const insert = db.prepare(`${INSERT} ${ROW} ON CONFLICT DO NOTHING`);
  const insertStarted = db.prepare(STARTED_INSERT);
  /** `n` rows in one statement, RETURNING the ids it inserted (a conflicting row is missing). */
  const insertMany = statementsByRows((_n, values) =>
    db.prepare<unknown[], string>(`${INSERT} ${values(ROW)} ON CONFLICT DO NOTHING RETURNING id`).pluck(),
  );
  const byKey = db.prepare<[string], { id: string; state: TaskState }>('SELECT id, state FROM tasks WHERE key = ?');
  const byId = db.prepare<[string], { id: string; state: TaskState }>('SELECT id, state FROM tasks WHERE id = ?');
  const latest = db.prepare<[string, string], Latest>(
    `SELECT id, state, attempts, created_at, flow_pending FROM tasks INDEXED BY tasks_dedup
     WHERE name = ? AND dedup_key = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
  );
  const debounce = db.prepare<[string | null, number, number, string]>(
    `UPDATE tasks SET input = ?, run_at = ?, state = 'scheduled', updated_at = ? WHERE id = ?`,
  );

  /** Throttle or debounce against the latest task of the same name and key; undefined: insert the task. */
  const dedupe = (t: NewTask & { dedup: DedupSpec }): EnqueueResult | undefined => {
    const last = latest.get(t.name, t.dedup.key);
    if (!last) return undefined;
    if (t.dedup.mode === 'throttle') return last.created_at > throttleSince(t) ? { id: last.id, created: false, state: last.state } : undefined;
    if ((last.state !== 'queued' && last.state !== 'scheduled') || last.attempts > 0 || last.flow_pending !== null) return undefined;
    const runAt = debounceRunAt(t);
    debounce.run(toJson(t.input), runAt, t.createdAt, last.id);
    record(last.id, last.state, 'scheduled', t.createdAt, last.attempts, DEBOUNCED_REASON);
    flow.push({ type: 'debounced', id: last.id, name: t.name, at: t.createdAt, runAt });
    return { id: last.id, created: false, state: 'scheduled' };
  };

  /** The values of a task's row, in INSERT's column order; its history starts with the line of its first state. */
  const rowOf = (t: NewTask, state: TaskState, runAt: number): unknown[] => [
    t.id,
    t.name,
    state,
    toJson(t.input),
    t.priority,
    t.weight,
    t.key ?? null,
    t.maxAttempts,
    t.createdAt,
    runAt,
    t.createdAt,
    t.scheduleId ?? null,
    toJson(t.options),
    t.group ?? null,
    t.dedup?.key ?? null,
    t.parentId ?? null,
    t.flow ? t.flow.pending : null,
    t.flow ? t.flow.policy : null,
    historyLine(null, state, t.createdAt, 0),
  ];
  const stateOf = (t: NewTask): TaskState => (t.runAt > t.createdAt ? 'scheduled' : 'queued');
  const existing = (t: NewTask): EnqueueResult => {
    const row = (t.key !== undefined ? byKey.get(t.key) : undefined) ?? byId.get(t.id)!;
    return { id: row.id, created: false, state: row.state };
  };
  /** Plain tasks `tasks[from, to)` (distinct ids) in one statement; their transitions in batch order. */
  const insertPlain = (tasks: readonly NewTask[], from: number, to: number, out: EnqueueResult[]): void => {
    const values: unknown[] = [];
    for (let i = from; i < to; i++) values.push(...rowOf(tasks[i]!, stateOf(tasks[i]!), tasks[i]!.runAt));
    const inserted = new Set(insertMany(to - from).all(values));
    for (let i = from; i < to; i++) {
      const t = tasks[i]!;
      if (!inserted.has(t.id)) {
        out[i] = existing(t);
        continue;
      }
      const state = stateOf(t);
      writer.counted(null, state);
      out[i] = { id: t.id, created: true, state };
    }
  };

  const one = (t: NewTask, skipped: { map?: Map<string, EnqueueResult> }): EnqueueResult => {
    const parentSkip = t.parentId !== undefined ? skipped.map?.get(t.parentId) : undefined;
    if (parentSkip) {
      if (t.flow) skipped.map!.set(t.id, parentSkip);
      return parentSkip;
    }
    if (t.dedup !== undefined && (t.key === undefined || !byKey.get(t.key))) {
      const answer = dedupe(t as NewTask & { dedup: DedupSpec });
      if (answer) return answer;
    }
    const waiting = t.flow !== undefined && t.flow.pending > 0;
    const runAt = waiting ? FLOW_WAITING_RUN_AT : t.dedup?.mode === 'debounce' ? debounceRunAt(t as NewTask & { dedup: DedupSpec }) : t.runAt;
    const state: TaskState = runAt > t.createdAt ? 'scheduled' : 'queued';
    const info = insert.run(rowOf(t, state, runAt));
    if (info.changes === 1) {
      writer.counted(null, state);
      return { id: t.id, created: true, state };
    }
    const result = existing(t);
    if (t.flow) (skipped.map ??= new Map()).set(t.id, result);
    return result;
  };

  /** A task the enqueue starts; it answers as created `queued`, as any enqueue of it would (the claim says `running`). */
  const started = (t: NewTask, i: number, start: InsertStart): EnqueueResult => {
    const input = toJson(t.input);
    const options = toJson(t.options);
    const history = historyLine(null, 'queued', t.createdAt, 0) + historyLine('queued', 'running', start.now, 1);
    const info = insertStarted.run(
      t.id, t.name, input, t.priority, t.weight, t.key ?? null, t.maxAttempts, t.createdAt, t.runAt, start.now,
      t.scheduleId ?? null, options, t.group ?? null, t.parentId ?? null, history, start.owner, start.leaseUntil, start.now, start.owner,
    );
    if (info.changes !== 1) return existing(t);
    writer.counted(null, 'queued');
    writer.counted('queued', 'running');
    start.started.set(i, startedRowOfNew(t, input, options));
    return { id: t.id, created: true, state: 'queued' };
  };

  return (tasks, start) => {
    const skipped: { map?: Map<string, EnqueueResult> } = {};
    const out = new Array<EnqueueResult>(tasks.length);
    const plain = (at: number): boolean => isPlain(tasks[at]!) && !start?.at.has(at);
    let i = 0;
    while (i < tasks.length) {
      if (start?.at.has(i)) {
        const t = tasks[i]!;
        // a child whose flow parent was not created (its key matched) is not either
        out[i] = (t.parentId !== undefined ? skipped.map?.get(t.parentId) : undefined) ?? started(t, i, start);
        i++;
        continue;
      }
      // a run of plain tasks (no dedup, flow or parent) with distinct ids goes in one INSERT; a repeated id ends it
      let end = i;
      const ids = new Set<string>();
      while (end < tasks.length && end - i < INSERT_CHUNK && plain(end) && !ids.has(tasks[end]!.id)) ids.add(tasks[end++]!.id);
      if (end - i >= 2) {
        const n = rowPiece(end - i, INSERT_CHUNK);
        insertPlain(tasks, i, i + n, out);
        i += n;
      } else {
        out[i] = one(tasks[i]!, skipped);
        i++;
      }
    }
    return out;
  };
}

/** A task that needs none of the per-task reads: no dedup, not a flow parent or child. */
function isPlain(t: NewTask): boolean {
  return t.dedup === undefined && t.flow === undefined && t.parentId === undefined;
}
