/**
 * PostgreSQL store throughput: what batching buys when every commit costs a WAL flush (≈0.5 ms here).
 *
 * - enqueue 100 tasks, one call (one commit) per task against one call for all 100;
 * - claim 64 + settle 64 (one `succeeded` op each, one settle call) from a standing backlog, on one connection;
 * - the same with 4 claim/settle loops at once on a pool of 4 connections (several connections, one node);
 * - end to end: enqueue 64 + claim 64 + settle 64, one connection;
 * - the one-connection claim/settle row again with `synchronous_commit=off`, to show the share of the flush.
 *
 * tasks/s = tasks per iteration / mean iteration time. Each row gets a fresh schema (filled in `beforeAll`,
 * dropped in `afterAll`). Needs a database: `TROUPE_BENCH_PG_URL` or `TROUPE_TEST_PG_URL`; without one the suite
 * adds no rows and says so.
 *
 * Run alone: `TROUPE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/suites/postgres.bench.ts`
 * (add `--json` for JSON).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Bench } from 'tinybench';
import { createTaskId } from '../../src/ids.ts';
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { SettleOp } from '../../src/store/store.ts';
import type { NewTask, TaskRecord } from '../../src/task.ts';
import { tasksPerSecOf } from '../lib/rates.ts';

const URL_ENV = process.env.TROUPE_BENCH_PG_URL || process.env.TROUPE_TEST_PG_URL || undefined;
const BATCH = 100;
const CLAIM = 64;
const LOOPS = 4;
const BACKLOG = 20_000;
const OWNER = 'bench-node';

export const PostgresTasks = {
  enqueueSingle: `postgres: enqueue ${BATCH} tasks, one call each`,
  enqueueBatch: `postgres: enqueue ${BATCH} tasks in one call`,
  claimSettle1: `postgres: claim ${CLAIM} + settle ${CLAIM}, 1 connection`,
  claimSettleN: `postgres: ${LOOPS} × (claim ${CLAIM} + settle ${CLAIM}) at once, ${LOOPS} connections`,
  cycle1: `postgres: enqueue ${CLAIM} + claim ${CLAIM} + settle ${CLAIM}, 1 connection`,
  claimSettleAsync: `postgres: claim ${CLAIM} + settle ${CLAIM}, 1 connection, synchronous_commit=off`,
} as const;

function newTasks(n: number): NewTask[] {
  const now = Date.now();
  const out = new Array<NewTask>(n);
  for (let i = 0; i < n; i++) {
    out[i] = { id: createTaskId(now), name: 'noop', input: { i }, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now };
  }
  return out;
}

function succeeded(tasks: readonly TaskRecord[], at: number): SettleOp[] {
  return tasks.map((t) => ({ type: 'succeeded', id: t.id, owner: t.owner!, attempt: t.attempts, at, result: null }));
}

function asyncCommit(url: string): string {
  const u = new URL(url);
  u.searchParams.set('options', '-c synchronous_commit=off');
  return u.toString();
}

/** Claims up to `CLAIM` from the backlog (refilling it when it runs low) and settles them in one call. */
async function claimSettle(store: PostgresStore, owner: string): Promise<void> {
  const now = Date.now();
  let claimed = await store.claim({ owner, limit: CLAIM, leaseMs: 30_000, now });
  if (claimed.length < CLAIM) {
    await store.enqueue(newTasks(2000));
    claimed = claimed.concat(await store.claim({ owner, limit: CLAIM - claimed.length, leaseMs: 30_000, now }));
  }
  await store.settle(succeeded(claimed, now));
}

/** Adds the PostgreSQL suite to `bench` (no rows without a database URL). */
export default function postgresSuite(bench: Bench): Bench {
  if (!URL_ENV) {
    console.warn('postgres suite skipped: TROUPE_BENCH_PG_URL / TROUPE_TEST_PG_URL not set');
    return bench;
  }
  const url = URL_ENV;
  let store: PostgresStore | undefined;
  let schema: string | undefined;
  const open = (options: { poolSize?: number; backlog?: number; url?: string } = {}) => async () => {
    schema = `bench_${randomBytes(4).toString('hex')}`;
    store = createPostgresStore(options.url ?? url, { schema, poolSize: options.poolSize ?? 1, listen: false });
    await store.open();
    for (let left = options.backlog ?? 0; left > 0; left -= 1000) await store.enqueue(newTasks(Math.min(1000, left)));
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`ANALYZE "${schema}".tasks`);
    await admin.end();
  };
  const close = async () => {
    await store?.close();
    store = undefined;
    if (!schema) return;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
    schema = undefined;
  };

  bench.add(PostgresTasks.enqueueSingle, async () => {
    for (const t of newTasks(BATCH)) await store!.enqueue([t]);
  }, { beforeAll: open(), afterAll: close });
  bench.add(PostgresTasks.enqueueBatch, async () => {
    await store!.enqueue(newTasks(BATCH));
  }, { beforeAll: open(), afterAll: close });
  bench.add(PostgresTasks.claimSettle1, () => claimSettle(store!, OWNER), {
    beforeAll: open({ backlog: BACKLOG }),
    afterAll: close,
  });
  bench.add(PostgresTasks.claimSettleN, async () => {
    await Promise.all(Array.from({ length: LOOPS }, (_, i) => claimSettle(store!, `${OWNER}-${i}`)));
  }, { beforeAll: open({ poolSize: LOOPS, backlog: BACKLOG }), afterAll: close });
  bench.add(PostgresTasks.cycle1, async () => {
    await store!.enqueue(newTasks(CLAIM));
    const now = Date.now();
    const claimed = await store!.claim({ owner: OWNER, limit: CLAIM, leaseMs: 30_000, now });
    if (claimed.length !== CLAIM) throw new Error(`claimed ${claimed.length} of ${CLAIM}`);
    await store!.settle(succeeded(claimed, now));
  }, { beforeAll: open(), afterAll: close });
  bench.add(PostgresTasks.claimSettleAsync, () => claimSettle(store!, OWNER), {
    beforeAll: open({ backlog: BACKLOG, url: asyncCommit(url) }),
    afterAll: close,
  });
  return bench;
}

/** Tasks per second for each row, from a finished run. */
export function summarizePostgres(bench: Bench): Record<string, number | undefined> {
  const perSec = (name: string, tasks: number) => tasksPerSecOf(bench, name, tasks);
  return {
    enqueueSingleTasksPerSec: perSec(PostgresTasks.enqueueSingle, BATCH),
    enqueueBatchTasksPerSec: perSec(PostgresTasks.enqueueBatch, BATCH),
    claimSettleOneConnTasksPerSec: perSec(PostgresTasks.claimSettle1, CLAIM),
    claimSettleManyConnTasksPerSec: perSec(PostgresTasks.claimSettleN, CLAIM * LOOPS),
    endToEndOneConnTasksPerSec: perSec(PostgresTasks.cycle1, CLAIM),
    claimSettleAsyncCommitTasksPerSec: perSec(PostgresTasks.claimSettleAsync, CLAIM),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = postgresSuite(new Bench({ name: 'postgres', time: 2000, warmupTime: 300 }));
  await bench.run();
  if (process.argv.includes('--json')) console.log(JSON.stringify(summarizePostgres(bench), null, 2));
  else {
    console.table(bench.table());
    console.table(summarizePostgres(bench));
  }
}
