/**
 * Output streaming, end to end: lines a command prints on stdout → troupe's capture (execa, line splitter,
 * executor, tracker) → the task's SSE stream (`GET /api/tasks/:id/output`) → an HTTP client on loopback.
 *
 * Two workloads, each on a memory-store and a SQLite-store runtime (WAL, synchronous=NORMAL):
 * - flood: the command prints LINES lines as fast as the pipe takes them. Figures: lines/s captured (first line
 *   printed → last `task.output` fact in the runtime) and lines/s delivered (→ last line parsed by the client).
 * - paced: the command prints PACED_RATE lines/s in 1 ms ticks for PACED_SECONDS. Figure: the delay of each line
 *   from printed (a timestamp inside the line) to parsed by the client, p50 / p99 / max.
 *
 * Target (issue 4): ≥ 100,000 lines/s captured, p99 delay < 20 ms.
 * Both processes timestamp with `performance.timeOrigin + performance.now()` (the same wall clock, sub-ms).
 *
 * Run alone: `npx tsx bench/suites/sse.bench.ts` (add `--json` for JSON; `--lines=N`, `--rate=N` to change the load).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Bench } from 'tinybench';
import { startServer, type StartedServer } from '../../src/http/listen.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { PRINTER } from '../lib/line-printer.ts';

const arg = (name: string, fallback: number) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : fallback;
};
const LINES = arg('lines', 200_000);
const PACED_RATE = arg('rate', 20_000);
const PACED_SECONDS = 2;


const wallNow = () => performance.timeOrigin + performance.now();

export interface StreamFigures {
  store: string;
  workload: 'flood' | 'paced';
  lines: number;
  /** Lines per second from the first line printed to the last one captured by the runtime. */
  capturedPerSec: number;
  /** Lines per second from the first line printed to the last one parsed by the SSE client. */
  deliveredPerSec: number;
  /** The server process's CPU time (user + system, all its threads) per line, in µs: the cost on a loaded machine. */
  serverCpuUsPerLine: number;
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
}

interface Setup {
  store: string;
  rt: Runtime;
  server: StartedServer;
  dir: string;
}

async function setUp(store: 'memory' | 'sqlite'): Promise<Setup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'troupe-sse-bench-'));
  const rt = await createRuntime({
    store: store === 'memory' ? 'memory' : `sqlite:${path.join(dir, 'bench.db')}`,
    maintenance: false,
    output: { maxLines: 2_000_000, maxBytes: '500MB' },
    tasks: {
      printer: {
        command: process.execPath,
        args: (input: { lines: number; rate: number }) => ['-e', PRINTER, String(input.lines), String(input.rate)],
        output: { maxLines: 2_000_000, maxBytes: '500MB' },
        timeout: '5m',
      },
    },
  });
  const server = await startServer(rt, { host: '127.0.0.1', port: 0, env: {}, processMetrics: false });
  return { store, rt, server, dir };
}

async function tearDown(s: Setup): Promise<void> {
  await s.server.close();
  await s.rt.close();
  await rm(s.dir, { recursive: true, force: true });
}

/**
 * The SSE client runs in its own process, as a real client would be elsewhere: parsing 100k events/s on the
 * server's loop would measure the client, not the server, and in another process the server's CPU time
 * (`process.cpuUsage`) is the server's alone.
 */
const CLIENT = String.raw`
const http = require('node:http');
const args = { url: process.argv[1], lines: Number(process.argv[2]) };
const report = (m) => process.send({ ...m, delays: m.delays ? Array.from(m.delays) : undefined }, () => m.opened || process.exit(0));
const wallNow = () => performance.timeOrigin + performance.now();
const delays = new Float64Array(args.lines);
let count = 0, lastAt = 0, firstPrinted = Infinity, buffer = '', ended = false;
const req = http.get(args.url, { headers: { accept: 'text/event-stream' } }, (res) => {
  res.setEncoding('utf8');
  res.on('data', (chunk) => {
    const at = wallNow();
    buffer += chunk;
    let start = 0, cut;
    while ((cut = buffer.indexOf('\n\n', start)) >= 0) {
      const block = buffer.slice(start, cut);
      start = cut + 2;
      if (block.startsWith('event: output\n')) {
        const data = JSON.parse(block.slice(block.indexOf('data: ') + 6));
        const printed = Number(data.text.slice(data.text.indexOf(' ') + 1));
        if (printed < firstPrinted) firstPrinted = printed;
        if (count < delays.length) delays[count] = at - printed;
        count++;
        lastAt = at;
      } else if (block.startsWith('event: end\n')) ended = true;
    }
    buffer = buffer.slice(start);
  });
  res.on('end', () => report({ ended, count, lastAt, firstPrinted, delays }));
  res.on('error', (e) => report({ error: String(e) }));
});
req.on('error', (e) => report({ error: String(e) }));
report({ opened: true });
`;

interface ClientResult {
  ended: boolean;
  count: number;
  lastAt: number;
  firstPrinted: number;
  delays: Float64Array;
  error?: string;
}

/** Starts a client process reading one task's SSE output stream until `end`. */
function readStream(url: string, lines: number): { opened: Promise<void>; done: Promise<ClientResult> } {
  const child = spawn(process.execPath, ['-e', CLIENT, url, String(lines)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  const done = new Promise<ClientResult>((resolve, reject) => {
    child.on('message', (m: Omit<ClientResult, 'delays'> & { delays?: number[]; opened?: boolean }) => {
      if (m.opened) return opened();
      if (m.error) reject(new Error(m.error));
      else if (!m.ended) reject(new Error('stream ended without `end`'));
      else resolve({ ...m, delays: Float64Array.from(m.delays ?? []) });
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the client exited (${code}) before reporting`)));
  });
  return { opened: openedP, done };
}

/** Waits until the server holds `n` open SSE streams (read from its own metrics). */
async function waitForStreams(s: Setup, n: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const res = await s.server.app.inject({ method: 'GET', url: '/metrics' });
    if (Number(/^troupe_http_sse_clients (\d+)/m.exec(res.body)?.[1]) >= n) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error('the SSE client did not connect');
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One transfer: enqueue the printer, follow its stream from before it starts, and measure. */
export async function measureStream(s: Setup, workload: 'flood' | 'paced'): Promise<StreamFigures> {
  const lines = workload === 'flood' ? LINES : PACED_RATE * PACED_SECONDS;
  const rt = s.rt;
  rt.pause('printer');
  const id = await rt.enqueue('printer', { lines, rate: workload === 'flood' ? 0 : PACED_RATE });
  let captured = 0;
  let lastCapturedAt = 0;
  const off = rt.on('task.output', (f) => {
    if (f.id !== id) return;
    captured++;
    lastCapturedAt = wallNow();
  });
  const reading = readStream(`${s.server.url}/api/tasks/${id}/output`, lines);
  await reading.opened;
  // Let the client's stream open before the command starts (its first event is the task's state), then release it.
  await waitForStreams(s, 1);
  const cpu0 = process.cpuUsage();
  rt.resume('printer');
  const got = await reading.done;
  const cpu = process.cpuUsage(cpu0);
  off();
  if (got.count !== lines) throw new Error(`expected ${lines} lines, the client got ${got.count}`);
  if (captured !== lines) throw new Error(`expected ${lines} lines, the runtime captured ${captured}`);
  const sorted = got.delays.subarray(0, got.count).slice().sort();
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    store: s.store,
    workload,
    lines,
    capturedPerSec: Math.round(lines / ((lastCapturedAt - got.firstPrinted) / 1000)),
    deliveredPerSec: Math.round(lines / ((got.lastAt - got.firstPrinted) / 1000)),
    serverCpuUsPerLine: Math.round(((cpu.user + cpu.system) / lines) * 100) / 100,
    delayP50Ms: round(percentile(sorted, 50)),
    delayP99Ms: round(percentile(sorted, 99)),
    delayMaxMs: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

export const results: StreamFigures[] = [];
const setups = new Map<string, Setup>();

export const SseTasks = {
  memoryFlood: `sse: ${LINES} lines flood, memory store`,
  memoryPaced: `sse: ${PACED_RATE} lines/s paced, memory store`,
  sqliteFlood: `sse: ${LINES} lines flood, sqlite store`,
  sqlitePaced: `sse: ${PACED_RATE} lines/s paced, sqlite store`,
} as const;

/** Adds the SSE streaming suite to `bench` (each task is one full transfer; figures go to `summarizeSse`). */
export default function sseSuite(bench: Bench): Bench {
  const add = (name: string, store: 'memory' | 'sqlite', workload: 'flood' | 'paced') =>
    bench.add(
      name,
      async () => {
        results.push(await measureStream(setups.get(store)!, workload));
      },
      {
        beforeAll: async () => {
          if (!setups.has(store)) setups.set(store, await setUp(store));
        },
      },
    );
  add(SseTasks.memoryFlood, 'memory', 'flood');
  add(SseTasks.memoryPaced, 'memory', 'paced');
  add(SseTasks.sqliteFlood, 'sqlite', 'flood');
  add(SseTasks.sqlitePaced, 'sqlite', 'paced');
  return bench;
}

/** Closes the runtimes the suite opened. */
export async function closeSse(): Promise<void> {
  for (const s of setups.values()) await tearDown(s);
  setups.clear();
}

/** Medians per (store, workload) over the runs. */
export function summarizeSse(): Array<StreamFigures & { runs: number }> {
  const groups = new Map<string, StreamFigures[]>();
  for (const r of results) {
    const key = `${r.store}/${r.workload}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return [...groups.values()].map((rs) => ({
    store: rs[0]!.store,
    workload: rs[0]!.workload,
    lines: rs[0]!.lines,
    runs: rs.length,
    capturedPerSec: median(rs.map((r) => r.capturedPerSec)),
    deliveredPerSec: median(rs.map((r) => r.deliveredPerSec)),
    serverCpuUsPerLine: median(rs.map((r) => r.serverCpuUsPerLine)),
    delayP50Ms: median(rs.map((r) => r.delayP50Ms)),
    delayP99Ms: median(rs.map((r) => r.delayP99Ms)),
    delayMaxMs: median(rs.map((r) => r.delayMaxMs)),
  }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = sseSuite(new Bench({ name: 'sse', iterations: 3, time: 0, warmup: false }));
  try {
    await bench.run();
  } finally {
    await closeSse();
  }
  for (const task of bench.tasks) {
    const r = task.result as { error?: unknown } | undefined;
    if (r?.error) console.error(`${task.name}: ${String((r.error as Error).message ?? r.error)}`);
  }
  const summary = summarizeSse();
  const floods = summary.filter((r) => r.workload === 'flood');
  const paced = summary.filter((r) => r.workload === 'paced');
  const target = {
    capturedAtLeast100kPerSec: floods.length > 0 && floods.every((r) => r.capturedPerSec >= 100_000),
    pacedP99Below20Ms: paced.length > 0 && paced.every((r) => r.delayP99Ms < 20),
  };
  const machine = { node: process.version, cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) };
  if (process.argv.includes('--json')) console.log(JSON.stringify({ ...machine, summary, target }, null, 2));
  else {
    console.table(summary);
    console.log(machine, target);
  }
}
