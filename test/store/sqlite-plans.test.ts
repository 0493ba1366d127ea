/**
 * SQLite query plans that must not depend on the statistics in the file. `PRAGMA optimize` at close (and any
 * ANALYZE) records `sqlite_stat1`/`sqlite_stat4` in whatever state the file is in at that moment, and the planner
 * then trusts them for as long as they last: a young file says every table holds a row or two, an idle one that no
 * task runs, one analyzed while a backlog waited for its time that nothing is due. Each statement below was seen
 * (or could be made) to pick a plan that reads the whole table or sorts every due row under one of these; the
 * table-driven test checks each against files whose statistics were taken in every such state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { GROUP_FILTER, PRUNE_EVENTS_SQL, RECENT_EVENTS_SQL } from '../../src/store/sqlite/queries/claim-gated.ts';
import { leaseManySql } from '../../src/store/sqlite/queries/claim.ts';
import { CLAIM_COLUMNS, NEXT_LEVEL, TOP_LEVEL, dueOfName } from '../../src/store/sqlite/queries/claim-order.ts';
import { historyLine } from '../../src/store/history-line.ts';
import { appendHistorySql } from '../../src/store/sqlite/queries/record-transition.ts';
import { ID_INDEX, succeedManySql } from '../../src/store/sqlite/queries/settle.ts';
import { DUE_WAITING_SQL, oldestDueSql } from '../../src/store/sqlite/queries/counts.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Strategy } from '../../src/store/store.ts';
import { tempDb } from '../helpers/temp-db.ts';

const T0 = Date.UTC(2026, 0, 1);
/** Rows per file: enough for the statistics to say what the state is (the planner compares estimates, not sizes). */
const N = 4000;

/** The states a file's statistics can be taken in, each different from the one the store later serves. */
const STATES = ['young', 'idle', 'queued', 'scheduled', 'running'] as const;
type StatsState = (typeof STATES)[number];

/**
 * A store file of `strategy` whose statistics were taken in `state` (rows written directly, then ANALYZE):
 * young: a few rows in each table; idle: everything finished; queued: a backlog due now, nothing ran;
 * scheduled: a backlog due later; running: many running, rate events recorded.
 */
async function fileWithStats(strategy: Strategy, state: StatsState): Promise<string> {
  const path = tempDb(`sqlite-plans-${state}`);
  const store = createSqliteStore(path, { strategy });
  await store.open();
  await store.close();
  const db = new Database(path);
  try {
    db.pragma('foreign_keys = OFF');
    const n = state === 'young' ? 3 : N;
    const stateOf = (i: number): string =>
      state === 'young' || state === 'idle' ? 'succeeded' : state === 'queued' ? 'queued' : state === 'scheduled' ? 'scheduled' : i % 2 ? 'running' : 'queued';
    const insert = db.prepare(`INSERT INTO tasks (id, name, state, priority, weight, max_attempts, attempts, created_at, run_at, updated_at,
      finished_at, owner, lease_until, grp, history) VALUES (?, ?, ?, ?, 1, 3, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const id = createTaskId(T0 + i);
        const st = stateOf(i);
        const runAt = st === 'scheduled' ? T0 + 86_400_000 + i : T0 + i;
        insert.run(id, `job${i % 4}`, st, i % 3, st === 'queued' || st === 'scheduled' ? 0 : 1, T0 + i, runAt, T0 + i,
          st === 'succeeded' ? T0 + i : null, st === 'running' ? `node${i % 4}` : null, st === 'running' ? T0 + 60_000 : null, i % 10 ? null : `g${i % 7}`,
          historyLine(null, 'queued', T0 + i, 0));
      }
      const events = state === 'young' ? 1 : state === 'running' ? N : 0;
      const event = db.prepare('INSERT INTO rate_events (name, grp, at) VALUES (?, ?, ?)');
      for (let i = 0; i < events; i++) event.run('job1', `g${i % 7}`, T0 + i);
    })();
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
  return path;
}

const explain = (db: Database.Database, sql: string, params: unknown): string =>
  db
    .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
    .all(...(Array.isArray(params) ? params : [params]))
    .map((r) => r.detail)
    .join(' | ');

interface PlanCase {
  what: string;
  /** Only on files of these strategies (the claim indexes exist only for their strategy). */
  strategies?: readonly Strategy[];
  sql: string;
  /** Each set of parameters is checked: a plan under STAT4 depends on the values bound. */
  params: readonly unknown[];
  expect: RegExp;
  forbid: RegExp;
}

const now = { early: T0 + 1, late: T0 + 10 * 86_400_000 };
const byName = (strategy: 'fifo' | 'priority', filter = ''): string => `SELECT ${CLAIM_COLUMNS} FROM tasks ${dueOfName(strategy, filter)} LIMIT @limit`;
const gate = { groups: JSON.stringify(['g1']), pairs: JSON.stringify([`job1\u001fg2`]) };
const successes = (rows: number): unknown[] => Array.from({ length: rows }, (_, i) => [createTaskId(T0 + i), '1', T0, 'node0', 1]).flat();

const CASES: readonly PlanCase[] = [
  ...[2, 64].map(
    (rows): PlanCase => ({
      what: `settle: ${rows} successes in one UPDATE`,
      sql: succeedManySql(rows),
      params: [successes(rows)],
      expect: new RegExp(`SEARCH tasks USING INDEX ${ID_INDEX} \\(id=\\?\\)`),
      forbid: /tasks_running|SCAN tasks/,
    }),
  ),
  ...[2, 8, 64].map(
    (rows): PlanCase => ({
      what: `claim: the lease of ${rows} rows in one UPDATE`,
      sql: leaseManySql(rows),
      params: [['node0', T0 + 60_000, T0, T0, T0, T0, 'node0', ...Array.from({ length: rows }, (_, i) => createTaskId(T0 + i))]],
      expect: new RegExp(`SEARCH tasks USING INDEX ${ID_INDEX} \\(id=\\?\\)`),
      forbid: /SCAN tasks/,
    }),
  ),
  ...(['', GROUP_FILTER] as const).map(
    (filter): PlanCase => ({
      what: `claim (priority${filter ? ', gated' : ''}): the due rows of one level, in order`,
      strategies: ['priority'],
      sql: byName('priority', filter),
      params: [now.early, now.late].flatMap((at) => [1, 64].map((limit) => ({ name: 'job1', priority: 2, now: at, limit, ...(filter ? gate : {}) }))),
      expect: /SEARCH tasks USING INDEX tasks_due_name_priority \(name=\? AND priority=\? AND run_at<\?\)/,
      forbid: /TEMP B-TREE|ANY\(|SCAN tasks/,
    }),
  ),
  {
    what: 'claim (priority): the highest level of a name',
    strategies: ['priority'],
    sql: TOP_LEVEL,
    params: [{ name: 'job1' }],
    expect: /SEARCH tasks USING (COVERING )?INDEX tasks_due_name_priority \(name=\?\)/,
    forbid: /TEMP B-TREE|SCAN tasks/,
  },
  {
    what: 'claim (priority): the next level down',
    strategies: ['priority'],
    sql: NEXT_LEVEL,
    params: [{ name: 'job1', below: 2 }],
    expect: /SEARCH tasks USING (COVERING )?INDEX tasks_due_name_priority \(name=\? AND priority[<>]\?\)/,
    forbid: /TEMP B-TREE|SCAN tasks/,
  },
  ...(['', GROUP_FILTER] as const).map(
    (filter): PlanCase => ({
      what: `claim (fifo${filter ? ', gated' : ''}): the due rows of one name, in order`,
      strategies: ['fifo'],
      sql: byName('fifo', filter),
      params: [now.early, now.late].map((at) => ({ name: 'job1', now: at, limit: 64, ...(filter ? gate : {}) })),
      expect: /SEARCH tasks USING INDEX tasks_due_name \(name=\? AND run_at<\?\)/,
      forbid: /TEMP B-TREE|ANY\(|SCAN tasks/,
    }),
  ),
  {
    what: 'counts: the scheduled and retrying tasks due, a range of tasks_waiting',
    sql: DUE_WAITING_SQL,
    params: [now.early, now.late],
    expect: /SEARCH tasks USING (COVERING )?INDEX tasks_waiting \(run_at<\?\)/,
    forbid: /SCAN tasks|TEMP B-TREE/,
  },
  ...(['fifo', 'priority'] as const).map(
    (strategy): PlanCase => ({
      what: `counts (${strategy}): the oldest due time, from the claim index`,
      strategies: [strategy],
      sql: oldestDueSql(strategy === 'fifo' ? 'tasks_due_name' : 'tasks_due_name_priority'),
      params: [now.early, now.late],
      expect: new RegExp(`(SEARCH|SCAN) tasks USING (COVERING )?INDEX ${strategy === 'fifo' ? 'tasks_due_name' : 'tasks_due_name_priority'}\\b`),
      forbid: /TEMP B-TREE|SCAN tasks$/,
    }),
  ),
  {
    what: 'gated claim: the starts of a rate-limited name in its window',
    sql: RECENT_EVENTS_SQL,
    params: [['job1', T0 + N - 100], ['job1', T0 - 1]],
    expect: /SEARCH rate_events USING INDEX rate_events_name \(name=\? AND at>\?\)/,
    forbid: /SCAN rate_events/,
  },
  {
    what: 'gated claim: events out of the window',
    sql: PRUNE_EVENTS_SQL,
    params: [['job1', T0 + 100], ['job1', T0 + 10 * N]],
    expect: /SEARCH rate_events USING INDEX rate_events_name \(name=\? AND at<\?\)/,
    forbid: /SCAN rate_events/,
  },
  ...[2, 64].map(
    (rows): PlanCase => ({
      what: `history: the lines of ${rows} tasks appended in one UPDATE`,
      sql: appendHistorySql(rows),
      params: [Array.from({ length: rows }, (_, i) => [createTaskId(T0 + i), historyLine('queued', 'running', T0, 1)]).flat()],
      expect: new RegExp(`SEARCH tasks USING INDEX ${ID_INDEX} \\(id=\\?\\)`),
      forbid: /SCAN tasks/,
    }),
  ),
];

describe('SQLite plans under statistics taken in another state', () => {
  it('every pinned statement keeps its plan whatever state the statistics were taken in', async () => {
    for (const strategy of ['fifo', 'priority'] as const) {
      for (const state of STATES) {
        const db = new Database(await fileWithStats(strategy, state), { readonly: true });
        try {
          for (const c of CASES) {
            if (c.strategies && !c.strategies.includes(strategy)) continue;
            for (const params of c.params) {
              const detail = explain(db, c.sql, params);
              const where = `${c.what} [${strategy}, statistics ${state}, ${JSON.stringify(params).slice(0, 80)}]: ${detail}`;
              assert.match(detail, c.expect, where);
              assert.doesNotMatch(detail, c.forbid, where);
            }
          }
        } finally {
          db.close();
        }
      }
    }
  });

  it('the statistics really are the ones described (the idle file says nothing runs, the young one that tables are tiny)', async () => {
    const stat = (path: string, idx: string): string | undefined => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare<[string], { stat: string }>('SELECT stat FROM sqlite_stat1 WHERE idx = ?').get(idx)?.stat;
      } finally {
        db.close();
      }
    };
    const running = stat(await fileWithStats('fifo', 'idle'), 'tasks_running');
    assert.ok(running === undefined || running.startsWith('0'), `tasks_running looks empty to the planner (${running})`);
    assert.match(stat(await fileWithStats('fifo', 'young'), 'rate_events_name') ?? '', /^1 /);
    assert.match(stat(await fileWithStats('priority', 'scheduled'), 'tasks_due_name_priority') ?? '', new RegExp(`^${N} `));
  });

  it('a priority claim takes due tasks level by level, past higher levels that are not due yet, plain and gated', async () => {
    const path = tempDb('sqlite-plans-levels');
    const store = createSqliteStore(path, { strategy: 'priority' });
    await store.open();
    try {
      let at = T0;
      const task = (priority: number, runAt: number, group?: string) => ({
        id: createTaskId(at++), name: 'job', input: null, priority, weight: 1, maxAttempts: 1, createdAt: T0, runAt, ...(group ? { group } : {}),
      });
      const later = T0 + 3_600_000;
      // level 9: not due yet; level 5: two due (the second one earlier), one later; level 1: three due; level 0: one due
      const tasks = [task(9, later), task(9, later), task(5, T0 + 20), task(5, T0 + 10, 'g'), task(5, later), task(1, T0 + 5), task(1, T0 + 6, 'g'), task(1, T0 + 7), task(0, T0)];
      await store.enqueue(tasks);
      const now = T0 + 100;
      const first = await store.claim({ owner: 'a', limit: 3, leaseMs: 60_000, now, names: ['job'] });
      assert.deepEqual(first.map((t) => t.id), [tasks[3]!.id, tasks[2]!.id, tasks[5]!.id]);
      // gated: group g at most one running (tasks[3] runs), so tasks[6] is passed over
      const second = await store.claim({ owner: 'a', limit: 5, leaseMs: 60_000, now, names: ['job'], groupLimits: { job: 1 } });
      assert.deepEqual(second.map((t) => t.id), [tasks[7]!.id, tasks[8]!.id]);
      // once due, the higher level comes first again
      const third = await store.claim({ owner: 'a', limit: 5, leaseMs: 60_000, now: later, names: ['job'] });
      assert.deepEqual(third.map((t) => t.id), [tasks[0]!.id, tasks[1]!.id, tasks[4]!.id, tasks[6]!.id]);
      assert.deepEqual(await store.claim({ owner: 'a', limit: 5, leaseMs: 60_000, now: later, names: ['job'] }), []);
    } finally {
      await store.close();
    }
  });

  it('a store on an idle-statistics file settles a batch of successes and refuses the ones it no longer holds', async () => {
    const path = tempDb('sqlite-plans');
    let store = createSqliteStore(path);
    await store.open();
    await store.enqueue(
      Array.from({ length: 200 }, (_, i) => ({ id: createTaskId(T0 + i), name: 'job', input: i, priority: 0, weight: 1, maxAttempts: 1, createdAt: T0, runAt: T0 })),
    );
    await store.close();
    const raw = new Database(path);
    raw.exec('ANALYZE');
    raw.close();
    store = createSqliteStore(path);
    await store.open();
    try {
      const claimed = await store.claim({ owner: 'a', limit: 64, leaseMs: 60_000, now: T0 + 1, names: ['job'] });
      assert.equal(claimed.length, 64);
      const ops = claimed.map((t, i) => ({ type: 'succeeded' as const, id: t.id, owner: i === 3 ? 'b' : 'a', attempt: t.attempts, at: T0 + 2, result: i }));
      const out = await store.settle(ops);
      assert.deepEqual(out, ops.map((_, i) => i !== 3));
      assert.equal((await store.get(claimed[5]!.id))?.result, 5);
      assert.equal((await store.get(claimed[3]!.id))?.state, 'running');
      assert.equal((await store.counts(T0 + 3)).byState.succeeded, 63);
    } finally {
      await store.close();
    }
  });
});
