/**
 * The handler thread pool against raw Piscina 5, same thread count, same handler files, same machine, one Bench.
 *
 * - throughput: 1000 no-op jobs submitted at once, awaited together (target ≥ 3× raw Piscina);
 * - latency: one no-op on an idle pool, p50 (target ≤ 1.3× raw Piscina);
 * - CPU-bound: 200 × sha256 of 64 KiB submitted at once (target ≥ 0.98× raw Piscina).
 *
 * Each troupe job carries its own two AbortSignals (soft and hard), as the executor's jobs do. Making them is the
 * executor's cost (≈1–2 µs per signal), so the main rows build the jobs in `beforeEach`, outside the timed
 * function, as raw Piscina's inputs are ready-made; the `+ signals` row builds them inside, for the full price.
 * Pools are built and warmed in `beforeAll` (threads started, handler imported) and closed in `afterAll`.
 *
 * Run alone: `npx tsx bench/suites/pool.bench.ts` (two passes; add `--json` for JSON).
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { Bench, type Task } from 'tinybench';
import { createThreadPool, type HandlerJob, type ThreadPool } from '../../src/pool/thread-pool.ts';

const THREADS = Math.max(2, Math.min(4, availableParallelism()));
const BURST = 1000;
const CPU_BURST = 200;
const NOOP = new URL('../../test/fixtures/handlers/noop.ts', import.meta.url).href;
const SHA = new URL('../../test/fixtures/handlers/sha256.ts', import.meta.url).href;
const TSX_HOOKS = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];

export const PoolTasks = {
  rawBurst: `pool: raw piscina, ${BURST} no-ops at once`,
  troupeBurst: `pool: troupe, ${BURST} no-ops at once`,
  troupeBurstSignals: `pool: troupe, ${BURST} no-ops at once + signals`,
  rawIdle: 'pool: raw piscina, one no-op on an idle pool',
  troupeIdle: 'pool: troupe, one no-op on an idle pool',
  rawCpu: `pool: raw piscina, ${CPU_BURST} × sha256 64 KiB`,
  troupeCpu: `pool: troupe, ${CPU_BURST} × sha256 64 KiB`,
} as const;

function rawPiscina(filename: string): Piscina {
  return new Piscina({ filename, minThreads: THREADS, maxThreads: THREADS, idleTimeout: 60_000, execArgv: TSX_HOOKS });
}

function troupePool(): ThreadPool {
  return createThreadPool({ minThreads: THREADS, maxThreads: THREADS, idleTimeoutMs: 60_000, maxQueue: Infinity });
}

let seq = 0;
function job(handler: string, input: unknown): HandlerJob {
  const id = String(++seq);
  return { id, name: 'bench', handler, input, attempt: 1, signal: new AbortController().signal, hardSignal: new AbortController().signal };
}

/** Adds the pool suite to `bench`. */
export default function poolSuite(bench: Bench): Bench {
  let raw: Piscina | undefined;
  let pool: ThreadPool | undefined;
  const openRaw = (file: string) => async () => {
    raw = rawPiscina(file);
    await Promise.all(Array.from({ length: THREADS * 8 }, () => raw!.run(0)));
  };
  const openPool = (file: string) => async () => {
    pool = troupePool();
    await Promise.all(Array.from({ length: THREADS * 8 }, () => pool!.run(job(file, 0))));
  };
  const closeRaw = async () => {
    await raw?.destroy();
    raw = undefined;
  };
  const closePool = async () => {
    await pool?.close();
    pool = undefined;
  };

  bench.add(PoolTasks.rawBurst, async () => {
    const all = new Array<Promise<unknown>>(BURST);
    for (let i = 0; i < BURST; i++) all[i] = raw!.run(i);
    await Promise.all(all);
  }, { beforeAll: openRaw(NOOP), afterAll: closeRaw });
  let ready: HandlerJob[] = [];
  const prepare = (file: string, count: number) => () => {
    ready = Array.from({ length: count }, (_, i) => job(file, i));
  };
  bench.add(PoolTasks.troupeBurst, async () => {
    const all = new Array<Promise<unknown>>(BURST);
    for (let i = 0; i < BURST; i++) all[i] = pool!.run(ready[i]!);
    await Promise.all(all);
  }, { beforeAll: openPool(NOOP), beforeEach: prepare(NOOP, BURST), afterAll: closePool });
  bench.add(PoolTasks.troupeBurstSignals, async () => {
    const all = new Array<Promise<unknown>>(BURST);
    for (let i = 0; i < BURST; i++) all[i] = pool!.run(job(NOOP, i));
    await Promise.all(all);
  }, { beforeAll: openPool(NOOP), afterAll: closePool });

  bench.add(PoolTasks.rawIdle, async () => {
    await raw!.run(0);
  }, { beforeAll: openRaw(NOOP), afterAll: closeRaw });
  // One job, reused: its signals never abort and a job this short never gets listeners, so nothing is left on them.
  let idleJob: HandlerJob | undefined;
  bench.add(PoolTasks.troupeIdle, async () => {
    await pool!.run(idleJob!);
  }, {
    beforeAll: async () => {
      await openPool(NOOP)();
      idleJob = job(NOOP, 0);
    },
    afterAll: closePool,
  });

  bench.add(PoolTasks.rawCpu, async () => {
    const all = new Array<Promise<unknown>>(CPU_BURST);
    for (let i = 0; i < CPU_BURST; i++) all[i] = raw!.run(i);
    await Promise.all(all);
  }, { beforeAll: openRaw(SHA), afterAll: closeRaw });
  bench.add(PoolTasks.troupeCpu, async () => {
    const all = new Array<Promise<unknown>>(CPU_BURST);
    for (let i = 0; i < CPU_BURST; i++) all[i] = pool!.run(ready[i]!);
    await Promise.all(all);
  }, { beforeAll: openPool(SHA), beforeEach: prepare(SHA, CPU_BURST), afterAll: closePool });
  return bench;
}

function statsOf(bench: Bench, name: string): { p50: number; mean: number } | undefined {
  const task: Task | undefined = bench.getTask(name);
  const result = task?.result;
  if (!result || !('latency' in result)) return undefined;
  return { p50: result.latency.p50, mean: result.latency.mean };
}

/** The figures the targets are stated in, from a finished run. Medians (p50), the machine being noisy. */
export function summarizePool(bench: Bench): Record<string, number | undefined> {
  const s = (name: string) => statsOf(bench, name);
  const perSec = (name: string, jobs: number) => {
    const st = s(name);
    return st ? Math.round((jobs / st.p50) * 1000) : undefined;
  };
  const rawBurst = perSec(PoolTasks.rawBurst, BURST);
  const troupeBurst = perSec(PoolTasks.troupeBurst, BURST);
  const troupeBurstSignals = perSec(PoolTasks.troupeBurstSignals, BURST);
  const rawCpu = perSec(PoolTasks.rawCpu, CPU_BURST);
  const troupeCpu = perSec(PoolTasks.troupeCpu, CPU_BURST);
  const rawIdle = s(PoolTasks.rawIdle)?.p50;
  const troupeIdle = s(PoolTasks.troupeIdle)?.p50;
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? Number((a / b).toFixed(2)) : undefined);
  return {
    threads: THREADS,
    rawBurstJobsPerSec: rawBurst,
    troupeBurstJobsPerSec: troupeBurst,
    burstSpeedup: ratio(troupeBurst, rawBurst),
    troupeBurstWithSignalsJobsPerSec: troupeBurstSignals,
    burstWithSignalsSpeedup: ratio(troupeBurstSignals, rawBurst),
    rawIdleP50Ms: rawIdle === undefined ? undefined : Number(rawIdle.toFixed(4)),
    troupeIdleP50Ms: troupeIdle === undefined ? undefined : Number(troupeIdle.toFixed(4)),
    idleLatencyRatio: ratio(troupeIdle, rawIdle),
    rawCpuJobsPerSec: rawCpu,
    troupeCpuJobsPerSec: troupeCpu,
    cpuRatio: ratio(troupeCpu, rawCpu),
  };
}

/** Runs the suite `passes` times (the machine is noisy) and returns each pass's summary. */
export async function runPoolBench(passes = 2): Promise<Record<string, number | undefined>[]> {
  const summaries: Record<string, number | undefined>[] = [];
  for (let pass = 0; pass < passes; pass++) {
    const bench = poolSuite(new Bench({ name: `pool (pass ${pass + 1})`, time: 2000, warmupTime: 300 }));
    await bench.run();
    if (!process.argv.includes('--json')) console.table(bench.table());
    summaries.push(summarizePool(bench));
  }
  return summaries;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const summaries = await runPoolBench();
  if (process.argv.includes('--json')) console.log(JSON.stringify({ node: process.version, summaries }, null, 2));
  else console.table(summaries);
}
