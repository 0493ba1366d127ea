/**
 * How late a caller on one node hears the end of a task another node ran: `npx tsx bench/remote-await.ts`.
 *
 * Two runtimes on one PostgreSQL schema (a fresh one, dropped at the end). Node A has one slot, held by a task
 * of its own, so every task it starts runs on node B; B's handler sleeps for the given time. For each duration A
 * starts one task and awaits its handle; the figure is A's time of hearing it minus the task's `finishedAt` (as B
 * stored it; both nodes read the same clock). Durations: 300 ms to 3.1 s, one task at a time.
 *
 * With `--backlog N`, A starts N tasks of `--ms` each (150) at once instead, and B runs them two at a time,
 * holding none ahead (prefetch 0): most are still queued at A's first read of them (200 ms in) and start later,
 * some seconds later. The figures are the same lateness per task (its mean, median and maximum), and the time
 * until A heard the last one.
 *
 * Options: --url postgres://… (TROUPE_TEST_PG_URL or the local default), --backlog N, --ms N.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createRuntime } from '../src/runtime.ts';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.TROUPE_BENCH_PG_URL || process.env.TROUPE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test' },
    backlog: { type: 'string', default: '0' },
    ms: { type: 'string', default: '150' },
  },
});
const base = args.url!;
const schema = `bench_await_${process.pid}`;
const url = `${base}${base.includes('?') ? '&' : '?'}schema=${schema}`;
const DURATIONS = [300, 450, 700, 900, 1100, 1300, 1700, 2100, 2600, 3100];
const BACKLOG = Number(args.backlog);
const BACKLOG_MS = Number(args.ms);

let release!: () => void;
const hold = new Promise<void>((resolve) => (release = resolve));
const a = await createRuntime({ store: url, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { sleep: { run: async () => (await hold, 'a') } } });
// In backlog mode B holds no tasks ahead of its slots, so the backlog waits in the table (as one that outgrew the
// nodes' prefetch buffers does), not claimed into B's buffer.
const b = await createRuntime({ store: url, nodeId: 'b', concurrency: 2, ...(BACKLOG > 0 ? { prefetch: 0 } : {}), maintenance: false, tasks: { sleep: { run: async (ms: number) => (await new Promise((r) => setTimeout(r, ms)), 'b') } } });
try {
  const blocker = a.start('sleep');
  while ((await a.get(blocker.id))?.state !== 'running') await new Promise((r) => setTimeout(r, 20));
  const late: number[] = [];
  if (BACKLOG > 0) {
    const t0 = Date.now();
    const handles = Array.from({ length: BACKLOG }, () => a.start('sleep', BACKLOG_MS));
    const heard = await Promise.all(handles.map((h) => h.result.then(() => Date.now())));
    for (const [i, h] of handles.entries()) late.push(heard[i]! - ((await a.get(h.id))?.timings.finishedAt ?? Number.NaN));
    const sorted = [...late].sort((x, y) => x - y);
    console.log(`${BACKLOG} tasks of ${BACKLOG_MS} ms at once, run two at a time on the other node; all heard after ${Math.max(...heard) - t0} ms`);
    console.log(`heard late by (ms): mean ${(late.reduce((x, y) => x + y, 0) / late.length).toFixed(1)}, median ${sorted[sorted.length >> 1]}, max ${sorted[sorted.length - 1]}`);
  }
  for (const ms of BACKLOG > 0 ? [] : DURATIONS) {
    const h = a.start('sleep', ms);
    await h.result;
    const heard = Date.now();
    const view = await a.get(h.id);
    late.push(heard - (view?.timings.finishedAt ?? Number.NaN));
  }
  if (BACKLOG === 0) {
    console.log(`task durations (ms): ${DURATIONS.join(' · ')}`);
    console.log(`heard late by (ms):  ${late.join(' · ')}`);
    console.log(`mean ${(late.reduce((x, y) => x + y, 0) / late.length).toFixed(1)} ms, max ${Math.max(...late)} ms`);
  }
} finally {
  release();
  await b.close();
  await a.close();
  const client = new pg.Client(base);
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}
