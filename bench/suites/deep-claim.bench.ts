/**
 * A faster loop for the scale suite's store claim at depth (scale.bench.ts `claimRates`), for working on the schema:
 *
 *   npx tsx bench/suites/deep-claim.bench.ts build <file> [tasks=1000000] [--src <dir>]
 *   npx tsx bench/suites/deep-claim.bench.ts run <file>[@<dir>] … [--rounds 300] [--passes 1] [--src <dir>]
 *                                             [--cpu] [--profile] [--wal]
 *
 * `build` fills a file the way the scale suite does (tasks of one name queued in batches of 1000 through the store,
 * then 20,000 claimed and settled, as the drain at depth leaves it; closing the store runs `PRAGMA optimize`, so the
 * file carries the statistics of an idle queue, as the suite's does), so it can be built once and reused. `run`
 * copies each file to a scratch file (the original is left as built) and times claim 64 + settle 64 with 64 tasks
 * enqueued untimed before each claim, the files taking turns round by round (the order reversed every round). Per
 * file and pass it prints tasks/s, the claim and the settle (wall time), the process's CPU time (steadier than wall
 * time on a shared machine) and the round's median, p90 and max.
 *
 * - `<file>@<dir>` opens that file with the store of another checkout's src/ (`--src` sets the default), so two
 *   versions of the code run side by side in one process;
 * - `--profile` times every statement the store runs, per SQL text (`--cpu`: in CPU time), and what is left of a
 *   round outside them (BEGIN, COMMIT and JavaScript);
 * - `--wal` counts the WAL pages each transaction wrote: a side connection checkpoints after every transaction
 *   (its time is outside the claim and settle figures, so read the rates of such a run apart).
 */
import { copyFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const CLAIM = 64;
const args = process.argv.slice(2);
const flag = (name: string, fallback?: string): string | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const has = (name: string): boolean => {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};
const src = path.resolve(flag('--src', path.join(import.meta.dirname, '../../src'))!);
const rounds = Number(flag('--rounds', '300'));
const passes = Number(flag('--passes', '1'));
const wal = has('--wal');
const profile = has('--profile');
const cpuClock = has('--cpu');
const [verb, ...rest] = args;

/** --profile: time every statement the store runs, per file and SQL text (the rest of a verb is its COMMIT). */
const spent = new Map<string, number>();
/** ms: wall time, or with --cpu the process's CPU time (steadier than wall time on a shared machine). */
const clock = cpuClock
  ? () => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1000;
    }
  : () => performance.now();
let current = '';
if (profile) {
  const Database = (await import('better-sqlite3')).default;
  const prepare = Database.prototype.prepare;
  Database.prototype.prepare = function (this: unknown, sql: string) {
    const stmt = prepare.call(this as never, sql) as unknown as Record<string, (...a: unknown[]) => unknown>;
    const key = sql.replace(/\s+/g, ' ').slice(0, 90);
    for (const m of ['run', 'all', 'get']) {
      const fn = stmt[m]!;
      stmt[m] = function (this: unknown, ...a: unknown[]) {
        const t = clock();
        try {
          return fn.apply(this, a);
        } finally {
          const k = `${current} ${m} ${key}`;
          spent.set(k, (spent.get(k) ?? 0) + clock() - t);
        }
      };
    }
    return stmt as never;
  } as never;
}

type StoreModule = typeof import('../../src/store/sqlite/sqlite-store.ts');
const storeFrom = async (dir: string): Promise<StoreModule['createSqliteStore']> =>
  ((await import(path.join(dir, 'store/sqlite/sqlite-store.ts'))) as StoreModule).createSqliteStore;
const createSqliteStore = await storeFrom(src);
const { createTaskId } = (await import(path.join(src, 'ids.ts'))) as typeof import('../../src/ids.ts');
const OWNER = 'node-3f9c2a7e-5d1b';

const newTasks = (n: number, now: number, from = 0) =>
  Array.from({ length: n }, (_, j) => ({ id: createTaskId(now), name: 'noop', input: { i: from + j }, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now }));

const pct = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 1000);
};

if (verb === 'build') {
  const [file, tasksArg] = rest;
  const tasks = Number(tasksArg ?? 1_000_000);
  rmSync(file!, { force: true });
  const store = createSqliteStore(file!, { strategy: 'priority' });
  await store.open();
  const t0 = performance.now();
  for (let at = 0; at < tasks; at += 1000) await store.enqueue(newTasks(Math.min(1000, tasks - at), Date.now(), at));
  const enqueueS = (performance.now() - t0) / 1000;
  for (let done = 0; done < 20_000; done += CLAIM) {
    const now = Date.now();
    const claimed = await store.claim({ owner: OWNER, limit: CLAIM, leaseMs: 30_000, now, names: ['noop'] });
    await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: OWNER, attempt: t.attempts, at: now, result: null })));
  }
  await store.close();
  console.log(`built ${file}: ${tasks} tasks in ${enqueueS.toFixed(1)} s (${Math.round(tasks / enqueueS)}/s), ${(statSync(file!).size / 2 ** 20).toFixed(0)} MB`);
} else if (verb === 'run') {
  // a file given as <file>@<dir> is opened with the store of <dir> (another checkout's src/)
  const specs = rest.map((arg) => {
    const at = arg.lastIndexOf('@');
    return at > 0 ? { file: arg.slice(0, at), dir: path.resolve(arg.slice(at + 1)) } : { file: arg, dir: src };
  });
  rest.splice(0, rest.length, ...specs.map((s) => s.file));
  const files = rest.map((f, i) => {
    const copy = `${f}.run${i}`;
    for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
    copyFileSync(f, copy);
    return copy;
  });
  const stores = await Promise.all(files.map(async (f, i) => (await storeFrom(specs[i]!.dir))(f, { strategy: 'priority' })));
  for (const s of stores) await s.open();
  // --wal: a side connection checkpoints (TRUNCATE) after each transaction, so the frames it reports are that
  // transaction's pages (the timing then includes no checkpoint of the store's own, so read it apart from the rates)
  const Database = (await import('better-sqlite3')).default;
  const side = wal ? files.map((f) => new Database(f)) : [];
  const walSize = (i: number): number => {
    if (!wal) return 0;
    const log = (side[i]!.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;
    side[i]!.pragma('wal_checkpoint(TRUNCATE)');
    return log;
  };
  for (let pass = 0; pass < passes; pass++) {
    const claimMs = files.map(() => 0);
    const settleMs = files.map(() => 0);
    const frames = files.map(() => [0, 0]);
    const each = files.map(() => [] as number[]);
    const cpu = files.map(() => 0);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < stores.length; k++) {
        const i = round % 2 === 0 ? k : stores.length - 1 - k;
        const store = stores[i]!;
        const now = Date.now();
        current = `${path.basename(rest[i]!)} enqueue`;
        await store.enqueue(newTasks(CLAIM, now));
        current = `${path.basename(rest[i]!)} claim+settle`;
        walSize(i);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const claimed = await store.claim({ owner: OWNER, limit: CLAIM, leaseMs: 30_000, now, names: ['noop'] });
        const t1 = performance.now();
        const w1 = walSize(i);
        const t1b = performance.now();
        await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: OWNER, attempt: t.attempts, at: now, result: null })));
        const t2 = performance.now();
        const w2 = walSize(i);
        const c = process.cpuUsage(c0);
        cpu[i]! += (c.user + c.system) / 1000;
        each[i]!.push(t2 - t0);
        claimMs[i]! += t1 - t0;
        settleMs[i]! += t2 - t1b;
        frames[i]![0]! += w1;
        frames[i]![1]! += w2;
        if (claimed.length !== CLAIM) throw new Error(`claimed ${claimed.length} of ${CLAIM}`);
      }
    }
    const rates = files.map((_, i) => (rounds * CLAIM) / ((claimMs[i]! + settleMs[i]!) / 1000));
    const line = rest.map(
      (f, i) =>
        `${path.basename(f)}: ${Math.round(rates[i]!)}/s (claim ${((claimMs[i]! / rounds) * 1000).toFixed(0)} µs, settle ${((settleMs[i]! / rounds) * 1000).toFixed(0)} µs, cpu ${((cpu[i]! / rounds) * 1000).toFixed(0)} µs, round p50 ${pct(each[i]!, 0.5)} p90 ${pct(each[i]!, 0.9)} max ${pct(each[i]!, 1)} µs${wal ? `, wal pages ${(frames[i]![0]! / rounds).toFixed(1)} + ${(frames[i]![1]! / rounds).toFixed(1)}` : ''})`,
    );
    if (profile) {
      for (const [k, ms] of [...spent].sort()) if (!k.includes(' enqueue ')) console.log(`  ${((ms / rounds) * 1000).toFixed(0).padStart(6)} µs/round  ${k}`);
      for (const [i, f] of rest.entries()) {
        const inStatements = [...spent].filter(([k]) => k.startsWith(`${path.basename(f)} claim+settle`)).reduce((a, [, ms]) => a + ms, 0);
        console.log(`  ${(((cpuClock ? cpu[i]! : claimMs[i]! + settleMs[i]!) - inStatements) / rounds * 1000).toFixed(0).padStart(6)} µs/round  ${path.basename(f)} outside statements (BEGIN, COMMIT, JS)`);
      }
      spent.clear();
    }
    console.log(`pass ${pass}: ${line.join(' | ')}${rates.length === 2 ? ` | ratio ${(rates[0]! / rates[1]!).toFixed(3)}` : ''}`);
  }
  for (const s of stores) await s.close();
  for (const d of side) d.close();
  for (const f of files) for (const ext of ['', '-wal', '-shm']) rmSync(f + ext, { force: true });
} else {
  console.error('usage: deep-claim.bench.ts build <file> [tasks] | run <file>…');
  process.exit(2);
}
