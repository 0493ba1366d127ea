/**
 * CPU per task of a durable PostgreSQL queue, server and Node apart: `npx tsx bench/pg-cpu.ts [options]`.
 *
 * Wall time on this shared 2-core machine moves with the neighbours' load; CPU time spent per task does much less.
 * One round: a runtime (troupe on the PostgreSQL store, strategy `priority` as in the durable suite, or
 * graphile-worker with local batching, both from bench/lib/queue-systems.ts's settings) in this process, on a
 * fresh schema, runs a warm-up of 500 no-ops, then
 *
 * - `--mode stream` (default, as the durable suite): 10,000 no-ops enqueued in batches of 500 while the worker
 *   runs, until the last is stored as completed;
 * - `--mode drain`: (troupe only) the name is paused, the 10,000 are enqueued, then resumed: the enqueue and the
 *   claim → run → settle path are measured apart.
 *
 * Server CPU is utime + stime (/proc/<pid>/stat, clock ticks of 10 ms) of the backends whose `application_name`
 * is this round's tag (the store's pool and listener; graphile-worker's pool through PGAPPNAME), read before and
 * after; a backend that appeared meanwhile counts whole. "all pg" adds every postgres process on the machine
 * (WAL writer, checkpointer, other clients): noisy when other work uses the server. Node CPU is
 * `process.cpuUsage()` of this process (all its threads). WAL is the bytes of WAL the whole server inserted meanwhile
 * (`pg_current_wal_insert_lsn()`), per task.
 *
 * Options: --system troupe|graphile (default troupe), --tasks N (10000), --concurrency N (8), --rounds N (3),
 * --claim-batch N (troupe's `claimBatch`; its default when absent),
 * --mode stream|drain, --analyze (ANALYZE the schema after the warm-up, as the durable suite's `…, ANALYZEd` rows),
 * --wal (the WAL per task by record type, from pg_walinspect, which it creates in the database),
 * --url postgres://… (TROUPE_TEST_PG_URL or the local default).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createNamespace, dropNamespace, openSystem, type SystemSpec } from './lib/queue-systems.ts';

const { values: args } = parseArgs({
  options: {
    system: { type: 'string', default: 'troupe' },
    tasks: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '8' },
    'claim-batch': { type: 'string' },
    rounds: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'stream' },
    analyze: { type: 'boolean', default: false },
    wal: { type: 'boolean', default: false },
    url: { type: 'string', default: process.env.TROUPE_BENCH_PG_URL || process.env.TROUPE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const TASKS = Number(args.tasks);
const CONCURRENCY = Number(args.concurrency);
const CLAIM_BATCH = args['claim-batch'] === undefined ? undefined : Number(args['claim-batch']);
const ROUNDS = Number(args.rounds);
const WARMUP = 500;
const BATCH = 500;
const URL_ = args.url!;
const SYSTEM = args.system === 'graphile' ? 'graphile-worker' : 'troupe-postgres';
const MODE = args.mode === 'drain' ? 'drain' : 'stream';
if (MODE === 'drain' && SYSTEM !== 'troupe-postgres') throw new Error('--mode drain is for troupe only');
const TICK_US = 1e6 / 100;

/** utime + stime of a process in µs, or undefined once it is gone. */
function procCpuUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_US;
  } catch {
    return undefined;
  }
}

/** Every postgres process on the machine (by its command name). */
function allPostgresCpuUs(): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    sum += procCpuUs(Number(entry)) ?? 0;
  }
  return sum;
}

interface Snapshot {
  backends: Map<number, number>;
  all: number;
  node: NodeJS.CpuUsage;
  /** The server's WAL insert position, in bytes and as an LSN. */
  wal: bigint;
  lsn: string;
  at: number;
}

async function snapshot(admin: pg.Client, tag: string): Promise<Snapshot> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1', [`${tag}%`]);
  const backends = new Map<number, number>();
  for (const { pid } of rows) backends.set(pid, procCpuUs(pid) ?? 0);
  const wal = await admin.query<{ lsn: string; at: string }>(`SELECT lsn::text, pg_wal_lsn_diff(lsn, '0/0')::text AS at FROM pg_current_wal_insert_lsn() AS lsn`);
  const { lsn, at } = wal.rows[0]!;
  return { backends, all: allPostgresCpuUs(), node: process.cpuUsage(), wal: BigInt(at.split('.')[0]!), lsn, at: performance.now() };
}

function diff(a: Snapshot, b: Snapshot, tasks: number): { wallMs: number; serverUs: number; allPgUs: number; nodeUs: number; walBytes: number; backends: number } {
  let server = 0;
  for (const [pid, after] of b.backends) server += after - (a.backends.get(pid) ?? 0);
  const node = b.node.user + b.node.system - (a.node.user + a.node.system);
  return {
    wallMs: b.at - a.at,
    serverUs: server / tasks,
    allPgUs: (b.all - a.all) / tasks,
    nodeUs: node / tasks,
    walBytes: Number(b.wal - a.wal) / tasks,
    backends: b.backends.size,
  };
}

/**
 * The WAL written between two snapshots by record type (pg_walinspect, PostgreSQL 15+), per task: how many
 * records of each kind a task costs and their bytes. The whole server's WAL, like "all pg".
 */
async function walKinds(admin: pg.Client, a: Snapshot, b: Snapshot, tasks: number): Promise<string> {
  // pg_walinspect reads flushed WAL only; the WAL writer flushes asynchronous commits within ≈200 ms.
  for (let tries = 0; ; tries++) {
    const { rows } = await admin.query<{ flushed: boolean }>('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS flushed', [b.lsn]);
    if (rows[0]!.flushed) break;
    if (tries >= 50) throw new Error(`the WAL up to ${b.lsn} was not flushed within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const { rows } = await admin.query<{ kind: string; count: string; bytes: string }>(
    `SELECT "resource_manager/record_type" AS kind, count::text, combined_size::text AS bytes
     FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, true) WHERE count > 0 ORDER BY combined_size DESC LIMIT 8`,
    [a.lsn, b.lsn],
  );
  return rows.map((r) => `  ${r.kind.padEnd(20)} ${(Number(r.count) / tasks).toFixed(2).padStart(6)} records ${(Number(r.bytes) / tasks).toFixed(0).padStart(5)} B per task`).join('\n');
}

function line(label: string, d: ReturnType<typeof diff>, tasks: number): string {
  const rate = Math.round(tasks / (d.wallMs / 1000)).toLocaleString('en-US');
  return `${label.padEnd(8)} server ${d.serverUs.toFixed(1).padStart(6)} µs/task  node ${d.nodeUs.toFixed(1).padStart(6)} µs/task  all pg ${d.allPgUs.toFixed(1).padStart(6)} µs/task  WAL ${d.walBytes.toFixed(0).padStart(5)} B/task  wall ${d.wallMs.toFixed(0).padStart(5)} ms (${rate}/s, ${d.backends} backends)`;
}

async function round(r: number, admin: pg.Client): Promise<void> {
  const tag = `pgcpu${process.pid}r${r}`;
  process.env.PGAPPNAME = tag;
  const namespace = createNamespace('/tmp');
  const spec: SystemSpec = { system: SYSTEM, concurrency: CONCURRENCY, namespace, pgUrl: URL_, redisUrl: '' };
  let ran = 0;
  const sys: Opened = SYSTEM === 'troupe-postgres' ? await openTroupePg(namespace.pgSchema, tag, () => ran++) : await openSystem(spec, () => ran++);
  try {
    const enqueueAll = async (from: number, count: number): Promise<void> => {
      for (let at = 0; at < count; at += BATCH) {
        const k = Math.min(BATCH, count - at);
        await sys.addMany(Array.from({ length: k }, (_, j) => from + at + j));
      }
    };
    await enqueueAll(-WARMUP, WARMUP);
    await sys.waitCompleted(WARMUP);
    if (args.analyze) {
      const { rows } = await admin.query<{ t: string }>(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = $1`, [namespace.pgSchema]);
      for (const { t } of rows) await admin.query(`ANALYZE ${t}`);
    }
    if (MODE === 'stream') {
      const a = await snapshot(admin, tag);
      await enqueueAll(0, TASKS);
      await sys.waitCompleted(WARMUP + TASKS);
      const b = await snapshot(admin, tag);
      console.log(line(`round ${r}`, diff(a, b, TASKS), TASKS));
      if (args.wal) console.log(await walKinds(admin, a, b, TASKS));
    } else {
      sys.pause!();
      const a = await snapshot(admin, tag);
      await enqueueAll(0, TASKS);
      const b = await snapshot(admin, tag);
      sys.resume!();
      await sys.waitCompleted(WARMUP + TASKS);
      const c = await snapshot(admin, tag);
      console.log(line(`enqueue`, diff(a, b, TASKS), TASKS));
      if (args.wal) console.log(await walKinds(admin, a, b, TASKS));
      console.log(line(`drain`, diff(b, c, TASKS), TASKS));
      if (args.wal) console.log(await walKinds(admin, b, c, TASKS));
    }
    if (ran !== WARMUP + TASKS) throw new Error(`${ran} handler runs for ${WARMUP + TASKS} tasks`);
  } finally {
    await sys.close();
    await dropNamespace(spec);
  }
}

interface Opened {
  addMany(payloads: readonly number[]): Promise<void>;
  waitCompleted(total: number): Promise<void>;
  pause?(): void;
  resume?(): void;
  close(): Promise<void>;
}

/** troupe as the durable suite opens it, with the pool's application_name set to the round's tag. */
async function openTroupePg(schema: string, tag: string, onRun: () => void): Promise<Opened> {
  const { createRuntime } = await import('../src/runtime.ts');
  const { createPostgresStore } = await import('../src/store/postgres/postgres-store.ts');
  const store = createPostgresStore(URL_, { schema, strategy: 'priority', applicationName: tag });
  const rt = await createRuntime({
    store,
    concurrency: CONCURRENCY,
    ...(CLAIM_BATCH === undefined ? {} : { claimBatch: CLAIM_BATCH }),
    maintenance: false,
    tasks: { noop: { run: () => (onRun(), null) } },
  });
  let done = 0;
  let waiter: { n: number; resolve: () => void } | undefined;
  rt.on('task.succeeded', () => {
    done++;
    if (waiter && done >= waiter.n) waiter.resolve();
  });
  return {
    addMany: async (payloads) => {
      await rt.enqueueMany(payloads.map((i) => ({ name: 'noop', input: { i } })));
    },
    waitCompleted: (n) => (done >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { n, resolve }))),
    pause: () => rt.pause('noop'),
    resume: () => rt.resume('noop'),
    close: () => rt.close(),
  };
}

const admin = new pg.Client({ connectionString: URL_, application_name: 'pg-cpu-admin' });
await admin.connect();
if (args.wal) {
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  } catch (error) {
    console.error(`--wal needs the pg_walinspect extension (PostgreSQL 15+, created by a superuser): ${(error as Error).message}`);
    process.exit(2);
  }
}
try {
  console.log(`${SYSTEM}, ${MODE}, ${TASKS} tasks, concurrency ${CONCURRENCY}`);
  for (let r = 1; r <= ROUNDS; r++) await round(r, admin);
} finally {
  await admin.end();
}
