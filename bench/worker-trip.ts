/**
 * The thread side of an idle `rt.run`, beside raw Piscina in the same process: a Piscina pool that runs troupe's
 * `handler-worker.ts` with one no-op job per run (the message an idle runtime posts, through the pool's string
 * table), and a raw Piscina pool with the no-op handler file, one run at a time, alternating run by run. Prints per
 * round the median round trip of each and the difference: what troupe's wire and worker add to Piscina's trip,
 * with the main-thread runtime left out.
 *
 * Run: `npx tsx bench/worker-trip.ts [rounds] [runs]` (defaults 5 and 5000). `TROUPE_ROOT=/path/to/checkout`
 * measures another checkout's worker with the same script (its batcher.ts must have the same `singleRun`).
 */
import { createRequire } from 'node:module';

const root = process.env.TROUPE_ROOT ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const batcher = (await import(`${root}/src/pool/batcher.ts`)) as typeof import('../src/pool/batcher.ts');
const rounds = Number(process.argv[2] ?? 5);
const runs = Number(process.argv[3] ?? 5000);
const { Piscina } = createRequire(`${root}/package.json`)('piscina') as typeof import('piscina');
const TSX_HOOKS = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];
const NOOP = new URL(`file://${root}/test/fixtures/handlers/noop.ts`).href;
const ID = '0000019af1b2c3d40001a1b2c3d4e5f6';

const strings = new batcher.StringTable();
const slots = new batcher.SlotTable(4);
const workerData = { channel: `troupe-worker-trip-${process.pid}`, cells: slots.cells.buffer as SharedArrayBuffer, strings: strings.buffer };
const troupe = new Piscina({ filename: new URL(`file://${root}/src/pool/handler-worker.ts`).href, minThreads: 2, maxThreads: 2, idleTimeout: 60_000, execArgv: TSX_HOOKS, workerData });
const raw = new Piscina({ filename: NOOP, minThreads: 2, maxThreads: 2, idleTimeout: 60_000, execArgv: TSX_HOOKS });

// One run at a time: one slot, cleared before each run as the pool's slot table does when it hands one out.
const SLOT = slots.alloc()!;
let seq = 0;
function troupeRun(): Promise<unknown> {
  Atomics.store(slots.cells, SLOT * batcher.CELLS_PER_SLOT, 0);
  return troupe.run(batcher.singleRun(strings, SLOT, ++seq, NOOP, 0, ID, 'noop', 1));
}

const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]! * 1000;
try {
  for (let i = 0; i < 3000; i++) {
    await troupeRun();
    await raw.run(0);
  }
  for (let round = 1; round <= rounds; round++) {
    const t: number[] = [];
    const r: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Which goes first alternates, so neither always follows the other's wake-up.
      for (const first of i & 1 ? [true, false] : [false, true]) {
        const start = performance.now();
        await (first ? troupeRun() : raw.run(0));
        (first ? t : r).push(performance.now() - start);
      }
    }
    const tm = median(t);
    const rm = median(r);
    console.log(`round ${round}: troupe's worker ${tm.toFixed(1)} µs | raw Piscina ${rm.toFixed(1)} µs | difference ${(tm - rm).toFixed(1)} µs`);
  }
} finally {
  await troupe.destroy();
  await raw.destroy();
}
