/**
 * CPU time and garbage per idle run: troupe `rt.run` (memory store, one pool thread) against raw Piscina (one
 * thread), each in its own fresh process, alternating. One no-op run at a time, as the idle row of the mem scope.
 *
 * Why: the idle p50 ratio is a wall-clock figure that moves with the machine's load by more than the µs that a
 * change saves. These move much less:
 * - CPU time per thread: how much work the main thread (where troupe's own code runs), the pool thread and V8's
 *   helper threads (parallel scavenges) do per run, whatever the wall clock did meanwhile. Read from
 *   /proc/self/task/<tid>/stat (utime + stime, 10 ms ticks) over a timed stretch of runs after a warm-up;
 * - the main isolate's garbage collection per run, from `--trace-gc-nvp`: bytes allocated, bytes promoted (what
 *   outlived the young generation and was copied: the scavenges' cost grows with it), and the scavenge pauses.
 *   Bytes do not depend on the load at all; pauses do, less than wall time.
 *
 * Run: `npx tsx bench/idle-cpu.ts [rounds] [seconds]` (defaults 3 and 5). `TROUPE_ROOT=/path/to/checkout`
 * measures another checkout.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = process.env.TROUPE_ROOT ?? fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const NOOP = new URL(`file://${root}/test/fixtures/handlers/noop.ts`);
const WARM_UP = 20_000;

interface Reading {
  system: 'troupe' | 'piscina';
  runs: number;
  wallUs: number;
  mainUs: number;
  poolUs: number;
  helpersUs: number;
}

/** Written by the child around the measured stretch, so the parent reads only its collections. */
const MARK = '--idle-cpu-mark--';

interface GcPerRun {
  allocated: number;
  promoted: number;
  scavengeUs: number;
  markCompactUs: number;
}

/** Sums the main isolate's `--trace-gc-nvp` lines between the two marks, per run. */
function gcPerRun(stdout: string, runs: number): GcPerRun {
  const lines = stdout.split('\n');
  const from = lines.indexOf(MARK);
  const to = lines.lastIndexOf(MARK);
  let main: string | undefined;
  const sum = { allocated: 0, promoted: 0, scavengeMs: 0, markCompactMs: 0 };
  for (const line of lines.slice(from + 1, to)) {
    const isolate = /^\[\d+:(0x[0-9a-f]+)\]/.exec(line)?.[1];
    const kind = / gc=(\w+)/.exec(line)?.[1];
    if (isolate === undefined || kind === undefined) continue;
    // The first isolate to collect in the stretch is the main one: the pool thread allocates far less.
    main ??= isolate;
    if (isolate !== main) continue;
    const num = (name: string): number => Number(new RegExp(` ${name}=([0-9.]+)`).exec(line)?.[1] ?? 0);
    sum.allocated += num('allocated');
    sum.promoted += num('promoted');
    if (kind === 's') sum.scavengeMs += num('pause');
    else sum.markCompactMs += num('pause');
  }
  return { allocated: sum.allocated / runs, promoted: sum.promoted / runs, scavengeUs: (sum.scavengeMs * 1000) / runs, markCompactUs: (sum.markCompactMs * 1000) / runs };
}

/** utime + stime of every thread of this process, in clock ticks (1/100 s on Linux). */
function ticks(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(tid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** The child: warm up, then runs for `seconds`, reading every thread's CPU time before and after. */
async function measure(system: Reading['system'], seconds: number): Promise<Reading> {
  let one: () => Promise<unknown>;
  let close: () => Promise<unknown>;
  if (system === 'troupe') {
    const { createRuntime } = (await import(`${root}/src/runtime.ts`)) as typeof import('../src/runtime.ts');
    const rt = await createRuntime({ store: 'memory', maintenance: false, concurrency: 1000, pool: { minThreads: 1, maxThreads: 1 }, tasks: { noop: { handler: NOOP } } });
    one = () => rt.run('noop', 0);
    close = () => rt.close();
  } else {
    const { Piscina } = createRequire(`${root}/package.json`)('piscina') as typeof import('piscina');
    const hooks = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];
    const pool = new Piscina({ filename: NOOP.href, minThreads: 1, maxThreads: 1, idleTimeout: 60_000, execArgv: hooks });
    one = () => pool.run(0);
    close = () => pool.close();
  }
  for (let i = 0; i < WARM_UP; i++) await one();
  console.log(MARK);
  const before = ticks();
  const start = performance.now();
  let runs = 0;
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 1000; i++) await one();
    runs += 1000;
  }
  const wall = performance.now() - start;
  const after = ticks();
  console.log(MARK);
  await close();
  // Per thread, µs per run: the main thread is this process's pid; the busiest other thread is the pool thread;
  // the rest (V8's platform threads, the loader's thread) are summed as helpers.
  const per = [...after].map(([tid, t]) => ({ tid, us: ((t - (before.get(tid) ?? 0)) * 10_000) / runs }));
  const main = per.find((p) => p.tid === String(process.pid))?.us ?? 0;
  const others = per.filter((p) => p.tid !== String(process.pid)).sort((a, b) => b.us - a.us);
  const pool = others[0]?.us ?? 0;
  const helpers = others.slice(1).reduce((sum, p) => sum + p.us, 0);
  return { system, runs, wallUs: (wall * 1000) / runs, mainUs: main, poolUs: pool, helpersUs: helpers };
}

const [mode, arg] = process.argv.slice(2);
if (mode === '--child') {
  const [system, seconds] = arg!.split(':') as [Reading['system'], string];
  console.log(JSON.stringify(await measure(system, Number(seconds))));
} else {
  const rounds = Number(process.argv[2] ?? 3);
  const seconds = Number(process.argv[3] ?? 5);
  if (!(Number.isInteger(rounds) && rounds > 0) || !(seconds > 0)) throw new Error('usage: npx tsx bench/idle-cpu.ts [rounds] [seconds]');
  const self = fileURLToPath(import.meta.url);
  console.log(`${root}: per idle run, CPU µs of the main thread / pool thread / V8 helper threads; main isolate: bytes allocated, bytes promoted, scavenge pause µs; wall µs`);
  for (let r = 1; r <= rounds; r++) {
    const line: string[] = [];
    for (const system of ['troupe', 'piscina'] as const) {
      const child = spawnSync(process.execPath, ['--trace-gc-nvp', '--import', 'tsx', self, '--child', `${system}:${seconds}`], { encoding: 'utf8', env: process.env, maxBuffer: 256 * 1024 * 1024 });
      if (child.status !== 0) throw new Error(`${system} child failed:\n${child.stderr}`);
      const json = child.stdout.split('\n').find((l) => l.startsWith('{'));
      if (json === undefined) throw new Error(`${system} child printed no reading:\n${child.stdout.slice(-2000)}`);
      const m = JSON.parse(json) as Reading;
      const gc = gcPerRun(child.stdout, m.runs);
      line.push(
        `${system} CPU ${m.mainUs.toFixed(1)} / ${m.poolUs.toFixed(1)} / ${m.helpersUs.toFixed(1)}, GC ${gc.allocated.toFixed(0)} B / ${gc.promoted.toFixed(0)} B / ${(gc.scavengeUs + gc.markCompactUs).toFixed(2)} µs, wall ${m.wallUs.toFixed(1)}`,
      );
    }
    console.log(`round ${r}: ${line.join(' | ')}`);
  }
}
