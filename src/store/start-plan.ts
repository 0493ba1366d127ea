/**
 * Which tasks of an enqueue's batch a claim would take first, decided before the write: the part of
 * `Store.enqueueAndClaim` that the SQL stores share when they start tasks in their own insert (SQLite:
 * queries/enqueue.ts; PostgreSQL: queries/enqueue-start.ts).
 *
 * An idle node offers its claim to the next enqueue. If nothing of the claim's names is due when the batch is
 * written, the claim right after the insert would take the batch's own due tasks, in the strategy's order, within
 * its limit and each name's cap. A store that knows which ones can write them `running` in the insert itself: one
 * row version instead of two, and on PostgreSQL one round trip instead of two. Whether anything was due is the
 * store's to check, in the same transaction (the `names` of the plan).
 *
 * No plan (the store enqueues, then claims) for a claim with group or rate limits or paused groups (claim-gate.ts),
 * one without a name list, the weighted-random strategy (its draw among classes is the claim's), a batch with dedup
 * modes (a debounce moves an existing task), one with a due task that is not a plain new one (created `scheduled`
 * but due by the claim's time, which the claim takes with its `due` transition; a flow parent without children, which
 * it takes with its children's outcomes), and a batch with no task the claim could take.
 */
import type { NewTask } from '../task.ts';
import { needsGate } from './claim-gate.ts';
import { compareForStrategy, type OrderKey } from './pick.ts';
import type { ClaimRequest, Strategy } from './store.ts';

/** What the plan reads of a task of the batch (a `NewTask`, or a store's row made from one). */
export interface StartCandidate extends OrderKey {
  readonly name: string;
  readonly key?: string | undefined;
  readonly createdAt: number;
  /** A flow parent's children still to end: it waits for them (a parent due at once takes the claim's path). */
  readonly flowPending?: number | undefined;
  readonly dedup?: NewTask['dedup'];
}

export interface StartPicks<T> {
  /** The claim's allowed names: a due task of one of them, already stored, keeps the batch from starting. */
  names: string[];
  /** The tasks to start, in claim order. */
  starts: T[];
  /** Every due task of the allowed names in the batch is among `starts` (the limit and the caps left none). */
  all: boolean;
}

/** Why: whether claims like `request` can be made in the insert at all, whatever the batch. */
export function startsInInsert(strategy: Strategy, request: Omit<ClaimRequest, 'now'>): boolean {
  return strategy !== 'weighted-random' && request.names !== undefined && !needsGate(request) && Math.floor(request.limit) >= 1;
}

/**
 * Why: decides, without the database, which tasks of `rows` (a batch, in order) the claim `request` would take
 * if they were all that is due; undefined when the claim cannot be made this way (see the file's comment). A task
 * whose id or key came earlier in the batch is left out (the earlier one is the task).
 */
export function pickStarts<T extends StartCandidate>(rows: readonly T[], strategy: Strategy, request: ClaimRequest): StartPicks<T> | undefined {
  if (request.names === undefined || !startsInInsert(strategy, request)) return undefined;
  const limit = Math.floor(request.limit);
  const excluded = new Set(request.exclude ?? []);
  const caps = request.perName ?? {};
  const names = request.names.filter((name) => !excluded.has(name) && (caps[name] ?? 1) > 0);
  if (names.length === 0) return undefined;
  const allowed = new Set(names);
  const ids = new Set<string>();
  const keys = new Set<string>();
  const candidates: T[] = [];
  for (const r of rows) {
    if (r.dedup !== undefined) return undefined;
    const repeated = ids.has(r.id) || (r.key !== undefined && keys.has(r.key));
    ids.add(r.id);
    if (r.key !== undefined) keys.add(r.key);
    if (repeated || !allowed.has(r.name) || (r.flowPending ?? 0) > 0 || r.runAt > request.now) continue;
    // due, but not as a plain new task: the claim would take it with what the insert cannot write
    if (r.runAt > r.createdAt || r.flowPending !== undefined) return undefined;
    candidates.push(r);
  }
  if (candidates.length === 0) return undefined;
  candidates.sort(compareForStrategy(strategy));
  const starts: T[] = [];
  const taken = new Map<string, number>();
  for (const r of candidates) {
    if (starts.length >= limit) break;
    const n = taken.get(r.name) ?? 0;
    const cap = caps[r.name];
    if (cap !== undefined && n >= cap) continue;
    taken.set(r.name, n + 1);
    starts.push(r);
  }
  return { names, starts, all: starts.length === candidates.length };
}
