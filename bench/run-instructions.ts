/**
 * Main-thread instructions per `rt.run`, counted by valgrind's callgrind: a figure that does not move with the load
 * of a shared machine, for changes too small for wall-clock pairs (a few µs a run).
 *
 * The measured program is an inline no-op task on a memory runtime with a manual clock (no timers fire; task ids
 * get the same millisecond), bundled with esbuild and run by plain `node --single-threaded --hash-seed=1
 * --random-seed=1` under `setarch -R` (no address randomisation), so that JIT, GC and hash tables behave alike from
 * run to run. The figure is (instructions for 2N runs − instructions for N runs) / N: start-up and compilation
 * cancel out. Repeated counts of one checkout have differed by up to 15 %; compare checkouts with several counts each.
 *
 * Run: `npx tsx bench/run-instructions.ts [N] [counts]` (defaults 20000 and 1; needs `valgrind` and `setarch`;
 * each count takes a minute or two). `TROUPE_ROOT=/path/to/checkout` counts another checkout.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const n = Number(process.argv[2] ?? 20_000);
const repeats = Number(process.argv[3] ?? 1);
if (!Number.isInteger(n) || n <= 0) throw new Error(`N must be a positive integer, got ${process.argv[2]}`);
if (!Number.isInteger(repeats) || repeats <= 0) throw new Error(`counts must be a positive integer, got ${process.argv[3]}`);
for (const tool of ['valgrind', 'setarch']) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(`run-instructions: \`${tool}\` is not available (Debian packages valgrind, util-linux)`);
    process.exit(2);
  }
}

const root = path.resolve(process.env.TROUPE_ROOT ?? new URL('..', import.meta.url).pathname);
// The entry and its bundle sit in the checkout's bench/ folder, so the bundle's packages resolve from its node_modules.
const entry = path.join(root, 'bench', `.run-instructions-${process.pid}.ts`);
const bundle = path.join(root, 'bench', `.run-instructions-${process.pid}.mjs`);
writeFileSync(
  entry,
  `import { createRuntime } from '../src/runtime.ts';
import { ManualClock } from '../src/clock.ts';
const rt = await createRuntime({ store: 'memory', maintenance: false, concurrency: 1000, telemetry: false, clock: new ManualClock(), tasks: { noop: { run: () => null } } });
const n = Number(process.argv[2]);
for (let i = 0; i < n; i++) await rt.run('noop', i);
await rt.close();
`,
);

/** The instructions callgrind collected for a process that makes `runs` runs. */
function collected(runs: number): number {
  const child = spawnSync(
    'setarch',
    ['-R', 'valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded', '--hash-seed=1', '--random-seed=1', bundle, String(runs)],
    { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024 },
  );
  const match = /Collected\s*:\s*(\d+)/.exec(child.stderr ?? '');
  if (child.status !== 0 || !match) throw new Error(`callgrind run of ${runs} failed (exit ${child.status}):\n${(child.stderr ?? '').slice(-2000)}`);
  return Number(match[1]);
}

try {
  const { build } = await import('esbuild');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: bundle, logLevel: 'warning' });
  for (let r = 0; r < repeats; r++) {
    const one = collected(n);
    const two = collected(2 * n);
    console.log(`${root}: ${Math.round((two - one) / n)} instructions per rt.run (inline no-op, memory store; ${n} runs ${one}, ${2 * n} runs ${two})`);
  }
} finally {
  rmSync(entry, { force: true });
  rmSync(bundle, { force: true });
}
