/**
 * enqueue-start: the SQLite store's `enqueueAndClaim`, an enqueue that starts some of its own tasks in its insert,
 * as the claim would, when nothing else is due. Runs inside the caller's transaction.
 *
 * An idle node with free slots offers its claim to the next enqueue (the scheduler's claim offer): a task added to
 * an idle runtime, and every periodic slot, takes this path. Enqueue-then-claim writes the new row, then reads it
 * back through the claim index and writes it a second time (state, lease, history), each step touching its own
 * B-tree pages; on an idle node those pages have gone cold between two tasks, and each costs a cache miss. Here the
 * row is written once, `running` and leased (enqueue.ts, `InsertStart`).
 *
 * Which tasks: the ones start-plan.ts picks, the claim's first if the batch were all that is due. They start only
 * if no task of the claim's allowed names is due already (one fetch of a single row per name, through the claim's
 * own walk, claim-order.ts): a due task that was there first is the claim's to take, so then the batch is enqueued
 * and claimed as before. If a picked task was not inserted (its id or key was taken, or its flow parent's key
 * was), the claim takes what is left of its limit right after, in the same transaction.
 */
import type Database from 'better-sqlite3';
import type { NewTask, TaskRecord } from '../../../task.ts';
import { pickStarts } from '../../start-plan.ts';
import type { ClaimRequest, EnqueueAndClaimResult, Strategy } from '../../store.ts';
import { startedTaskFromRow, type StartedRow } from '../../task-row.ts';
import { prepareDueOfName } from './claim-order.ts';
import type { Enqueue } from './enqueue.ts';

/** Why: a new task on an idle node is written once, started, instead of enqueued and then claimed. */
export function prepareEnqueueAndClaim(
  db: Database.Database,
  strategy: Strategy,
  enqueue: Enqueue,
  claim: (request: ClaimRequest) => TaskRecord[],
): (tasks: readonly NewTask[], request: ClaimRequest) => EnqueueAndClaimResult {
  const due = strategy === 'weighted-random' ? undefined : prepareDueOfName(db, strategy);
  const enqueueThenClaim = (tasks: readonly NewTask[], request: ClaimRequest): EnqueueAndClaimResult => {
    const results = enqueue(tasks);
    return { results, claimed: request.limit > 0 ? claim(request) : [] };
  };
  return (tasks, request) => {
    const picks = due && pickStarts(tasks.map(candidate), strategy, request);
    if (!picks || picks.names.some((name) => due!({ name, now: request.now, limit: 1 }).length > 0)) return enqueueThenClaim(tasks, request);
    const { now, owner } = request;
    const leaseUntil = now + request.leaseMs;
    const started = new Map<number, StartedRow>();
    const results = enqueue(tasks, { at: new Set(picks.starts.map((s) => s.i)), owner, now, leaseUntil, started });
    const claimed: TaskRecord[] = [];
    for (const s of picks.starts) {
      const row = started.get(s.i);
      if (row) claimed.push(startedTaskFromRow(row, now, owner, leaseUntil));
    }
    if (claimed.length < picks.starts.length) claimed.push(...claim(rest(request, claimed)));
    return { results, claimed };
  };
}

/** The start-plan.ts view of a task of the batch, with its place in it. */
function candidate(t: NewTask, i: number) {
  return { i, id: t.id, name: t.name, key: t.key, createdAt: t.createdAt, runAt: t.runAt, priority: t.priority, flowPending: t.flow?.pending, dedup: t.dedup };
}

/** What is left of a claim after `taken`: its limit and each name's cap less what they took. */
function rest(request: ClaimRequest, taken: readonly TaskRecord[]): ClaimRequest {
  if (request.perName === undefined) return { ...request, limit: request.limit - taken.length };
  const perName = { ...request.perName };
  for (const t of taken) if (perName[t.name] !== undefined) perName[t.name]! -= 1;
  return { ...request, limit: request.limit - taken.length, perName };
}
