/**
 * The claim gate: group concurrency, rate limits, paused groups and per-name caps, decided the same way by every
 * store. A store walks due tasks in strategy order and asks the gate about each one; the gate keeps the counts of
 * this claim and says which names and (name, group) pairs to leave out when the store selects again.
 *
 * Counts come from the store, per limited name, before the first task of that name is admitted (`load`):
 * - running: tasks of the name per group that are `running` anywhere (every node), for `groupLimits`;
 * - recent: starts of the name per group within its rate window (`rate_events` in the SQL stores), for
 *   `rateLimits`. A start is recorded for every task of a rate-limited name the claim takes (`starts`).
 * Windows are half-open: a start at `t` counts while `now - perMs < t`, so it frees its slot at `t + perMs`.
 *
 * When the claim ends short of its limit while something was held back, `finish` tells the caller
 * (`onHeldBack`) and when a rate window frees up first, so the scheduler can arm a timer instead of polling.
 */
import type { ClaimRequest, RateLimit } from './store.ts';

/** Separates name and group in a pair key (a control character no name or group contains). */
export const PAIR_SEPARATOR = '\u001f';

/** Why: one key for a (name, group) pair, used in SQL filters as well (`name || char(31) || coalesce(grp, '')`). */
export function pairKey(name: string, group: string | undefined): string {
  return name + PAIR_SEPARATOR + (group ?? '');
}

/** How long a PostgreSQL claim that found a limited name locked by another node waits before trying again. */
export const LOCKED_RETRY_MS = 50;

/** Counts of one limited name, as the store read them. */
export interface NameCounts {
  /** Running tasks per group (only tasks with a group). */
  running: ReadonlyMap<string, number>;
  /** Starts within the rate window per group ('' for tasks without one): how many and the oldest. */
  recent: ReadonlyMap<string, { n: number; oldest: number }>;
}

interface Loaded {
  running: Map<string, number>;
  recent: Map<string, { n: number; oldest: number }>;
  total: { n: number; oldest: number };
}

/** Why: an options record with at least one key (without building the array of its keys). */
export function hasEntries(record: Readonly<Record<string, unknown>> | undefined): boolean {
  if (record === undefined) return false;
  for (const _ in record) return true;
  return false;
}

/** Why: the fast claim path stays as it is unless a request uses groups or rate limits. */
export function needsGate(request: Pick<ClaimRequest, 'groupLimits' | 'rateLimits' | 'excludeGroups'>): boolean {
  return hasEntries(request.groupLimits) || hasEntries(request.rateLimits) || (request.excludeGroups?.length ?? 0) > 0;
}

/** Why: the names whose counts a claim needs (sorted, so that stores lock them in one order). */
export function limitedNames(request: ClaimRequest): string[] {
  const names = new Set<string>([...Object.keys(request.groupLimits ?? {}), ...Object.keys(request.rateLimits ?? {})]);
  if (request.names) {
    const only = new Set(request.names);
    for (const n of names) if (!only.has(n)) names.delete(n);
  }
  return [...names].sort();
}

export class ClaimGate {
  readonly #request: ClaimRequest;
  readonly #now: number;
  readonly #caps = new Map<string, number>();
  readonly #loaded = new Map<string, Loaded>();
  /** Names left out of the next selection: excluded by the request, capped, rate-exhausted or locked elsewhere. */
  readonly excludedNames = new Set<string>();
  /** (name, group) pairs left out: group full or its rate window exhausted. */
  readonly blockedPairs = new Set<string>();
  /** Rate events to record: one per started task of a rate-limited name. */
  readonly starts: Array<{ name: string; group: string; at: number }> = [];
  #changed = false;
  #heldBack = false;
  #retryAt: number | undefined;

  constructor(request: ClaimRequest) {
    this.#request = request;
    this.#now = request.now;
    for (const name of request.exclude ?? []) this.excludedNames.add(name);
    for (const [name, cap] of Object.entries(request.perName ?? {})) {
      if (cap > 0) this.#caps.set(name, cap);
      else this.excludedNames.add(name);
    }
  }

  /** Paused groups: tasks of these groups are never taken. */
  get excludedGroups(): readonly string[] {
    return this.#request.excludeGroups ?? [];
  }

  /** The rate limit of a name, if any. */
  rateOf(name: string): RateLimit | undefined {
    return this.#request.rateLimits?.[name];
  }

  /** True when the store must `load` this name's counts before its first task is admitted. */
  needsCounts(name: string): boolean {
    if (this.#loaded.has(name)) return false;
    return this.#request.groupLimits?.[name] !== undefined || this.#request.rateLimits?.[name] !== undefined;
  }

  /** Takes a name's counts and leaves out at once what is already full or exhausted. */
  load(name: string, counts: NameCounts): void {
    const loaded: Loaded = { running: new Map(counts.running), recent: new Map(), total: { n: 0, oldest: Infinity } };
    for (const [group, r] of counts.recent) {
      loaded.recent.set(group, { ...r });
      loaded.total.n += r.n;
      loaded.total.oldest = Math.min(loaded.total.oldest, r.oldest);
    }
    this.#loaded.set(name, loaded);
    const limit = this.#request.groupLimits?.[name];
    if (limit !== undefined) for (const [group, n] of loaded.running) if (n >= limit) this.#blockPair(name, group);
    const rate = this.rateOf(name);
    if (rate) {
      if (rate.by === 'name') {
        if (loaded.total.n >= rate.max) this.#exhaustName(name, loaded.total.oldest + rate.perMs);
      } else {
        for (const [group, r] of loaded.recent) if (r.n >= rate.max) this.#blockPair(name, group, r.oldest + rate.perMs);
      }
    }
  }

  /** The name is being claimed by another node right now (PostgreSQL lock taken): leave it for a moment. */
  unavailable(name: string): void {
    this.excludedNames.add(name);
    this.#changed = true;
    this.#hold(this.#now + LOCKED_RETRY_MS);
  }

  /** Whether a task of this name and group may start in this claim; counts it when so. Load its counts first. */
  admit(name: string, group: string | undefined): boolean {
    if (this.excludedNames.has(name)) return false;
    if (this.blockedPairs.size > 0 && this.blockedPairs.has(pairKey(name, group))) return false;
    const loaded = this.#loaded.get(name);
    const limit = this.#request.groupLimits?.[name];
    if (limit !== undefined && group !== undefined && loaded) {
      const n = (loaded.running.get(group) ?? 0) + 1;
      loaded.running.set(group, n);
      if (n >= limit) this.#blockPair(name, group);
    }
    const rate = this.rateOf(name);
    if (rate && loaded) {
      const key = group ?? '';
      const r = loaded.recent.get(key) ?? { n: 0, oldest: this.#now };
      r.n++;
      r.oldest = Math.min(r.oldest, this.#now);
      loaded.recent.set(key, r);
      loaded.total.n++;
      loaded.total.oldest = Math.min(loaded.total.oldest, this.#now);
      this.starts.push({ name, group: key, at: this.#now });
      if (rate.by === 'name') {
        if (loaded.total.n >= rate.max) this.#exhaustName(name, loaded.total.oldest + rate.perMs);
      } else if (r.n >= rate.max) this.#blockPair(name, group ?? '', r.oldest + rate.perMs);
    }
    const cap = this.#caps.get(name);
    if (cap !== undefined) {
      if (cap <= 1) {
        this.#caps.delete(name);
        this.excludedNames.add(name);
        this.#changed = true;
      } else this.#caps.set(name, cap - 1);
    }
    return true;
  }

  /** True once after something new was left out: the store should select again (rows it skipped may follow). */
  takeChanged(): boolean {
    const changed = this.#changed;
    this.#changed = false;
    return changed;
  }

  /** Reports a short claim that limits held back (see `ClaimRequest.onHeldBack`). */
  finish(claimed: number): void {
    if (!this.#heldBack || claimed >= this.#request.limit) return;
    try {
      this.#request.onHeldBack?.(this.#retryAt);
    } catch {
      // the caller's hint must not undo the claim
    }
  }

  #blockPair(name: string, group: string, retryAt?: number): void {
    const key = pairKey(name, group === '' ? undefined : group);
    if (!this.blockedPairs.has(key)) {
      this.blockedPairs.add(key);
      this.#changed = true;
    }
    this.#hold(retryAt);
  }

  #exhaustName(name: string, retryAt: number): void {
    if (!this.excludedNames.has(name)) {
      this.excludedNames.add(name);
      this.#changed = true;
    }
    this.#hold(retryAt);
  }

  #hold(retryAt: number | undefined): void {
    this.#heldBack = true;
    if (retryAt !== undefined && Number.isFinite(retryAt) && (this.#retryAt === undefined || retryAt < this.#retryAt)) this.#retryAt = retryAt;
  }
}
