/**
 * Workloads 1–3: troupe against the layers and tools a user would otherwise pick, each workload in one tinybench
 * `Bench` (run twice, interleaved; rows are medians), same thread count and same concurrency for every system.
 *
 * 1. `mem` — no-op task round trip in memory: troupe `rt.run` (memory store, one task per `run()`) vs raw Piscina
 *    vs p-queue (the in-process floor) vs raw `worker_threads` echo (the physical floor):
 *    - burst: 1000 submitted at once, concurrency 1000 (p-queue's too; Piscina queues them itself); troupe also
 *      at its default concurrency (16), which is what an unconfigured runtime does;
 *    - idle: one task at a time on idle threads (the latency a lone `run()` sees).
 * 2. `cpu` — sha256 of 64 KiB per task, 200 at once: troupe `rt.run` vs raw Piscina.
 * 3. `process` — the `true` program, one at a time and 8 at once: troupe command task (`rt.run`, memory store)
 *    vs raw execa vs `child_process.spawn`.
 * 8. `streaming` — a command's output lines to a subscriber (see `runStreaming`).
 *
 * Runtimes, pools and threads are built and warmed in `beforeAll` and closed in `afterAll`; the timed function
 * only submits and awaits.
 *
 * Run: `npm run bench -- --scope mem|cpu|process|streaming [--filter regex]`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { availableParallelism } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Piscina } from 'piscina';
import { Bench } from 'tinybench';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { measureLines, printerTask, type LineFigures } from '../lib/line-printer.ts';
import { createRow, type Row } from '../lib/results.ts';
import { median, round } from '../lib/stats.ts';
import { runTinyPasses, type TinyRowSpec } from '../lib/tiny.ts';
import { addFloorTasks } from './floor.bench.ts';

export const THREADS = Math.max(2, Math.min(4, availableParallelism()));
const BURST = 1000;
const DEFAULT_CONCURRENCY = 16;
const CPU_BURST = 200;
const NOOP = new URL('../../test/fixtures/handlers/noop.ts', import.meta.url);
const SHA = new URL('../../test/fixtures/handlers/sha256.ts', import.meta.url);
const TSX_HOOKS = ['--import', `data:text/javascript,import{register}from${JSON.stringify(import.meta.resolve('tsx/esm/api'))};register();`];

export interface CompareOptions {
  /** @default 2 */
  passes?: number;
  /** Measured time per row and pass (ms). @default 1000 */
  time?: number;
  /** Keeps a row when its system or workload matches. @default every row */
  match?: (text: string) => boolean;
}

type Result = { rows: Row[]; skipped: string[]; info: Record<string, unknown> };

function includeBy(specs: readonly TinyRowSpec[], match: (text: string) => boolean): { kept: TinyRowSpec[]; include: (name: string) => boolean } {
  const kept = specs.filter((s) => match(s.name) || match(s.id) || match(s.system));
  const names = new Set(kept.map((s) => s.name));
  return { kept, include: (name) => names.has(name) };
}

function rawPiscina(file: URL): Piscina {
  return new Piscina({ filename: file.href, minThreads: THREADS, maxThreads: THREADS, idleTimeout: 60_000, execArgv: TSX_HOOKS });
}

/** A Bench task's setup and teardown for one troupe runtime (memory store, the suite's thread count). */
function troupeHooks(concurrency: number, tasks: CreateRuntimeOptions['tasks'], warm: (rt: Runtime) => Promise<unknown>, extra: Partial<CreateRuntimeOptions> = {}) {
  let rt: Runtime | undefined;
  return {
    get: () => rt!,
    beforeAll: async () => {
      rt = await createRuntime({ store: 'memory', maintenance: false, concurrency, pool: { minThreads: THREADS, maxThreads: THREADS }, tasks, ...extra });
      await warm(rt);
    },
    afterAll: async () => {
      await rt?.close();
      rt = undefined;
    },
  };
}

function piscinaHooks(file: URL) {
  let pool: Piscina | undefined;
  return {
    get: () => pool!,
    beforeAll: async () => {
      pool = rawPiscina(file);
      await Promise.all(Array.from({ length: THREADS * 16 }, (_, i) => pool!.run(i)));
    },
    afterAll: async () => {
      await pool?.destroy();
      pool = undefined;
    },
  };
}

async function burst(n: number, submit: (i: number) => Promise<unknown>): Promise<void> {
  const all = new Array<Promise<unknown>>(n);
  for (let i = 0; i < n; i++) all[i] = submit(i);
  await Promise.all(all);
}

/** Why: workload 1, the in-memory no-op round trip, burst and idle, four systems in one Bench. */
export async function runMem({ passes = 2, time = 1000, match = () => true }: CompareOptions = {}): Promise<Result> {
  const w = `no-op round trip, ${BURST} at once`;
  const wi = 'no-op round trip, one at a time (idle)';
  const specs: TinyRowSpec[] = [
    { name: 'mem burst troupe', id: 'burst/troupe', workload: w, system: 'troupe rt.run (memory)', concurrency: BURST, tasksPerIteration: BURST },
    { name: 'mem burst troupe default', id: 'burst/troupe-default', workload: w, system: 'troupe rt.run (memory), default concurrency', concurrency: DEFAULT_CONCURRENCY, tasksPerIteration: BURST },
    { name: 'mem burst piscina', id: 'burst/piscina', workload: w, system: 'raw Piscina', tasksPerIteration: BURST, note: `${THREADS} threads, its own queue` },
    { name: 'mem burst p-queue', id: 'burst/p-queue', workload: w, system: 'p-queue (in-process floor)', concurrency: BURST, tasksPerIteration: BURST },
    { name: 'mem burst worker_threads', id: 'burst/worker-threads', workload: w, system: 'raw worker_threads (physical floor)', tasksPerIteration: BURST, note: `${THREADS} echo threads, pipelined` },
    { name: 'mem idle troupe', id: 'idle/troupe', workload: wi, system: 'troupe rt.run (memory)', tasksPerIteration: 1 },
    { name: 'mem idle piscina', id: 'idle/piscina', workload: wi, system: 'raw Piscina', tasksPerIteration: 1 },
    { name: 'mem idle p-queue', id: 'idle/p-queue', workload: wi, system: 'p-queue (in-process floor)', tasksPerIteration: 1 },
    { name: 'mem idle worker_threads', id: 'idle/worker-threads', workload: wi, system: 'raw worker_threads (physical floor)', tasksPerIteration: 1 },
  ];
  const { kept, include } = includeBy(specs, match);
  const warm = (rt: Runtime) => burst(THREADS * 16, () => rt.run('noop'));
  const build = (bench: Bench) => {
    const t = troupeHooks(BURST, { noop: { handler: NOOP } }, warm);
    const td = troupeHooks(DEFAULT_CONCURRENCY, { noop: { handler: NOOP } }, warm);
    const p = piscinaHooks(NOOP);
    if (include('mem burst troupe')) bench.add('mem burst troupe', async () => burst(BURST, (i) => t.get().run('noop', i)), t);
    if (include('mem burst troupe default')) bench.add('mem burst troupe default', async () => burst(BURST, (i) => td.get().run('noop', i)), td);
    if (include('mem burst piscina')) bench.add('mem burst piscina', async () => burst(BURST, (i) => p.get().run(i)), p);
    const closeFloor = addFloorTasks(bench, { workerBurst: 'mem burst worker_threads', pqueueBurst: 'mem burst p-queue', workerIdle: 'mem idle worker_threads', pqueueIdle: 'mem idle p-queue' }, { burst: BURST, threads: THREADS, concurrency: BURST, include });
    if (include('mem idle troupe')) bench.add('mem idle troupe', async () => {
      await t.get().run('noop', 0);
    }, t);
    if (include('mem idle piscina')) bench.add('mem idle piscina', async () => {
      await p.get().run(0);
    }, p);
    return [t.afterAll, td.afterAll, p.afterAll, closeFloor];
  };
  const { rows, skipped } = await runTinyPasses(kept, build, { scope: 'mem', passes, time });
  return { rows, skipped, info: { threads: THREADS, burst: BURST, passes, timePerRowMs: time, latencyIs: 'one iteration: the whole burst, or one task for idle rows' } };
}

/** Why: workload 2, a CPU-bound handler (sha256 of 64 KiB), troupe vs raw Piscina in one Bench. */
export async function runCpu({ passes = 2, time = 1000, match = () => true }: CompareOptions = {}): Promise<Result> {
  const w = `sha256 of 64 KiB, ${CPU_BURST} at once`;
  const specs: TinyRowSpec[] = [
    { name: 'cpu troupe', id: 'burst/troupe', workload: w, system: 'troupe rt.run (memory)', concurrency: CPU_BURST, tasksPerIteration: CPU_BURST },
    { name: 'cpu piscina', id: 'burst/piscina', workload: w, system: 'raw Piscina', tasksPerIteration: CPU_BURST, note: `${THREADS} threads` },
  ];
  const { kept, include } = includeBy(specs, match);
  const build = (bench: Bench) => {
    const t = troupeHooks(CPU_BURST, { sha: { handler: SHA } }, (rt) => burst(THREADS * 16, () => rt.run('sha')));
    const p = piscinaHooks(SHA);
    if (include('cpu troupe')) bench.add('cpu troupe', async () => burst(CPU_BURST, () => t.get().run('sha')), t);
    if (include('cpu piscina')) bench.add('cpu piscina', async () => burst(CPU_BURST, (i) => p.get().run(i)), p);
    return [t.afterAll, p.afterAll];
  };
  const { rows, skipped } = await runTinyPasses(kept, build, { scope: 'cpu', passes, time });
  return { rows, skipped, info: { threads: THREADS, burst: CPU_BURST, passes, timePerRowMs: time } };
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

/** MB the process scope allocates before its large-heap rows, as a service with a large heap would hold. */
const BALLAST_MB = 400;

/**
 * Why: workload 3, a subprocess per task: troupe command task vs raw execa vs spawn, 1 and 8 at once. troupe runs
 * both ways: by default its spawn server forks the child (this process only reads the pipes), and with
 * `spawn: 'direct'` it forks here through execa, as the raw rows do. Then the 8-at-once rows again after this
 * process allocated {@link BALLAST_MB} MB: a fork copies the forking process's page tables, so the direct ways slow
 * down with its memory and the spawn server does not (bench/fork-cost.ts shows the event-loop stalls too).
 */
export async function runProcess({ passes = 2, time = 1000, match = () => true }: CompareOptions = {}): Promise<Result> {
  const specs: TinyRowSpec[] = [];
  const heavySpecs: TinyRowSpec[] = [];
  for (const c of [1, 8]) {
    const w = c === 1 ? '`true` subprocess, one at a time' : `\`true\` subprocess, ${c} at once`;
    specs.push(
      { name: `process c${c} troupe`, id: `c${c}/troupe`, workload: w, system: 'troupe command task (rt.run, memory; spawn server)', concurrency: c, tasksPerIteration: c },
      { name: `process c${c} troupe-direct`, id: `c${c}/troupe-direct`, workload: w, system: "troupe command task, spawn: 'direct' (execa in this process)", concurrency: c, tasksPerIteration: c },
      { name: `process c${c} execa`, id: `c${c}/execa`, workload: w, system: 'raw execa', concurrency: c, tasksPerIteration: c },
      { name: `process c${c} spawn`, id: `c${c}/spawn`, workload: w, system: 'child_process.spawn', concurrency: c, tasksPerIteration: c },
    );
  }
  const hw = `\`true\` subprocess, 8 at once, ${BALLAST_MB} MB allocated in the process`;
  heavySpecs.push(
    { name: 'process heap c8 troupe', id: 'heap-c8/troupe', workload: hw, system: 'troupe command task (rt.run, memory; spawn server)', concurrency: 8, tasksPerIteration: 8 },
    { name: 'process heap c8 troupe-direct', id: 'heap-c8/troupe-direct', workload: hw, system: "troupe command task, spawn: 'direct' (execa in this process)", concurrency: 8, tasksPerIteration: 8 },
    { name: 'process heap c8 execa', id: 'heap-c8/execa', workload: hw, system: 'raw execa', concurrency: 8, tasksPerIteration: 8 },
    { name: 'process heap c8 spawn', id: 'heap-c8/spawn', workload: hw, system: 'child_process.spawn', concurrency: 8, tasksPerIteration: 8 },
  );
  const { kept, include } = includeBy(specs, match);
  const heavy = includeBy(heavySpecs, match);
  const build = (concurrencies: number[], prefix: string, wanted: (name: string) => boolean) => (bench: Bench) => {
    const closers: Array<() => Promise<void>> = [];
    for (const c of concurrencies) {
      const t = troupeHooks(c, { true: { command: 'true' } }, (rt) => rt.run('true'));
      if (wanted(`${prefix}c${c} troupe`)) bench.add(`${prefix}c${c} troupe`, async () => burst(c, () => t.get().run('true')), t);
      const d = troupeHooks(c, { true: { command: 'true' } }, (rt) => rt.run('true'), { spawn: 'direct' });
      if (wanted(`${prefix}c${c} troupe-direct`)) bench.add(`${prefix}c${c} troupe-direct`, async () => burst(c, () => d.get().run('true')), d);
      if (wanted(`${prefix}c${c} execa`)) bench.add(`${prefix}c${c} execa`, async () => burst(c, () => execa('true')));
      if (wanted(`${prefix}c${c} spawn`)) bench.add(`${prefix}c${c} spawn`, async () => burst(c, spawnTrue));
      closers.push(t.afterAll, d.afterAll);
    }
    return closers;
  };
  const { rows, skipped } = await runTinyPasses(kept, build([1, 8], 'process ', include), { scope: 'process', passes, time });
  if (heavy.kept.length > 0) {
    const ballast: Buffer[] = [];
    for (let i = 0; i < BALLAST_MB; i++) ballast.push(Buffer.alloc(1 << 20, 1));
    const more = await runTinyPasses(heavy.kept, build([8], 'process heap ', heavy.include), { scope: 'process', passes, time });
    rows.push(...more.rows);
    skipped.push(...more.skipped);
    ballast.length = 0;
  }
  return { rows, skipped, info: { program: 'true', passes, timePerRowMs: time, ballastMb: BALLAST_MB } };
}

const FLOOD_LINES = 500_000;
const PACED_RATE = 20_000;
const PACED_SECONDS = 2;

/**
 * Why: workload 8, output streaming: a command's stdout lines to a `rt.on('task.output')` subscriber, on a memory
 * and a SQLite (WAL, NORMAL) runtime, interleaved over `passes` (3): a flood of 500,000 lines (lines/s) and 20,000
 * lines/s for 2 s (per-line delay p50/p99). Then the same path on to an HTTP client over SSE, reusing
 * sse.bench.ts (one transfer per row; `--filter` without `sse` leaves it out).
 */
export async function runStreaming({ passes = 3, match = () => true }: CompareOptions = {}): Promise<Result> {
  const stores = (['memory', 'sqlite'] as const).filter((s) => match(`troupe-${s}`) || match('subscriber') || match(`flood ${s}`) || match(`paced ${s}`));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'troupe-bench-stream-'));
  const rts = new Map<string, Runtime>();
  const flood = new Map<string, LineFigures[]>();
  const paced = new Map<string, LineFigures[]>();
  const skipped: string[] = [];
  const rows: Row[] = [];
  try {
    for (const store of stores) {
      const rt = await createRuntime({
        store: store === 'memory' ? 'memory' : `sqlite:${path.join(dir, 'stream.db')}`,
        maintenance: false,
        output: { maxLines: 2_000_000, maxBytes: '500MB' },
        tasks: { printer: printerTask },
      });
      rts.set(store, rt);
      await measureLines(rt, 1000, 0);
    }
    for (let pass = 0; pass < passes; pass++) {
      for (const [store, rt] of rts) {
        const f = await measureLines(rt, FLOOD_LINES, 0);
        flood.set(store, [...(flood.get(store) ?? []), f]);
        const p = await measureLines(rt, PACED_RATE * PACED_SECONDS, PACED_RATE);
        paced.set(store, [...(paced.get(store) ?? []), p]);
        console.log(`  streaming pass ${pass + 1} ${store}: flood ${f.linesPerSec.toLocaleString('en-US')} lines/s; paced p50 ${p.delay!.p50Ms.toFixed(3)} ms, p99 ${p.delay!.p99Ms.toFixed(3)} ms`);
      }
    }
  } finally {
    for (const rt of rts.values()) await rt.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
  for (const store of rts.keys()) {
    const fs = flood.get(store) ?? [];
    const ps = paced.get(store) ?? [];
    const label = `troupe (${store === 'memory' ? 'memory' : 'SQLite, WAL, NORMAL'})`;
    if (fs.length) {
      rows.push(createRow('streaming', `flood/troupe-${store}`, {
        workload: `${FLOOD_LINES.toLocaleString('en-US')} lines flood → rt.on('task.output')`,
        system: label,
        opsPerSec: Math.round(median(fs.map((f) => f.linesPerSec))),
        samples: fs.length,
        note: 'first printed → last delivered',
      }));
    }
    if (ps.length) {
      rows.push(createRow('streaming', `paced/troupe-${store}`, {
        workload: `${PACED_RATE.toLocaleString('en-US')} lines/s for ${PACED_SECONDS} s → rt.on('task.output')`,
        system: label,
        opsPerSec: Math.round(median(ps.map((p) => p.linesPerSec))),
        meanMs: round(median(ps.map((p) => p.delay!.meanMs)), 4),
        p50Ms: round(median(ps.map((p) => p.delay!.p50Ms)), 4),
        p99Ms: round(median(ps.map((p) => p.delay!.p99Ms)), 4),
        maxMs: round(median(ps.map((p) => p.delay!.maxMs)), 4),
        samples: ps.reduce((n, p) => n + p.lines, 0),
        note: 'latency = line printed → delivered',
      }));
    }
  }
  if (match('sse')) {
    const { default: sseSuite, closeSse, summarizeSse } = await import('./sse.bench.ts');
    const bench = sseSuite(new Bench({ name: 'sse', iterations: 1, time: 0, warmup: false }));
    try {
      await bench.run();
    } finally {
      await closeSse();
    }
    for (const task of bench.tasks) {
      const r = task.result;
      if (r?.state === 'errored') skipped.push(`${task.name}: ${r.error.message}`);
    }
    for (const s of summarizeSse()) {
      rows.push(createRow('streaming', `sse-${s.workload}/troupe-${s.store}`, {
        workload: s.workload === 'flood' ? `${s.lines.toLocaleString('en-US')} lines flood → SSE client (sse.bench.ts)` : `${s.lines.toLocaleString('en-US')} lines paced → SSE client (sse.bench.ts)`,
        system: `troupe (${s.store}) + HTTP SSE`,
        opsPerSec: s.deliveredPerSec,
        ...(s.workload === 'paced' ? { p50Ms: s.delayP50Ms, p99Ms: s.delayP99Ms, maxMs: s.delayMaxMs } : {}),
        samples: s.runs,
        note: `captured ${s.capturedPerSec.toLocaleString('en-US')} lines/s; server CPU ${s.serverCpuUsPerLine} µs/line`,
      }));
    }
  }
  return { rows, skipped, info: { floodLines: FLOOD_LINES, pacedRate: PACED_RATE, pacedSeconds: PACED_SECONDS, passes } };
}
