/**
 * End-to-end `rt.run()` over its raw layers, in one Bench so the ratios hold on a noisy machine:
 *
 * - no-op handler: troupe `rt.run` (memory store, same thread count) vs raw Piscina, 1000 runs at once;
 * - the `true` command: troupe `rt.run` vs raw execa, 20 at once.
 *
 * Targets (issue: the runtime kernel): ≥ 0.8× raw Piscina's throughput, ≥ 0.9× raw execa's.
 * Runtimes and pools are built and warmed in `beforeAll`, never inside the timed function.
 *
 * Run alone: `npx tsx bench/suites/dispatch.bench.ts` (add `--json` for JSON).
 */
import { availableParallelism } from 'node:os';
import { execa } from 'execa';
import { Piscina } from 'piscina';
import { Bench } from 'tinybench';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { tasksPerSecOf } from '../lib/rates.ts';

const THREADS = Math.max(2, Math.min(4, availableParallelism()));
const BURST = 1000;
const COMMANDS = 20;
const NOOP = new URL('../../test/fixtures/handlers/noop.ts', import.meta.url);
const TSX_HOOKS = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];

export const DispatchTasks = {
  piscina: `dispatch: raw piscina, ${BURST} no-ops at once`,
  troupe: `dispatch: troupe rt.run (memory), ${BURST} no-op handlers at once`,
  execa: `dispatch: raw execa, ${COMMANDS} × true at once`,
  troupeCommand: `dispatch: troupe rt.run (memory), ${COMMANDS} × true command at once`,
} as const;

/** Adds the dispatch suite to `bench`. */
export default function dispatchSuite(bench: Bench): Bench {
  let raw: Piscina | undefined;
  let rt: Runtime | undefined;
  const openRuntime = async () => {
    rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      concurrency: BURST,
      pool: { minThreads: THREADS, maxThreads: THREADS },
      tasks: { noop: { handler: NOOP }, true: { command: 'true' } },
    });
    await Promise.all(Array.from({ length: THREADS * 8 }, () => rt!.run('noop')));
    await rt.run('true');
  };
  const closeRuntime = async () => {
    await rt?.close();
    rt = undefined;
  };

  bench.add(DispatchTasks.piscina, async () => {
    const all = new Array<Promise<unknown>>(BURST);
    for (let i = 0; i < BURST; i++) all[i] = raw!.run(i);
    await Promise.all(all);
  }, {
    beforeAll: async () => {
      raw = new Piscina({ filename: NOOP.href, minThreads: THREADS, maxThreads: THREADS, idleTimeout: 60_000, execArgv: TSX_HOOKS });
      await Promise.all(Array.from({ length: THREADS * 8 }, () => raw!.run(0)));
    },
    afterAll: async () => {
      await raw?.destroy();
      raw = undefined;
    },
  });
  bench.add(DispatchTasks.troupe, async () => {
    const all = new Array<Promise<unknown>>(BURST);
    for (let i = 0; i < BURST; i++) all[i] = rt!.run('noop', i);
    await Promise.all(all);
  }, { beforeAll: openRuntime, afterAll: closeRuntime });

  bench.add(DispatchTasks.execa, async () => {
    await Promise.all(Array.from({ length: COMMANDS }, () => execa('true')));
  });
  bench.add(DispatchTasks.troupeCommand, async () => {
    await Promise.all(Array.from({ length: COMMANDS }, () => rt!.run('true')));
  }, { beforeAll: openRuntime, afterAll: closeRuntime });
  return bench;
}

const perSec = tasksPerSecOf;

/** Throughputs and the ratios the targets are stated in. */
export function summarizeDispatch(bench: Bench): Record<string, number | undefined> {
  const piscina = perSec(bench, DispatchTasks.piscina, BURST);
  const troupe = perSec(bench, DispatchTasks.troupe, BURST);
  const execaRate = perSec(bench, DispatchTasks.execa, COMMANDS);
  const troupeCommand = perSec(bench, DispatchTasks.troupeCommand, COMMANDS);
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? Number((a / b).toFixed(2)) : undefined);
  return {
    threads: THREADS,
    piscinaPerSec: piscina,
    troupeHandlerPerSec: troupe,
    handlerRatio: ratio(troupe, piscina),
    execaPerSec: execaRate,
    troupeCommandPerSec: troupeCommand,
    commandRatio: ratio(troupeCommand, execaRate),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = dispatchSuite(new Bench({ name: 'dispatch', time: 2000, warmupTime: 300 }));
  await bench.run();
  if (process.argv.includes('--json')) console.log(JSON.stringify(summarizeDispatch(bench), null, 2));
  else {
    console.table(bench.table());
    console.table(summarizeDispatch(bench));
  }
}
