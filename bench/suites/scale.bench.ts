/**
 * Workload 7, scale: 1,000,000 queued tasks in the SQLite store (WAL, synchronous=NORMAL). Not part of `--scope
 * all` (it takes minutes and writes a database of several hundred MB): `npm run bench -- --scope scale`.
 *
 * Everything runs in one fresh child process, so its RSS is the runtime's own. The child is compiled JavaScript, as
 * users run troupe: this file bundled with esbuild and run by plain `node` (child.ts `build`), not the TypeScript
 * sources through the tsx loader, which alone takes ≈35 MB of RSS:
 * 1. enqueue: a runtime with the task name paused takes 1,000,000 no-op tasks through `rt.enqueueMany` in batches
 *    of 1000 (validated and committed like any enqueue): time and rate. Paused is how a queue fills without being
 *    drained, and it is a real case: every batch wakes the scheduler, whose claim excludes the paused name;
 * 2. held: the RSS of the runtime sitting on the full queue (at rest, after a GC), and its peak; the note splits
 *    off what Node alone takes;
 * 3. drain at depth against near-empty: after an untimed first chunk (the peak RSS of step 2 is read after it), a
 *    second runtime opens a fresh file with 21,000 queued, and the two drain in chunks of 2,000 taking turns
 *    (alternating which goes first; the name resumed for a chunk, paused after it; concurrency 16, inline no-op,
 *    default claim batch), 10 chunks each: tasks/s of each, so that both see the same load of this shared
 *    machine (one long drain per file, tens of seconds apart, read anywhere from 0.5× to 1.2× on the same code);
 * 4. store claim at depth: the runtime closed, the store alone claims 64 and settles 64, 300 times, with 64 new
 *    tasks enqueued before each claim outside the timing (so the depth stays put): tasks/s. Its baseline, the same
 *    on a fresh database (64 queued for each claim), runs in the same loop, round by round in alternating order,
 *    so that both see the same load of this shared machine;
 * The targets: RSS under 150 MB; claim and drain rates at depth within 10 % of the near-empty ones.
 *
 * Options: `--scale-tasks N` (default 1,000,000).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childSpec, peakRssMb, reportToParent, runInChild } from '../lib/child.ts';
import { createRow, type Row } from '../lib/results.ts';
import { round } from '../lib/stats.ts';

const ENQUEUE_BATCH = 1000;
const DRAIN = 20_000;
/** The drains of step 3 run in this many chunks per file, taking turns. */
const DRAIN_CHUNKS = 10;
/**
 * Queued on the near-empty file: a few runs more than a chunk's count start before its pause lands (≈20 here), so
 * there is room for them and the last chunk still finds its tasks.
 */
const EMPTY_FILL = DRAIN + DRAIN_CHUNKS * 100;
const CLAIM = 64;
const CLAIM_ROUNDS = 300;
const CONCURRENCY = 16;

export interface ScaleOptions {
  /** @default 1000000 */
  tasks?: number;
}

interface ChildSpec {
  tasks: number;
  dir: string;
}

interface ScaleResult {
  tasks: number;
  /** RSS of the child before it imported troupe: Node plus the parsed bundle. */
  startRssMb: number;
  enqueueSeconds: number;
  enqueuePeakRssMb: number;
  baseRssMb: number;
  heldRssMb: number;
  dbSizeMb: number;
  deepDrainPerSec: number;
  deepPeakRssMb: number;
  deepClaimPerSec: number;
  emptyDrainPerSec: number;
  emptyClaimPerSec: number;
  error?: string;
}

/** Why: workload 7; rows keyed `scale/<phase>/troupe-sqlite`. */
export async function runScale({ tasks = 1_000_000 }: ScaleOptions = {}): Promise<{ rows: Row[]; skipped: string[]; info: Record<string, unknown> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-scale-'));
  const nodeRssMb = Math.round(Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage.rss()))'], { encoding: 'utf8' })) / 2 ** 20);
  let r: ScaleResult;
  try {
    r = await runInChild<ScaleResult>(import.meta.url, { tasks, dir } satisfies ChildSpec, { timeoutMs: 1_800_000, execArgv: ['--expose-gc'], build: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (r.error) return { rows: [], skipped: [`scale: ${r.error}`], info: {} };
  const n = tasks.toLocaleString('en-US');
  const sys = 'troupe-SQLite (WAL, NORMAL)';
  const rows: Row[] = [
    createRow('scale', 'enqueue/troupe-sqlite', { workload: `enqueue ${n} (enqueueMany × ${ENQUEUE_BATCH})`, system: sys, opsPerSec: Math.round(tasks / r.enqueueSeconds), meanMs: round(r.enqueueSeconds * 1000, 4), peakRssMb: r.enqueuePeakRssMb, note: `whole enqueue; database ${Math.round(r.dbSizeMb)} MB` }),
    createRow('scale', 'held/troupe-sqlite', {
      workload: `${n} queued, runtime idle then draining`,
      system: sys,
      peakRssMb: r.deepPeakRssMb,
      note: `compiled (esbuild bundle, plain node); at rest ${Math.round(r.heldRssMb)} MB; idle runtime before enqueue ${Math.round(r.baseRssMb)} MB; of which Node ${nodeRssMb} MB + bundle loaded ${Math.round(r.startRssMb - nodeRssMb)} MB`,
    }),
    createRow('scale', 'drain-deep/troupe-sqlite', { workload: `runtime drains ${DRAIN.toLocaleString('en-US')} from ${n} deep (${DRAIN_CHUNKS} chunks, taking turns)`, system: sys, concurrency: CONCURRENCY, opsPerSec: Math.round(r.deepDrainPerSec) }),
    createRow('scale', 'drain-empty/troupe-sqlite', { workload: `runtime drains ${DRAIN.toLocaleString('en-US')} from ${EMPTY_FILL.toLocaleString('en-US')} deep (${DRAIN_CHUNKS} chunks, taking turns)`, system: sys, concurrency: CONCURRENCY, opsPerSec: Math.round(r.emptyDrainPerSec) }),
    createRow('scale', 'claim-deep/troupe-sqlite', { workload: `store claim ${CLAIM} + settle ${CLAIM}, ${n} deep`, system: sys, opsPerSec: Math.round(r.deepClaimPerSec), samples: CLAIM_ROUNDS }),
    createRow('scale', 'claim-empty/troupe-sqlite', { workload: `store claim ${CLAIM} + settle ${CLAIM}, ${CLAIM} queued`, system: sys, opsPerSec: Math.round(r.emptyClaimPerSec), samples: CLAIM_ROUNDS }),
  ];
  return {
    rows,
    skipped: [],
    info: { tasks, drainChunks: DRAIN_CHUNKS, child: 'esbuild bundle run by plain node (no tsx loader)', enqueueBatch: ENQUEUE_BATCH, drain: DRAIN, claim: CLAIM, claimRounds: CLAIM_ROUNDS, concurrency: CONCURRENCY, nodeRssMb, childStartRssMb: r.startRssMb, enqueueWhile: 'task name paused (the scheduler is woken by every batch and claims with the name excluded)' },
  };
}

// ── the child's side ─────────────────────────────────────────────────────────────────────────────────────────

const rssMb = () => Math.round((process.memoryUsage.rss() / 2 ** 20) * 10) / 10;

async function settleRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  return rssMb();
}

async function openRuntime(file: string, onRun: () => void) {
  const { createRuntime } = await import('../../src/runtime.ts');
  return createRuntime({
    store: `sqlite:${file}`,
    concurrency: CONCURRENCY,
    maintenance: false,
    tasks: { noop: { run: () => (onRun(), null) } },
  });
}

/** Enqueues `count` paused tasks through the runtime; returns the seconds it took. */
async function fill(rt: Awaited<ReturnType<typeof openRuntime>>, count: number): Promise<number> {
  const started = performance.now();
  for (let at = 0; at < count; at += ENQUEUE_BATCH) {
    const n = Math.min(ENQUEUE_BATCH, count - at);
    await rt.enqueueMany(Array.from({ length: n }, (_, k) => ({ name: 'noop', input: { i: at + k } })));
  }
  return (performance.now() - started) / 1000;
}

interface RunCounter {
  ran: number;
  target: number;
  done?: () => void;
}

/** Resumes the name, times `count` runs, pauses it again and waits until their outcomes are stored: ms. */
async function drainChunk(rt: Awaited<ReturnType<typeof openRuntime>>, counter: RunCounter, count: number): Promise<number> {
  counter.ran = 0;
  counter.target = count;
  const finished = new Promise<void>((resolve) => (counter.done = resolve));
  const started = performance.now();
  rt.resume('noop');
  await finished;
  const ms = performance.now() - started;
  rt.pause('noop');
  await rt.flush();
  return ms;
}

/**
 * Store-level claim 64 + settle 64, `CLAIM_ROUNDS` times on each file, with 64 new tasks enqueued (untimed) before
 * each claim; the files take turns round by round (alternating which goes first). Returns tasks/s per file.
 */
async function claimRates(files: readonly string[]): Promise<number[]> {
  const { createSqliteStore } = await import('../../src/store/sqlite/sqlite-store.ts');
  const { createTaskId } = await import('../../src/ids.ts');
  // the runtime's default strategy, which made the deep file: every file then carries the same claim index
  const stores = files.map((file) => createSqliteStore(file, { strategy: 'priority' }));
  const timed = files.map(() => 0);
  try {
    for (const store of stores) await store.open();
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      for (let k = 0; k < stores.length; k++) {
        const i = round % 2 === 0 ? k : stores.length - 1 - k;
        const store = stores[i]!;
        const now = Date.now();
        await store.enqueue(Array.from({ length: CLAIM }, (_, j) => ({ id: createTaskId(now), name: 'noop', input: { i: j }, priority: 0, weight: 1, maxAttempts: 1, createdAt: now, runAt: now })));
        const t0 = performance.now();
        const claimed = await store.claim({ owner: 'bench', limit: CLAIM, leaseMs: 30_000, now, names: ['noop'] });
        await store.settle(claimed.map((t) => ({ type: 'succeeded', id: t.id, owner: 'bench', attempt: t.attempts, at: now, result: null })));
        timed[i]! += performance.now() - t0;
        if (claimed.length !== CLAIM) throw new Error(`claimed ${claimed.length} of ${CLAIM}`);
      }
    }
  } finally {
    for (const store of stores) await store.close();
  }
  return timed.map((ms) => (CLAIM_ROUNDS * CLAIM) / (ms / 1000));
}

async function measure(spec: ChildSpec): Promise<ScaleResult> {
  const startRssMb = rssMb();
  // One counter per runtime: a run of the paused one that was already started when it paused must not count for
  // the other.
  const counters: RunCounter[] = [{ ran: 0, target: Number.POSITIVE_INFINITY }, { ran: 0, target: Number.POSITIVE_INFINITY }];
  const onRunOf = (counter: RunCounter) => () => {
    if (++counter.ran === counter.target) counter.done?.();
  };
  const deepFile = path.join(spec.dir, 'deep.db');
  const rt = await openRuntime(deepFile, onRunOf(counters[0]!));
  rt.pause('noop');
  const baseRssMb = await settleRss();
  const enqueueSeconds = await fill(rt, spec.tasks);
  const enqueuePeakRssMb = peakRssMb();
  const heldRssMb = await settleRss();
  const chunk = DRAIN / DRAIN_CHUNKS;
  await drainChunk(rt, counters[0]!, chunk);
  const deepPeakRssMb = peakRssMb();
  const { statSync } = await import('node:fs');
  const dbSizeMb = (statSync(deepFile).size + (statSync(`${deepFile}-wal`, { throwIfNoEntry: false })?.size ?? 0)) / 2 ** 20;

  const emptyFile = path.join(spec.dir, 'empty.db');
  const rt2 = await openRuntime(emptyFile, onRunOf(counters[1]!));
  rt2.pause('noop');
  await fill(rt2, EMPTY_FILL);
  const drainMs = [0, 0];
  const runtimes = [rt, rt2];
  for (let round = 0; round < DRAIN_CHUNKS; round++) {
    for (let k = 0; k < 2; k++) {
      const i = round % 2 === 0 ? k : 1 - k;
      drainMs[i]! += await drainChunk(runtimes[i]!, counters[i]!, chunk);
    }
  }
  await rt.close();
  await rt2.close();
  const [deepDrainPerSec, emptyDrainPerSec] = drainMs.map((ms) => DRAIN / (ms / 1000)) as [number, number];
  const [deepClaimPerSec, emptyClaimPerSec] = (await claimRates([deepFile, path.join(spec.dir, 'claim-empty.db')])) as [number, number];
  return { tasks: spec.tasks, startRssMb, enqueueSeconds, enqueuePeakRssMb, baseRssMb, heldRssMb, dbSizeMb, deepDrainPerSec, deepPeakRssMb, deepClaimPerSec, emptyDrainPerSec, emptyClaimPerSec };
}

const child = childSpec<ChildSpec>();
if (child) {
  let result: ScaleResult;
  try {
    result = await measure(child);
  } catch (error) {
    result = { error: (error as Error).stack ?? String(error) } as ScaleResult;
  }
  await reportToParent(result);
}
