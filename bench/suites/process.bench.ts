/**
 * The subprocess layer against raw execa and raw `child_process.spawn`, same program, same machine, one Bench.
 *
 * Each task runs `true` (exits 0 at once, prints nothing) sequentially, one at a time, so the figure is the cost
 * of one command run: fork/exec, pipes, exit, and the wrapper's own work (process group, line splitters,
 * result mapping). Target: runCommand ≥ 0.9× raw execa's rate.
 *
 * - raw spawn: `spawn('true', [], { stdio: ['ignore', 'pipe', 'pipe'] })`, resolved on `close`;
 * - raw execa: `execa('true')` with its defaults (buffers output);
 * - troupe: `runCommand({ command: 'true', … })` as the process executor calls it, with a fresh AbortController
 *   per run and an `onLine` callback.
 *
 * Run alone: `npx tsx bench/suites/process.bench.ts` (add `--json` for JSON).
 */
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { Bench, type Task } from 'tinybench';
import { runCommand } from '../../src/process/run-command.ts';

const PROGRAM = 'true';

export const ProcessTasks = {
  rawSpawn: `process: raw child_process.spawn, \`${PROGRAM}\``,
  rawExeca: `process: raw execa, \`${PROGRAM}\``,
  troupe: `process: troupe runCommand, \`${PROGRAM}\``,
} as const;

function spawnOnce(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROGRAM, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

let lines = 0;
const countLine = (): void => {
  lines++;
};

/** Adds the process suite to `bench`. */
export default function processSuite(bench: Bench): Bench {
  bench.add(ProcessTasks.rawSpawn, spawnOnce);
  bench.add(ProcessTasks.rawExeca, async () => {
    await execa(PROGRAM);
  });
  bench.add(ProcessTasks.troupe, async () => {
    await runCommand({
      command: PROGRAM,
      args: [],
      killGraceMs: 5000,
      signal: new AbortController().signal,
      maxLines: 10_000,
      maxBytes: 10_000_000,
      onLine: countLine,
    });
  });
  return bench;
}

function runsPerSec(bench: Bench, name: string): number | undefined {
  const task: Task | undefined = bench.getTask(name);
  const result = task?.result;
  if (!result || !('latency' in result)) return undefined;
  return Math.round(1000 / result.latency.mean);
}

/** The figures the target is stated in, from a finished run. */
export function summarizeProcess(bench: Bench): Record<string, number | undefined> {
  const spawnRate = runsPerSec(bench, ProcessTasks.rawSpawn);
  const execaRate = runsPerSec(bench, ProcessTasks.rawExeca);
  const troupeRate = runsPerSec(bench, ProcessTasks.troupe);
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? Number((a / b).toFixed(2)) : undefined);
  return {
    rawSpawnRunsPerSec: spawnRate,
    rawExecaRunsPerSec: execaRate,
    troupeRunsPerSec: troupeRate,
    troupeVsExeca: ratio(troupeRate, execaRate),
    troupeVsSpawn: ratio(troupeRate, spawnRate),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = processSuite(new Bench({ name: 'process', time: 2000, warmupTime: 300 }));
  await bench.run();
  if (process.argv.includes('--json')) console.log(JSON.stringify(summarizeProcess(bench), null, 2));
  else {
    console.table(bench.table());
    console.table(summarizeProcess(bench));
  }
}
