/**
 * troupe-PostgreSQL end to end under two `prefetch` settings, alternating run by run so both see the same minutes
 * of this shared machine: the A/B behind the PostgreSQL rule of `prefetch: 'auto'` (src/options.ts,
 * docs/postgres.md "Claiming ahead").
 *
 * One run: a fresh child process (this file with `--child`) opens a runtime on a fresh schema with a no-op task,
 * runs a warm-up of 500 tasks, then times from the first enqueue until the last of `tasks` has succeeded; tasks are
 * enqueued in batches of 500 while the worker runs (the durable suite's workload). The child also reports the store
 * calls it made (count, items, mean ms), which tell whether claims or settles are the bound. The schema is dropped.
 *
 * `--a` is the old rule by default (SQLite's: twice the concurrency, at least 32, at most claimBatch 64); `--b` is
 * 'auto'. Each row is the median of `--rounds` runs.
 *
 * Run: `npx tsx bench/suites/postgres-prefetch.bench.ts [--concurrency 1,8,32] [--rounds 4] [--tasks 10000]
 * [--a sqlite-rule|auto|N] [--b auto|N]` (PostgreSQL at TROUPE_BENCH_PG_URL or TROUPE_TEST_PG_URL).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PG_URL } from '../lib/peers.ts';
import { median } from '../lib/stats.ts';

const BATCH = 500;

interface CallStats {
  calls: number;
  items: number;
  ms: number;
}

interface ChildResult {
  tasksPerSecond: number;
  enqueueMs: number;
  calls: Record<string, CallStats>;
}

/** The prefetch a setting stands for at a concurrency: 'sqlite-rule' is the SQLite 'auto' value. */
function prefetchFor(setting: string, concurrency: number): number | 'auto' {
  if (setting === 'auto') return 'auto';
  if (setting === 'sqlite-rule') return Math.min(64, Math.max(32, 2 * concurrency));
  const n = Number(setting);
  if (!Number.isInteger(n) || n < 0) throw new Error(`a prefetch setting is auto, sqlite-rule or an integer, got \`${setting}\``);
  return n;
}

async function child(concurrency: number, prefetch: number | 'auto', tasks: number): Promise<ChildResult> {
  const { createRuntime } = await import('../../src/runtime.ts');
  const { createPostgresStore } = await import('../../src/store/postgres/postgres-store.ts');
  const schema = `bench_prefetch_${randomBytes(4).toString('hex')}`;
  const store = createPostgresStore(PG_URL, { schema, strategy: 'priority' });
  const calls: Record<string, CallStats> = {};
  for (const method of ['claim', 'settle', 'enqueue'] as const) {
    const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
    const stats: CallStats = (calls[method] = { calls: 0, items: 0, ms: 0 });
    (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const t = performance.now();
      const result = await original(...args);
      stats.calls++;
      stats.ms += performance.now() - t;
      if (Array.isArray(result)) stats.items += result.length;
      return result;
    };
  }
  let succeeded = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const rt = await createRuntime({ store, concurrency, prefetch, maintenance: false, tasks: { noop: { run: () => null } } });
  rt.on('task.succeeded', () => {
    succeeded++;
    for (const w of waiters.filter((x) => succeeded >= x.n)) w.resolve();
  });
  const reach = (n: number): Promise<void> => (succeeded >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })));
  const enqueue = (count: number): Promise<unknown> => rt.enqueueMany(Array.from({ length: count }, (_, i) => ({ name: 'noop', input: { i } })));
  try {
    await enqueue(BATCH);
    await reach(BATCH);
    for (const s of Object.values(calls)) Object.assign(s, { calls: 0, items: 0, ms: 0 });
    const start = performance.now();
    for (let done = 0; done < tasks; done += BATCH) await enqueue(Math.min(BATCH, tasks - done));
    const enqueueMs = performance.now() - start;
    await reach(BATCH + tasks);
    const seconds = (performance.now() - start) / 1000;
    return { tasksPerSecond: tasks / seconds, enqueueMs, calls };
  } finally {
    await rt.close();
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

function runChild(concurrency: number, setting: string, tasks: number): ChildResult {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--concurrency', String(concurrency), '--a', setting, '--tasks', String(tasks)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

function describeCalls(calls: Record<string, CallStats>): string {
  return Object.entries(calls)
    .map(([name, s]) => `${name} ${s.calls}× ${(s.items / Math.max(1, s.calls)).toFixed(0)} items ${(s.ms / Math.max(1, s.calls)).toFixed(1)} ms`)
    .join(', ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '1,8,32' },
      rounds: { type: 'string', default: '4' },
      tasks: { type: 'string', default: '10000' },
      a: { type: 'string', default: 'sqlite-rule' },
      b: { type: 'string', default: 'auto' },
    },
  });
  const tasks = Number(values.tasks);
  if (values.child) {
    const concurrency = Number(values.concurrency);
    const result = await child(concurrency, prefetchFor(values.a!, concurrency), tasks);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const rounds = Number(values.rounds);
  console.log(`troupe-PostgreSQL, ${tasks} no-ops, prefetch A = ${values.a} vs B = ${values.b}, ${rounds} alternating runs each (tasks/s)`);
  for (const concurrency of values.concurrency!.split(',').map(Number)) {
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const [setting, into] of [[values.a!, a], [values.b!, b]] as const) {
        const result = runChild(concurrency, setting, tasks);
        into.push(result.tasksPerSecond);
        console.log(`  c=${concurrency} ${setting} (${prefetchFor(setting, concurrency)}): ${Math.round(result.tasksPerSecond)} tasks/s, enqueue ${Math.round(result.enqueueMs)} ms; ${describeCalls(result.calls)}`);
      }
    }
    const ma = median(a);
    const mb = median(b);
    console.log(`c=${concurrency}: A ${Math.round(ma)} tasks/s, B ${Math.round(mb)} tasks/s, B/A ${(mb / ma).toFixed(2)}×`);
  }
}

await main();
