/**
 * The due condition, the strategy orders and the per-name walk every SQLite claim uses (plain and gated).
 *
 * fifo, lifo and priority claim through a partial index that leads with the name (`tasks_due_name`,
 * `tasks_due_name_priority`): each allowed name is read in the strategy's order from its own part of the index,
 * and the names are merged here. So a claim reads about as many rows as it takes, however deep the queue and
 * however many of its names are excluded (paused, or at their cap): an index in global order would have to be
 * walked past every due row of an excluded name to find nothing. A claim whose names are all excluded runs no
 * query at all.
 *
 * priority reads a name one priority level at a time (`prepareDueOfName`): the due rows of a level are a range of
 * the index in claim order (name, priority, run_at ≤ now), and the next level down is one seek. A single statement
 * over all levels has no plan that is right for every queue: walking the name in index order reads past every
 * not-yet-due row of the higher levels, and the skip-scan the planner picks when its statistics say few rows are
 * due reads and sorts every due row of the name (both measured below, at prepareDueOfName).
 */
import type Database from 'better-sqlite3';
import type { Strategy } from '../../store.ts';
import { TASK_COLUMNS, type TaskRow } from './rows.ts';

/** A claimable row and its rowid: a lease of one row updates it by rowid, one B-tree descent less than by id. */
export type ClaimRow = TaskRow & { rid: number };

/** The columns a claim selects (a `ClaimRow`). */
export const CLAIM_COLUMNS = `rowid AS rid, ${TASK_COLUMNS}`;

export const DUE = `state IN ('queued', 'scheduled', 'retrying') AND run_at <= @now`;

/** Only the names this node runs, never the excluded ones (paused, or at their cap). weighted-random uses it. */
export const NAME_FILTER = `AND (@names IS NULL OR name IN (SELECT value FROM json_each(@names)))
  AND (@exclude IS NULL OR name NOT IN (SELECT value FROM json_each(@exclude)))`;

export type OrderedStrategy = Exclude<Strategy, 'weighted-random'>;

/** The name-leading partial index each ordered strategy claims through (see migrations.ts). */
export const NAME_INDEX: Readonly<Record<OrderedStrategy, string>> = Object.freeze({
  fifo: 'tasks_due_name',
  lifo: 'tasks_due_name',
  priority: 'tasks_due_name_priority',
});

/** The claim order of fifo and lifo (priority is read level by level: prepareDueOfName). */
const ORDER_BY: Readonly<Record<Exclude<OrderedStrategy, 'priority'>, string>> = Object.freeze({
  fifo: 'run_at, id',
  lifo: 'run_at DESC, id DESC',
});

/**
 * `FROM tasks <this> LIMIT @limit`: the due rows of `@name` passing `filter`, in the strategy's order; for priority,
 * those of one level (`@priority`), in the order within it.
 */
export function dueOfName(strategy: OrderedStrategy, filter = ''): string {
  if (strategy === 'priority') return `INDEXED BY ${NAME_INDEX.priority} WHERE name = @name AND priority = @priority AND ${DUE} ${filter} ORDER BY run_at, id`;
  return `INDEXED BY ${NAME_INDEX[strategy]} WHERE name = @name AND ${DUE} ${filter} ORDER BY ${ORDER_BY[strategy]}`;
}

/** The claimable rows of a name whose priority is below `@below`: the next level down is the first one's. */
export const NEXT_LEVEL = `SELECT priority FROM tasks INDEXED BY ${NAME_INDEX.priority}
  WHERE name = @name AND state IN ('queued', 'scheduled', 'retrying') AND priority < @below ORDER BY priority DESC LIMIT 1`;
/** The highest priority among the claimable rows of a name. */
export const TOP_LEVEL = `SELECT priority FROM tasks INDEXED BY ${NAME_INDEX.priority}
  WHERE name = @name AND state IN ('queued', 'scheduled', 'retrying') ORDER BY priority DESC LIMIT 1`;

/** What a fetch of one name's due rows binds (plus the parameters of its filter). */
export type DueParams = { name: string; now: number; limit: number } & Record<string, unknown>;

/**
 * Why: the first `limit` due rows of a name in the strategy's order, each fetch reading about as many rows as it
 * returns whatever the statistics in the file say. fifo and lifo: one statement. priority: level by level, from the
 * highest, one seek per level plus the level's due rows. Measured, a claim of 64 (lease included) with one
 * statement for all levels vs level by level: 100,000 due tasks on three levels, statistics taken while they were
 * all scheduled for later (the planner chose a skip-scan and sorted every due row): 10.9 ms vs 1.1 ms; 20,000 due
 * behind 100,000 higher-priority tasks not yet due, statistics taken while nothing was claimable (the name walked in
 * order, past every one of them): 6.0 ms vs 0.85 ms; 100,000 due, statistics that fit: 0.99 ms vs 1.00 ms.
 */
export function prepareDueOfName(db: Database.Database, strategy: OrderedStrategy, filter = ''): (params: DueParams) => ClaimRow[] {
  const rows = db.prepare<[DueParams], ClaimRow>(`SELECT ${CLAIM_COLUMNS} FROM tasks ${dueOfName(strategy, filter)} LIMIT @limit`);
  if (strategy !== 'priority') return (params) => rows.all(params);
  const top = db.prepare<[{ name: string }], number>(TOP_LEVEL).pluck();
  const next = db.prepare<[{ name: string; below: number }], number>(NEXT_LEVEL).pluck();
  return (params) => {
    const out: ClaimRow[] = [];
    const { name, limit } = params;
    for (let level = top.get({ name }); level !== undefined && out.length < limit; level = next.get({ name, below: level })) {
      for (const row of rows.all({ ...params, priority: level, limit: limit - out.length })) out.push(row);
    }
    return out;
  };
}

type Keys = Pick<TaskRow, 'id' | 'priority' | 'run_at'>;

const byTime = (a: Keys, b: Keys): number => a.run_at - b.run_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The strategy's order in JavaScript, the same as its ORDER BY (ids are ASCII, so BINARY collation = `<`). */
export const COMPARE: Readonly<Record<OrderedStrategy, (a: Keys, b: Keys) => number>> = Object.freeze({
  fifo: byTime,
  lifo: (a: Keys, b: Keys) => byTime(b, a),
  priority: (a: Keys, b: Keys) => b.priority - a.priority || byTime(a, b),
});

/**
 * Why: the names with claimable rows, one index seek each (a skip scan), for a claim that does not list its
 * names. Not-yet-due rows count too; their name's walk then simply finds nothing.
 */
export function prepareClaimableNames(db: Database.Database, strategy: OrderedStrategy): () => string[] {
  const next = db.prepare<[string], { name: string }>(
    `SELECT name FROM tasks INDEXED BY ${NAME_INDEX[strategy]}
     WHERE state IN ('queued', 'scheduled', 'retrying') AND name > ? ORDER BY name LIMIT 1`,
  );
  return () => {
    const names: string[] = [];
    for (let row = next.get(''); row; row = next.get(row.name)) names.push(row.name);
    return names;
  };
}

/** Rows fetched per name at a time when several names are merged (one name fetches what the claim wants). */
const CHUNK = 16;

/**
 * Why: walks the due rows of several names in the strategy's order. Each name's rows are fetched in chunks and a
 * name is fetched again when its chunk has been used up, so only the rows a claim takes are read, plus at most a
 * chunk per name. The caller must take (lease) every row `next` hands out before the name's next fetch, or drop the
 * name: a fetch returns the first due rows of the name, and the taken ones have left the index by then.
 */
export class DueMerge {
  readonly #fetch: (name: string, limit: number) => ClaimRow[];
  readonly #compare: (a: Keys, b: Keys) => number;
  readonly #heads = new Map<string, { rows: ClaimRow[]; at: number; more: boolean }>();
  readonly #chunk: (want: number) => number;

  /** `fetch(name, n)`: the first `n` due rows of `name`, in the strategy's order. */
  constructor(names: Iterable<string>, fetch: (name: string, limit: number) => ClaimRow[], compare: (a: Keys, b: Keys) => number, want: number) {
    this.#fetch = fetch;
    this.#compare = compare;
    const list = [...new Set(names)];
    this.#chunk = list.length === 1 ? (w) => w : (w) => Math.min(w, CHUNK);
    for (const name of list) this.#load(name, want);
  }

  /** The next row in order, or undefined when no name has any left; `want` is how many the claim still needs. */
  next(want: number): ClaimRow | undefined {
    let best: ClaimRow | undefined;
    for (const [name, head] of this.#heads) {
      let row = head.rows[head.at];
      if (!row) {
        if (!head.more || !this.#load(name, want)) continue;
        row = this.#heads.get(name)!.rows[0]!;
      }
      if (!best || this.#compare(row, best) < 0) best = row;
    }
    if (best) this.#heads.get(best.name)!.at++;
    return best;
  }

  /** Leaves a name out of the rest of the walk (it reached its cap). */
  drop(name: string): void {
    this.#heads.delete(name);
  }

  /** Fetches a name's next chunk; false (and the name dropped) when it has no due rows left. */
  #load(name: string, want: number): boolean {
    const n = this.#chunk(want);
    const rows = n > 0 ? this.#fetch(name, n) : [];
    if (rows.length === 0) {
      this.#heads.delete(name);
      return false;
    }
    this.#heads.set(name, { rows, at: 0, more: rows.length === n });
    return true;
  }
}

/**
 * Why: the names a claim may take from: its `names` (or, when it lists none, every name with claimable rows)
 * minus the excluded ones. Empty: nothing to claim, without a query.
 */
export function allowedNames(names: readonly string[] | undefined, excluded: ReadonlySet<string>, claimable: () => string[]): string[] {
  const out: string[] = [];
  for (const name of new Set(names ?? claimable())) if (!excluded.has(name)) out.push(name);
  return out;
}
