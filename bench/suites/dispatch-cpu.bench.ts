/**
 * `rt.run()` of no-op handlers against raw Piscina, measured in CPU time per task as well as wall time: on a shared
 * 2-core machine wall-clock rates swing with other load, CPU per task much less. Passes alternate (Piscina, troupe,
 * Piscina, troupe, …) in one process, 1000 runs in flight, 2 threads each, after a warm-up.
 *
 * Run: `npx tsx bench/suites/dispatch-cpu.bench.ts [--passes 4] [--telemetry]`
 */
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { createRuntime } from '../../src/runtime.ts';

const NOOP = new URL('../../test/fixtures/handlers/noop.ts', import.meta.url);
const TSX_HOOKS = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];
const BURST = 1000;
const ITERATIONS = 20;

export interface CpuRow {
  system: 'piscina' | 'troupe';
  pass: number;
  tasksPerSec: number;
  /** CPU of every thread of the process per task (user + system). */
  cpuUsPerTask: number;
  /** Main-thread busy time per task (event-loop utilization). */
  mainUsPerTask: number;
}

async function measure(system: CpuRow['system'], pass: number, burst: () => Promise<unknown>): Promise<CpuRow> {
  for (let k = 0; k < 5; k++) await burst();
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < ITERATIONS; k++) await burst();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const tasks = ITERATIONS * BURST;
  return {
    system,
    pass,
    tasksPerSec: Math.round(tasks / seconds),
    cpuUsPerTask: Number(((cpu.user + cpu.system) / tasks).toFixed(1)),
    mainUsPerTask: Number(((elu.active * 1000) / tasks).toFixed(1)),
  };
}

/** Runs the alternating passes and returns one row per system and pass. */
export async function runDispatchCpu({ passes = 4, telemetry = false } = {}): Promise<CpuRow[]> {
  const raw = new Piscina({ filename: NOOP.href, minThreads: 2, maxThreads: 2, idleTimeout: 60_000, execArgv: TSX_HOOKS });
  const rt = await createRuntime({ store: 'memory', maintenance: false, telemetry, concurrency: BURST, pool: { minThreads: 2, maxThreads: 2 }, tasks: { noop: { handler: NOOP } } });
  const rows: CpuRow[] = [];
  try {
    for (let pass = 1; pass <= passes; pass++) {
      rows.push(await measure('piscina', pass, () => Promise.all(Array.from({ length: BURST }, (_, i) => raw.run(i)))));
      rows.push(await measure('troupe', pass, () => Promise.all(Array.from({ length: BURST }, (_, i) => rt.run('noop', i)))));
    }
  } finally {
    await rt.close();
    await raw.destroy();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--passes');
  const rows = await runDispatchCpu({ passes: i > 0 ? Number(process.argv[i + 1]) : 4, telemetry: process.argv.includes('--telemetry') });
  console.table(rows);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const of = (s: CpuRow['system'], k: keyof CpuRow) => median(rows.filter((r) => r.system === s && r.pass > 1).map((r) => Number(r[k])));
  console.log(`median of passes 2+: troupe/piscina throughput ${(of('troupe', 'tasksPerSec') / of('piscina', 'tasksPerSec')).toFixed(2)}×, CPU per task ${of('troupe', 'cpuUsPerTask')} µs vs ${of('piscina', 'cpuUsPerTask')} µs`);
}
