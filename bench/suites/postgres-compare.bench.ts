/**
 * troupe on PostgreSQL against pg-boss 10, end to end, side by side in one run on the same database.
 *
 * The workload: `tasks` no-op jobs, enqueued in batches of 500 from the parent process while the workers already
 * run, timed from the first insert until the last job is committed as done (counted in the database, the same
 * query shape for both systems, every 25 ms). Before it, a warm-up round (a tenth of the tasks, at most 500,
 * untimed) and ANALYZE of the schema's tables give both systems the statistics a database in use has; `--cold`
 * skips that (on a never-analysed table troupe's claim sorts every due row, see docs/postgres.md). Each node is
 * a real child process (this file with `--node`), with `concurrency` jobs in flight at most, per node. Each system and node count gets a fresh schema, dropped after.
 *
 * - troupe: a runtime with an inline no-op task, `concurrency` = the given one, default claim batch (64) and
 *   group commit; synchronous_commit as the server has it (on).
 * - pg-boss: `work()` called `bossWorkers` times (1) with `batchSize = concurrency / workers` (so at most `concurrency`
 *   jobs in flight), `pollingIntervalSeconds: 0.5` (its minimum). Two rows: `pg-boss` as configured, and
 *   `pg-boss-greedy`, whose handler calls `notifyWorker` after each batch so the worker fetches again at once
 *   instead of waiting for the poll interval: the fastest that pg-boss's own fetch/complete SQL allows.
 *
 * The poll-bound `pg-boss` row runs `pollBoundTasks` (500) jobs: its rate does not depend on the count, and 5000
 * would take minutes. Each row is the median of `passes` (2) runs, interleaved across systems (the machine is
 * shared and noisy: compare ratios within one run).
 *
 * Run: `TROUPE_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/suites/postgres-compare.bench.ts`
 * (or TROUPE_TEST_PG_URL; options: `--tasks 5000 --concurrency 16 --nodes 1,3 --passes 2 --systems troupe,pg-boss
 * --boss-workers 1 --cold --json`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { createTaskId } from '../../src/ids.ts';
import { createRuntime } from '../../src/runtime.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { NewTask } from '../../src/task.ts';

export const SYSTEMS = ['troupe', 'pg-boss', 'pg-boss-greedy'] as const;
export type System = (typeof SYSTEMS)[number];

export interface CompareRow {
  system: System;
  nodes: number;
  /** Jobs in flight at most, per node. */
  concurrency: number;
  tasks: number;
  seconds: number;
  tasksPerSec: number;
  /** troupe: claim and settle counters summed over the nodes (what the time went into). */
  info?: Record<string, number>;
}

export interface CompareOptions {
  url: string;
  /** @default 5000 */
  tasks?: number;
  /** @default 16 */
  concurrency?: number;
  /** Node counts to run. @default [1, 3] */
  nodes?: readonly number[];
  /** @default all of SYSTEMS */
  systems?: readonly System[];
  /**
   * pg-boss `work()` calls per node (each with batchSize = concurrency / workers). One worker fetching 16 at a time
   * was pg-boss's fastest here (greedy: ≈2.1k/s against ≈1.4k/s with 4 × 4 and ≈0.3k/s with 16 × 1). @default 1
   */
  bossWorkers?: number;
  /**
   * Tasks of the poll-bound `pg-boss` row (at most `tasks`): it runs at batch / 0.5 s per worker whatever the
   * count, so a smaller run gives the same rate in seconds instead of minutes. @default 500
   */
  pollBoundTasks?: number;
  /** Passes per row, interleaved across systems; a row reports the median. @default 2 */
  passes?: number;
  /**
   * Measure a brand-new schema: no warm-up round and no statistics. By default each row first runs a tenth of
   * its tasks (at most 500) untimed and ANALYZEs the schema, as a database in use would be. @default false
   */
  cold?: boolean;
}

interface NodeSpec {
  system: System;
  cold: boolean;
  url: string;
  schema: string;
  concurrency: number;
  bossWorkers: number;
}

const QUEUE = 'noop';
const SELF = fileURLToPath(import.meta.url);
const ENQUEUE_BATCH = 500;

/** Why: the figure issue 6 asks for — troupe vs pg-boss throughput with 1 and 3 nodes, in one run. */
export async function runPostgresComparison(options: CompareOptions): Promise<CompareRow[]> {
  const { url, tasks = 5000, concurrency = 16, nodes = [1, 3], systems = SYSTEMS, bossWorkers = 1, pollBoundTasks = 500, passes = 2, cold = false } = options;
  const rows: CompareRow[] = [];
  for (const n of nodes) {
    const runs = new Map<System, CompareRow[]>();
    for (let pass = 0; pass < passes; pass++) {
      for (const system of systems) {
        const schema = `cmp_${system === 'troupe' ? 'troupe' : 'boss'}_${randomBytes(4).toString('hex')}`;
        const count = system === 'pg-boss' ? Math.min(tasks, pollBoundTasks) : tasks;
        const row = await runOne({ system, cold, url, schema, concurrency, bossWorkers }, n, count);
        runs.set(system, [...(runs.get(system) ?? []), row]);
      }
    }
    for (const system of systems) rows.push(median(runs.get(system)!));
  }
  return rows;
}

/** The row with the median rate (the lower middle one for an even count), carrying its own seconds and info. */
function median(rows: readonly CompareRow[]): CompareRow {
  const sorted = [...rows].sort((a, b) => a.tasksPerSec - b.tasksPerSec);
  const mid = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : undefined;
  if (mid) return mid;
  const [a, b] = [sorted[sorted.length / 2 - 1]!, sorted[sorted.length / 2]!];
  const tasksPerSec = Math.round((a.tasksPerSec + b.tasksPerSec) / 2);
  return { ...b, seconds: round(b.tasks / tasksPerSec, 3), tasksPerSec };
}

async function runOne(spec: NodeSpec, nodeCount: number, tasks: number): Promise<CompareRow> {
  const admin = new pg.Client({ connectionString: spec.url, application_name: 'troupe-bench-admin' });
  await admin.connect();
  const isBoss = spec.system !== 'troupe';
  let producer: { enqueue(from: number, to: number): Promise<void>; close(): Promise<void> };
  if (isBoss) {
    // The parent creates the schema and the queue first, so the nodes do not race on migrations.
    const boss = new PgBoss({ connectionString: spec.url, schema: spec.schema, max: 2, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    await boss.createQueue(QUEUE);
    producer = {
      enqueue: (from, to) => boss.insert(Array.from({ length: to - from }, (_, i) => ({ name: QUEUE, data: { i: from + i } }))),
      close: () => boss.stop({ graceful: false, wait: true, timeout: 5000 }),
    };
  } else {
    const store = createPostgresStore(spec.url, { schema: spec.schema, listen: false, poolSize: 1 });
    await store.open();
    producer = {
      enqueue: async (from, to) => {
        const now = Date.now();
        const batch: NewTask[] = [];
        for (let i = from; i < to; i++) batch.push({ id: createTaskId(now), name: QUEUE, input: { i }, priority: 0, weight: 1, maxAttempts: 1, createdAt: now, runAt: now });
        await store.enqueue(batch);
      },
      close: () => store.close(),
    };
  }
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < nodeCount; i++) children.push(startNode(spec));
    await Promise.all(children.map((c) => waitForLine(c, (l) => l === 'ready')));
    const doneSql = isBoss
      ? `SELECT count(*)::int AS n FROM "${spec.schema}".job WHERE name = '${QUEUE}' AND state = 'completed'`
      : `SELECT count(*)::int AS n FROM "${spec.schema}".tasks WHERE state = 'succeeded'`;
    const waitDone = async (target: number): Promise<void> => {
      const deadline = performance.now() + 600_000;
      for (;;) {
        const { rows } = await admin.query<{ n: number }>(doneSql);
        if (rows[0]!.n >= target) return;
        if (performance.now() > deadline) throw new Error(`${spec.system}: ${rows[0]!.n}/${target} done after 10 minutes`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    const warmup = spec.cold ? 0 : Math.min(500, Math.ceil(tasks / 10));
    if (warmup > 0) {
      // A schema in use: some jobs through, then statistics, as autovacuum would have gathered them by now.
      await producer.enqueue(-warmup, 0);
      await waitDone(warmup);
      const { rows } = await admin.query<{ t: string }>(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = $1`, [spec.schema]);
      for (const { t } of rows) await admin.query(`ANALYZE ${t}`);
    }
    const started = performance.now();
    for (let from = 0; from < tasks; from += ENQUEUE_BATCH) await producer.enqueue(from, Math.min(tasks, from + ENQUEUE_BATCH));
    await waitDone(warmup + tasks);
    const seconds = (performance.now() - started) / 1000;
    const infos = await Promise.all(children.map((c) => closeNode(c)));
    const row: CompareRow = { system: spec.system, nodes: nodeCount, concurrency: spec.concurrency, tasks, seconds: round(seconds, 3), tasksPerSec: Math.round(tasks / seconds) };
    if (!isBoss) {
      const info: Record<string, number> = {};
      for (const i of infos) for (const [k, v] of Object.entries(i ?? {})) info[k] = (info[k] ?? 0) + v;
      row.info = info;
    }
    return row;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await producer.close().catch(() => {});
    await admin.query(`DROP SCHEMA IF EXISTS "${spec.schema}" CASCADE`).catch(() => {});
    await admin.end();
  }
}

function startNode(spec: NodeSpec): ChildProcess {
  // TROUPE_BENCH_CPU_PROF=<dir>: each node writes a V8 CPU profile there (where the time goes).
  const prof = process.env.TROUPE_BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.TROUPE_BENCH_CPU_PROF] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', SELF, '--node', JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin!.on('error', () => {});
  return child;
}

function waitForLine(child: ChildProcess, match: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    const onExit = (code: number | null) => reject(new Error(`bench node exited ${code} before it was ready`));
    child.once('exit', onExit);
    rl.on('line', (line) => {
      if (!match(line)) return;
      child.off('exit', onExit);
      rl.close();
      resolve(line);
    });
  });
}

/** Asks a node to stop; resolves with the counters it printed (troupe) once it exited. */
async function closeNode(child: ChildProcess): Promise<Record<string, number> | undefined> {
  const line = waitForLine(child, (l) => l.startsWith('stats ')).catch(() => undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin!.end('close\n');
  const stats = await line;
  await exited;
  return stats ? (JSON.parse(stats.slice('stats '.length)) as Record<string, number>) : undefined;
}

// ── the node side (this file run with --node) ───────────────────────────────────────────────────────────────

async function runNode(spec: NodeSpec): Promise<void> {
  let stop: () => Promise<Record<string, number> | undefined>;
  if (spec.system === 'troupe') {
    const store = createPostgresStore(spec.url, { schema: spec.schema, poolSize: 4, strategy: 'priority' });
    const rt = await createRuntime({ store, concurrency: spec.concurrency, maintenance: false, tasks: { [QUEUE]: { run: () => null } } });
    stop = async () => {
      const info = collectInfo(rt.tree());
      await rt.close();
      return info;
    };
  } else {
    const boss = new PgBoss({ connectionString: spec.url, schema: spec.schema, max: 4, supervise: false, schedule: false, migrate: false });
    boss.on('error', () => {});
    await boss.start();
    const batchSize = Math.max(1, Math.floor(spec.concurrency / spec.bossWorkers));
    const greedy = spec.system === 'pg-boss-greedy';
    for (let w = 0; w < spec.bossWorkers; w++) {
      let id = '';
      id = await boss.work(QUEUE, { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        await Promise.all(jobs.map(async () => null));
        if (greedy && id) boss.notifyWorker(id);
      });
    }
    stop = async () => {
      await boss.stop({ graceful: true, wait: true, timeout: 5000 });
      return undefined;
    };
  }
  process.stdout.write('ready\n');
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('close', () => {
    void stop().then((info) => {
      process.stdout.write(`stats ${JSON.stringify(info ?? {})}\n`);
      process.exit(0);
    });
  });
}

/** Sums the scheduler and tracker counters of a runtime's tree (claims, claimed, batches, settled…). */
function collectInfo(node: { address?: string; info?: Record<string, unknown>; children?: readonly unknown[] }): Record<string, number> {
  const out: Record<string, number> = {};
  const visit = (n: { address?: string; info?: Record<string, unknown>; children?: readonly unknown[] }) => {
    if (n.address === 'scheduler' || n.address === 'tracker') {
      for (const [k, v] of Object.entries(n.info ?? {})) if (typeof v === 'number') out[`${n.address}.${k}`] = v;
    }
    for (const c of n.children ?? []) visit(c as typeof n);
  };
  visit(node);
  return out;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Prints the rows as a table, with troupe's ratio over each pg-boss row at the same node count. */
export function formatRows(rows: readonly CompareRow[]): string {
  const lines = [`${'system'.padEnd(18)} ${'nodes'.padStart(5)} ${'conc.'.padStart(5)} ${'tasks'.padStart(6)} ${'seconds'.padStart(8)} ${'tasks/s'.padStart(8)}  vs troupe`];
  for (const r of rows) {
    const troupe = rows.find((t) => t.system === 'troupe' && t.nodes === r.nodes);
    const ratio = troupe && r.system !== 'troupe' ? `troupe ${(troupe.tasksPerSec / r.tasksPerSec).toFixed(1)}×` : '';
    lines.push(`${r.system.padEnd(18)} ${String(r.nodes).padStart(5)} ${String(r.concurrency).padStart(5)} ${String(r.tasks).padStart(6)} ${r.seconds.toFixed(2).padStart(8)} ${String(r.tasksPerSec).padStart(8)}  ${ratio}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const nodeSpec = arg('node');
  if (nodeSpec) {
    await runNode(JSON.parse(nodeSpec) as NodeSpec);
  } else {
    const url = process.env.TROUPE_BENCH_PG_URL || process.env.TROUPE_TEST_PG_URL;
    if (!url) {
      console.warn('postgres-compare skipped: TROUPE_BENCH_PG_URL / TROUPE_TEST_PG_URL not set');
    } else {
      const rows = await runPostgresComparison({
        url,
        tasks: Number(arg('tasks') ?? 5000),
        concurrency: Number(arg('concurrency') ?? 16),
        nodes: (arg('nodes') ?? '1,3').split(',').map(Number),
        ...(arg('systems') ? { systems: arg('systems')!.split(',') as System[] } : {}),
        ...(arg('boss-workers') ? { bossWorkers: Number(arg('boss-workers')) } : {}),
        ...(arg('passes') ? { passes: Number(arg('passes')) } : {}),
        cold: process.argv.includes('--cold'),
      });
      if (process.argv.includes('--json')) console.log(JSON.stringify({ node: process.version, cpus: os.cpus().length, date: new Date().toISOString(), rows }, null, 2));
      else console.log(formatRows(rows));
    }
  }
}
