/**
 * Plan audit of the SQLite store: every statement it prepares while a workload runs each verb (output statements
 * included, though they are not checked anywhere else), captured with the parameters it was first run with, then
 * EXPLAIN QUERY PLAN against files whose statistics were taken in states other than the one the store serves:
 * tiny (the workload's own file, analyzed by `PRAGMA optimize` at close), young (3 finished tasks), idle (everything
 * finished), queued (many queued, nothing ran), scheduled (many waiting for a later time), running (many running,
 * rate events recorded). Prints each statement's plans, grouped by plan; `OUT` names a JSON copy, `NOW_OFFSET` the
 * claim time after T0 (1 ms by default: few rows due per the statistics; 1e9: all due), `KEEP=1` keeps the files.
 * Usage: npx tsx bench/plan-audit.ts [rows=200000]
 * The plans that must not change are checked by test/store/sqlite-plans.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Strategy } from '../src/store/store.ts';

const ROWS = Number(process.argv[2] ?? 200_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-audit-'));
const T0 = Date.UTC(2026, 0, 1);

// capture statements and their first parameters
const captured = new Map<string, unknown[]>();
const proto = Database.prototype as unknown as { prepare: (sql: string) => unknown };
const origPrepare = proto.prepare;
let capturing = false;
proto.prepare = function (this: Database.Database, sql: string) {
  const stmt = origPrepare.call(this, sql) as Record<string, (...a: unknown[]) => unknown>;
  if (!capturing) return stmt;
  if (!captured.has(sql)) captured.set(sql, []);
  for (const m of ['run', 'get', 'all', 'iterate']) {
    const f = stmt[m]!;
    stmt[m] = function (this: unknown, ...args: unknown[]) {
      const seen = captured.get(sql)!;
      if (seen.length === 0 || (seen.length === 1 && seen[0] === undefined)) captured.set(sql, args.length ? args : [undefined]);
      return f.apply(this, args);
    } as never;
  }
  return stmt;
} as never;

let n = 0;
const id = (at: number) => `0${(at + n++).toString(36).padStart(11, '0')}xx${String(n).padStart(10, '0')}`;
const task = (name: string, extra: Record<string, unknown> = {}) => ({ id: id(T0), name, input: 1, priority: 0, weight: 1, maxAttempts: 3, createdAt: T0, runAt: T0, ...extra });

async function workload(strategy: Strategy): Promise<void> {
  const store = createSqliteStore(path.join(dir, `w-${strategy}.db`), { strategy });
  await store.open();
  await store.enqueue([task('a')]);
  for (const k of [2, 4, 8, 16, 32]) await store.enqueue(Array.from({ length: k }, () => task('a', { group: 'g1' })));
  await store.enqueue(Array.from({ length: 64 }, () => task('b')));
  await store.enqueue([task('a', { key: 'k1' }), task('a', { key: 'k1' })]);
  await store.enqueue([task('a', { dedup: { key: 'd', mode: 'throttle', windowMs: 1000 } })]);
  await store.enqueue([task('a', { dedup: { key: 'd2', mode: 'debounce', windowMs: 1000 } })]);
  await store.enqueue([task('a', { dedup: { key: 'd2', mode: 'debounce', windowMs: 1000 } })]);
  const parent = task('p', { flow: { pending: 2, policy: 'fail' } });
  await store.enqueue([parent, task('c', { parentId: parent.id }), task('c', { parentId: parent.id })]);
  await store.enqueue([task('s', { scheduleId: 'sch', runAt: T0 + 10_000 })]);
  const now = T0 + Number(process.env.NOW_OFFSET ?? 1);
  const c1 = await store.claim({ owner: 'o1', limit: 1, leaseMs: 1000, now, names: ['a'] });
  const c2 = await store.claim({ owner: 'o1', limit: 64, leaseMs: 1000, now, names: ['a', 'b'], perName: { a: 10 } });
  const c3 = await store.claim({ owner: 'o2', limit: 4, leaseMs: 1000, now });
  const c4 = await store.claim({ owner: 'o2', limit: 4, leaseMs: 1000, now, names: ['a', 'b', 'c'], groupLimits: { a: 1 }, rateLimits: { b: { max: 5, perMs: 1000, by: 'group' } }, excludeGroups: ['gx'], exclude: ['z'] });
  const c5 = await store.claim({ owner: 'o2', limit: 4, leaseMs: 1000, now, names: ['c', 'b'], exclude: ['z'] });
  await store.heartbeat('o1', now + 5000);
  await store.heartbeat('o1', now + 5000, c2.slice(0, 2).map((t) => t.id));
  const all = [...c1, ...c2, ...c3, ...c4, ...c5];
  const at = now + 1;
  const s = (t: (typeof all)[number], i: number) => ({ type: 'succeeded' as const, id: t.id, owner: t.owner!, attempt: t.attempts, at, result: i });
  await store.settle([s(all[0]!, 0)]);
  await store.settle(all.slice(1, 3).map(s));
  await store.settle(all.slice(3, 67).map(s));
  const err = { name: 'Error', message: 'x' };
  const rest = all.slice(67);
  if (rest.length >= 5) {
    await store.settle([{ type: 'failed', id: rest[0]!.id, owner: rest[0]!.owner!, attempt: rest[0]!.attempts, at, error: err }]);
    await store.settle([{ type: 'retry', id: rest[1]!.id, owner: rest[1]!.owner!, attempt: rest[1]!.attempts, at, runAt: at + 10, error: err }]);
    await store.settle([{ type: 'release', id: rest[2]!.id, owner: rest[2]!.owner!, attempt: rest[2]!.attempts, at, reason: 'x' }]);
    await store.settle([{ type: 'progress', id: rest[3]!.id, at, progress: { done: 1 } as never }]);
    await store.cancel(rest[4]!.id, at);
  }
  await store.retry(all[0]!.id, at);
  await store.recoverExpired(now + 100_000);
  await store.counts(now);
  await store.nextRunAt();
  await store.get(all[0]!.id);
  await store.history(all[0]!.id);
  for (const f of [{}, { state: 'running' as const }, { state: ['failed' as const, 'cancelled' as const] }, { state: 'queued' as const }, { name: 'a' }, { scheduleId: 'sch' }, { parentId: parent.id }, { group: 'g1' }, { since: T0 }, { cursor: all[5]!.id }, { name: 'a', state: 'queued' as const, cursor: all[5]!.id }])
    await store.list({ ...f, limit: 50 });
  await store.purge({ finishedBefore: at + 1 });
  await store.saveSchedule({ id: 'sch', task: 's', everyMs: 1000, overlap: 'allow', paused: false, createdAt: T0 } as never);
  await store.getSchedule('sch');
  await store.listSchedules();
  await store.markScheduleSlot('sch', 5);
  await store.deleteSchedule('sch');
  await store.setMeta('x', 'y');
  await store.getMeta('x');
  await store.setMeta('x', undefined);
  await store.close();
}

/** Builds a file with statistics taken in one state (direct INSERTs; the schema from the store itself). */
async function statsFile(strategy: Strategy, state: 'young' | 'idle' | 'queued' | 'scheduled' | 'running'): Promise<string> {
  const file = path.join(dir, `${strategy}-${state}.db`);
  const store = createSqliteStore(file, { strategy });
  await store.open();
  await store.close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const names = ['a', 'b', 'c', 'd'];
  const ins = db.prepare(`INSERT INTO tasks (id, name, state, priority, weight, max_attempts, created_at, run_at, updated_at, started_at, finished_at,
    owner, lease_until, attempts, grp, parent_id, dedup_key, key, schedule_id)
    VALUES (?, ?, ?, ?, 1, 3, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (let i = 0; i < (state === 'young' ? 3 : ROWS); i++) {
      const tid = `0${(T0 + i).toString(36).padStart(11, '0')}${String(i).padStart(10, '0')}`;
      let st: string;
      if (state === 'idle' || state === 'young') st = 'succeeded';
      else if (state === 'queued') st = 'queued';
      else if (state === 'scheduled') st = 'scheduled';
      else st = i % 20 === 0 ? 'running' : i % 4 === 0 ? 'queued' : 'succeeded';
      const fin = st === 'succeeded' ? T0 + i : null;
      const run = st === 'running';
      ins.run(tid, names[i % 4], st, i % 3, T0 + i, st === 'scheduled' ? T0 + 10_000_000_000 + i : T0 + i, T0 + i, st === 'queued' || st === 'scheduled' ? null : T0 + i, fin, run ? `o${i % 8}` : null, run ? T0 + i + 60_000 : null,
        st === 'queued' || st === 'scheduled' ? 0 : 1, i % 10 === 0 ? `g${i % 100}` : null, i % 50 === 1 ? `p${Math.floor(i / 500)}` : null, i % 30 === 0 ? `d${i % 1000}` : null,
        i % 40 === 0 ? `k${i}` : null, i % 60 === 0 ? `s${i % 5}` : null);
    }
  })();
  // history: two transitions per task; rate events: a few thousand in the running state only
  db.exec(`UPDATE tasks SET history = '-q' || created_at || ',0' || char(10)`);
  if (state !== 'queued') db.exec(`UPDATE tasks SET history = history || 'qr' || created_at || ',1' || char(10) WHERE state <> 'queued'`);
  if (state === 'young') db.exec(`INSERT INTO rate_events VALUES ('b', '', ${T0})`);
  if (state === 'running') db.exec(`WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < 4999) INSERT INTO rate_events (name, grp, at) SELECT 'b', 'g' || (i % 10), ${T0} + i FROM r`);
  db.exec('ANALYZE');
  db.close();
  return file;
}

function explain(db: Database.Database, sql: string, params: unknown[]): string {
  const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  let args = params.length === 1 && params[0] === undefined ? [] : params;
  if (args.length === 0 && /\?/.test(sql)) {
    // never run by the workload: NULLs, as many as it takes
    for (let k = 1; k < 400; k++) {
      try {
        stmt.all(...Array(k).fill(null));
        args = Array(k).fill(null);
        break;
      } catch {}
    }
  }
  return (stmt.all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');
}

const strategies: Strategy[] = ['fifo', 'priority', 'weighted-random'];
const out: Record<string, Record<string, Record<string, string>>> = {};
for (const strategy of strategies) {
  captured.clear();
  capturing = true;
  await workload(strategy);
  capturing = false;
  const stmts = [...captured].filter(([sql]) => !/^\s*(PRAGMA|SELECT 1 FROM sqlite_schema)/i.test(sql));
  const files = { tiny: path.join(dir, `w-${strategy}.db`) } as Record<string, string>;
  for (const st of ['young', 'idle', 'queued', 'scheduled', 'running'] as const) files[st] = await statsFile(strategy, st);
  for (const [sql, params] of stmts) {
    const key = sql.replace(/\s+/g, ' ');
    const row = ((out[key] ??= {})[strategy] = {} as Record<string, string>);
    row.params = JSON.stringify(params).slice(0, 300);
    for (const [st, file] of Object.entries(files)) {
      const db = new Database(file, { readonly: true });
      try {
        row[st] = explain(db, sql, params);
      } catch (e) {
        row[st] = `ERR ${(e as Error).message}`;
      } finally {
        db.close();
      }
    }
  }
}
if (process.env.OUT) fs.writeFileSync(process.env.OUT, JSON.stringify(out, null, 1));
for (const [sql, byStrategy] of Object.entries(out)) {
  // strategy/state labels by plan: one line per distinct plan
  const byPlan = new Map<string, string[]>();
  for (const [strategy, r] of Object.entries(byStrategy))
    for (const [st, p] of Object.entries(r)) if (st !== 'params') byPlan.set(p, [...(byPlan.get(p) ?? []), `${strategy}/${st}`]);
  console.log(`\n### ${sql.slice(0, 300)}${byPlan.size > 1 ? '\n  (the plan depends on the statistics)' : ''}`);
  for (const [p, where] of byPlan) console.log(`  [${where.join(', ')}] ${p}`);
}
if (process.env.KEEP) console.error(`kept ${dir}`);
else fs.rmSync(dir, { recursive: true, force: true });
