/**
 * What starting a subprocess costs the process that starts it, and what a helper process would save.
 *
 * libuv's spawn forks the calling process (its page tables are copied) and waits for the child's exec, all on the
 * main thread: the cost grows with the caller's memory, and the event loop stalls meanwhile. This runs `true`
 * 8 at a time (`--total` runs, 240 by default) four ways, in alternating rounds:
 * - `server`: troupe's `runCommand` as command tasks run by default: its spawn server (a small, long-lived `node`)
 *   forks the child and hands its pipes over, read here (src/process/spawn-client.ts);
 * - `direct`: troupe's `runCommand` with `spawn: 'direct'`: execa in this process, plus troupe's run;
 * - `spawn`: `child_process.spawn` in this process;
 * - `execa`: `execa('true')` in this process.
 * For each it prints runs per second and the worst event-loop stall seen by a 1 ms interval meanwhile.
 * `--ballast <MB>` allocates that much first, as a service with a large heap would have.
 *
 * Run: `npx tsx bench/fork-cost.ts [--ballast 400] [--total 240]`.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { runCommand } from '../src/process/run-command.ts';

const { values } = parseArgs({ options: { ballast: { type: 'string', default: '0' }, total: { type: 'string', default: '240' } } });
const ballastMb = Number(values.ballast);
const total = Number(values.total);
if (!Number.isInteger(ballastMb) || ballastMb < 0 || !Number.isInteger(total) || total < 8) {
  console.error('Expected `--ballast` to be a whole number of MB ≥ 0 and `--total` a whole number ≥ 8');
  process.exit(2);
}
const ballast: Buffer[] = [];
for (let i = 0; i < ballastMb; i++) ballast.push(Buffer.alloc(1 << 20, 1));

const command = (spawn: 'server' | 'direct') => () =>
  runCommand({ command: 'true', args: [], killGraceMs: 5000, maxLines: 100, maxBytes: 10_000, spawn });

const ways: Record<string, () => Promise<unknown>> = {
  server: command('server'),
  direct: command('direct'),
  spawn: () =>
    new Promise((resolve, reject) => {
      const child = spawn('true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.resume();
      child.stderr.resume();
      child.once('error', reject);
      child.once('close', resolve);
    }),
  execa: () => execa('true'),
};

console.log(`fork cost: \`true\` 8 at a time, ${total} runs per round, ${ballastMb} MB of ballast; Node ${process.version}`);
for (let round = 0; round < 3; round++) {
  for (const [name, run] of Object.entries(ways)) {
    let worst = 0;
    let last = performance.now();
    const watch = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 1);
      last = now;
    }, 1);
    const t0 = performance.now();
    for (let i = 0; i < total; i += 8) await Promise.all(Array.from({ length: 8 }, run));
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(watch);
    // Round 0 warms each way up.
    if (round > 0) console.log(`  round ${round} ${name.padEnd(6)} ${(total / seconds).toFixed(0).padStart(5)} runs/s, worst event-loop stall ${worst.toFixed(1)} ms`);
  }
}
void ballast;
