/**
 * Where the idle `rt.run` round trip spends its time, beside raw Piscina in the same process: one no-op run at a
 * time on each, alternating, with a timestamp where troupe's thread pool calls `piscina.run` and one where that
 * call's promise settles. Prints per round the medians of troupe's part before the post, Piscina's round trip, and
 * troupe's part after the reply, and raw Piscina's whole round trip.
 *
 * Run: `npx tsx bench/idle-stamps.ts [rounds] [runs]` (defaults 4 and 5000). `TROUPE_ROOT=/path/to/checkout`
 * measures another checkout with the same script.
 */
import { createRequire } from 'node:module';

const root = process.env.TROUPE_ROOT ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { createRuntime } = (await import(`${root}/src/runtime.ts`)) as typeof import('../src/runtime.ts');
const rounds = Number(process.argv[2] ?? 4);
const runs = Number(process.argv[3] ?? 5000);
// The checkout's own Piscina (the CommonJS entry troupe loads), patched to stamp each run.
const { Piscina } = createRequire(`${root}/package.json`)('piscina') as typeof import('piscina');
const NOOP = new URL(`file://${root}/test/fixtures/handlers/noop.ts`);
const TSX_HOOKS = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];

let posted = 0;
let replied = 0;
type Pool = InstanceType<typeof Piscina>;
const run = Piscina.prototype.run;
Piscina.prototype.run = function (this: Pool, ...args: Parameters<Pool['run']>) {
  posted = performance.now();
  const promise = run.apply(this, args);
  promise.then(() => (replied = performance.now()), () => {});
  return promise;
};

const rt = await createRuntime({ store: 'memory', maintenance: false, concurrency: 1000, pool: { minThreads: 2, maxThreads: 2 }, tasks: { noop: { handler: NOOP } } });
const raw = new Piscina({ filename: NOOP.href, minThreads: 2, maxThreads: 2, idleTimeout: 60_000, execArgv: TSX_HOOKS });
try {
  for (let i = 0; i < 2000; i++) {
    await rt.run('noop', 0);
    await raw.run(0);
  }
  const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]! * 1000;
  for (let round = 1; round <= rounds; round++) {
    const before: number[] = [], trip: number[] = [], after: number[] = [], total: number[] = [], rawTotal: number[] = [];
    for (let i = 0; i < runs; i++) {
      let start = performance.now();
      await rt.run('noop', 0);
      let end = performance.now();
      before.push(posted - start);
      trip.push(replied - posted);
      after.push(end - replied);
      total.push(end - start);
      start = performance.now();
      await raw.run(0);
      end = performance.now();
      rawTotal.push(end - start);
    }
    const t = median(total);
    const r = median(rawTotal);
    console.log(
      `round ${round}: troupe ${t.toFixed(1)} µs = before the post ${median(before).toFixed(1)} + Piscina ${median(trip).toFixed(1)} + after the reply ${median(after).toFixed(1)} | raw Piscina ${r.toFixed(1)} µs | ratio ${(t / r).toFixed(2)}`,
    );
  }
} finally {
  await rt.close();
  await raw.destroy();
}
