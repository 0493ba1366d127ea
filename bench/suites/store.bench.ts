/**
 * Store throughput: what the durable queue costs per task, batched and not.
 *
 * - SQLite enqueue, one task per transaction against 100 per transaction;
 * - SQLite end-to-end no-op tasks: enqueue a batch, claim 64 at a time, settle the 64 in one call
 *   (the durable path's target is ≥ 20,000 tasks/s at synchronous=NORMAL), also at synchronous=FULL;
 * - SQLite claim 64 + settle 64 from a standing backlog of 50,000 tasks;
 * - memory store: the same end-to-end cycle, and one task at a time (the `rt.run()` path in memory mode).
 *
 * Each row's iteration handles a known number of tasks, so tasks/s = tasks per iteration / mean time.
 * Stores are opened (and backlogs filled) in `beforeAll`, closed and their temp files removed in `afterAll`.
 *
 * Run alone: `npx tsx bench/suites/store.bench.ts` (add `--json` for JSON).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { createTaskId } from '../../src/ids.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { SettleOp, Store } from '../../src/store/store.ts';
import type { NewTask, TaskRecord } from '../../src/task.ts';
import { tasksPerSecOf } from '../lib/rates.ts';

const BATCH = 100;
const CLAIM = 64;
const BACKLOG = 50_000;
const OWNER = 'bench-node';

export const StoreTasks = {
  sqliteEnqueueSingle: `store: sqlite enqueue, ${BATCH} tasks one per transaction`,
  sqliteEnqueueBatch: `store: sqlite enqueue, ${BATCH} tasks in one transaction`,
  sqliteCycle: `store: sqlite NORMAL, enqueue ${CLAIM} + claim ${CLAIM} + settle ${CLAIM}`,
  sqliteCycleFull: `store: sqlite FULL, enqueue ${CLAIM} + claim ${CLAIM} + settle ${CLAIM}`,
  sqliteClaimSettle: `store: sqlite claim ${CLAIM} + settle ${CLAIM} from a ${BACKLOG} backlog`,
  memoryCycle: `store: memory, enqueue ${CLAIM} + claim ${CLAIM} + settle ${CLAIM}`,
  memorySingle: 'store: memory, enqueue 1 + claim 1 + settle 1',
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
  return tasks.map((t) => ({ type: 'succeeded', id: t.id, owner: OWNER, attempt: t.attempts, at, result: null }));
}

async function cycle(store: Store, n: number): Promise<void> {
  await store.enqueue(newTasks(n));
  const now = Date.now();
  const claimed = await store.claim({ owner: OWNER, limit: n, leaseMs: 30_000, now });
  if (claimed.length !== n) throw new Error(`claimed ${claimed.length} of ${n}`);
  await store.settle(succeeded(claimed, now));
}

/** Adds the store suite to `bench`. */
export default function storeSuite(bench: Bench): Bench {
  let dir: string | undefined;
  let store: Store | undefined;
  let fileNo = 0;
  const openSqlite = (synchronous: 'NORMAL' | 'FULL', backlog = 0) => async () => {
    dir ??= mkdtempSync(join(tmpdir(), 'troupe-store-bench-'));
    store = createSqliteStore(join(dir, `bench-${++fileNo}.db`), { synchronous });
    await store.open();
    for (let left = backlog; left > 0; left -= 1000) await store.enqueue(newTasks(Math.min(1000, left)));
  };
  const openMemory = async () => {
    store = createMemoryStore();
    await store.open();
  };
  const close = async () => {
    await store?.close();
    store = undefined;
  };
  const cleanup = async () => {
    await close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  };

  bench.add(StoreTasks.sqliteEnqueueSingle, async () => {
    for (const t of newTasks(BATCH)) await store!.enqueue([t]);
  }, { beforeAll: openSqlite('NORMAL'), afterAll: close });
  bench.add(StoreTasks.sqliteEnqueueBatch, async () => {
    await store!.enqueue(newTasks(BATCH));
  }, { beforeAll: openSqlite('NORMAL'), afterAll: close });
  bench.add(StoreTasks.sqliteCycle, () => cycle(store!, CLAIM), { beforeAll: openSqlite('NORMAL'), afterAll: close });
  bench.add(StoreTasks.sqliteCycleFull, () => cycle(store!, CLAIM), { beforeAll: openSqlite('FULL'), afterAll: close });
  bench.add(StoreTasks.sqliteClaimSettle, async () => {
    const now = Date.now();
    let claimed = await store!.claim({ owner: OWNER, limit: CLAIM, leaseMs: 30_000, now });
    if (claimed.length < CLAIM) {
      await store!.enqueue(newTasks(BACKLOG / 10));
      claimed = claimed.concat(await store!.claim({ owner: OWNER, limit: CLAIM - claimed.length, leaseMs: 30_000, now }));
    }
    await store!.settle(succeeded(claimed, now));
  }, { beforeAll: openSqlite('NORMAL', BACKLOG), afterAll: cleanup });
  bench.add(StoreTasks.memoryCycle, () => cycle(store!, CLAIM), { beforeAll: openMemory, afterAll: close });
  bench.add(StoreTasks.memorySingle, () => cycle(store!, 1), { beforeAll: openMemory, afterAll: close });
  return bench;
}

/** Tasks per second for each row, from a finished run. */
export function summarizeStore(bench: Bench): Record<string, number | undefined> {
  const perSec = (name: string, tasks: number) => tasksPerSecOf(bench, name, tasks);
  return {
    sqliteEnqueueSingleTasksPerSec: perSec(StoreTasks.sqliteEnqueueSingle, BATCH),
    sqliteEnqueueBatchTasksPerSec: perSec(StoreTasks.sqliteEnqueueBatch, BATCH),
    sqliteEndToEndNormalTasksPerSec: perSec(StoreTasks.sqliteCycle, CLAIM),
    sqliteEndToEndFullTasksPerSec: perSec(StoreTasks.sqliteCycleFull, CLAIM),
    sqliteClaimSettleTasksPerSec: perSec(StoreTasks.sqliteClaimSettle, CLAIM),
    memoryEndToEndTasksPerSec: perSec(StoreTasks.memoryCycle, CLAIM),
    memorySingleTasksPerSec: perSec(StoreTasks.memorySingle, 1),
  };
}

/**
 * The durable end-to-end cycle (enqueue 64, claim 64, settle 64 at synchronous=NORMAL) per second of this
 * process's CPU time, median of `passes`: on a shared, noisy machine it says what the store costs regardless
 * of what else is running. Wall-clock rates are the tinybench rows.
 */
export async function measureDurableCpu(passes = 5, cycles = 200): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-store-cpu-'));
  const rates: number[] = [];
  try {
    for (let p = 0; p < passes; p++) {
      const store = createSqliteStore(join(dir, `cpu-${p}.db`));
      await store.open();
      await store.enqueue(newTasks(1000));
      const start = process.cpuUsage();
      for (let i = 0; i < cycles; i++) await cycle(store, CLAIM);
      const used = process.cpuUsage(start);
      rates.push((cycles * CLAIM) / ((used.user + used.system) / 1e6));
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  rates.sort((a, b) => a - b);
  return Math.round(rates[rates.length >> 1]!);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = storeSuite(new Bench({ name: 'store', time: 2000, warmupTime: 300 }));
  await bench.run();
  const summary = { ...summarizeStore(bench), sqliteEndToEndNormalTasksPerCpuSec: await measureDurableCpu() };
  if (process.argv.includes('--json')) console.log(JSON.stringify(summary, null, 2));
  else {
    console.table(bench.table());
    console.table(summary);
  }
}
