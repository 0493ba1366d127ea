/**
 * Workload 4, durable end to end: 10,000 no-op tasks enqueued → run → completed and stored, at concurrency 1, 8
 * and 32, on troupe-SQLite (WAL, synchronous NORMAL and FULL), troupe-PostgreSQL, BullMQ on Redis, pg-boss and
 * graphile-worker (local batching on). Settings of each system: bench/lib/queue-systems.ts.
 *
 * One measurement: a fresh child process opens the system (its own SQLite file, PostgreSQL schema or Redis key
 * prefix) with a running worker, runs a warm-up of 500 tasks through it untimed, then times from the first
 * enqueue until the last of the 10,000 is stored as completed. The PostgreSQL schemas are fresh, as in the peers'
 * own benchmarks: autovacuum has not analysed them yet. Planner statistics change some systems a lot (measured
 * here: graphile-worker ≈29k/s fresh, ≈1.7k/s once its drained table was analysed as empty; troupe-PostgreSQL
 * about twice as fast analysed), so troupe-PostgreSQL and graphile-worker also get an `…-analyzed` row: the same
 * run with ANALYZE of the schema after the warm-up. The targets read the fresh rows.
 *
 * Tasks are enqueued with each system's bulk API in batches of 500 while the worker already runs. The child
 * reports tasks/s, the enqueue time and its peak RSS; the parent drops the namespace. Runs are interleaved (for
 * each pass, for each concurrency, every system in turn) so the ratios of one concurrency come from neighbouring
 * minutes of this shared machine. Three passes by default, and each row is the median of its passes: one pass of
 * each system read a ratio anywhere in 1.7–2.8× on the same code a few minutes apart.
 *
 * Run: `npm run bench -- --scope durable [--tasks 10000] [--concurrency 1,8,32] [--passes 3] [--filter regex]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childSpec, peakRssMb, reportToParent, runInChild, within } from '../lib/child.ts';
import { PG_URL, REDIS_URL, type Peers } from '../lib/peers.ts';
import { createNamespace, dropNamespace, LABELS, NEEDS, openSystem, type QueueSystem, type SystemSpec } from '../lib/queue-systems.ts';
import { createRow, type Row } from '../lib/results.ts';
import { median, round } from '../lib/stats.ts';

export const DURABLE_SYSTEMS = ['troupe-sqlite-normal', 'troupe-sqlite-full', 'troupe-postgres', 'bullmq', 'pg-boss', 'graphile-worker'] as const satisfies readonly QueueSystem[];

/** Systems also measured with planner statistics taken after the warm-up (the ones whose speed depends on them). */
const ANALYZED_TOO: ReadonlySet<QueueSystem> = new Set(['troupe-postgres', 'graphile-worker']);

export interface DurableOptions {
  /** @default 10000 */
  tasks?: number;
  /** @default [1, 8, 32] */
  concurrency?: readonly number[];
  /** Interleaved passes; each row is the median of its passes. @default 3 */
  passes?: number;
  /** Keeps a system when its key or label matches. @default every system */
  match?: (text: string) => boolean;
  /** Server availability (systems whose server is unreachable are skipped, with the reason). */
  peers: Peers;
}

interface ChildSpec extends SystemSpec {
  tasks: number;
  warmup: number;
  batch: number;
  /** ANALYZE the schema's tables after the warm-up. */
  analyze: boolean;
}

interface RunResult {
  system: QueueSystem;
  concurrency: number;
  tasks: number;
  seconds: number;
  enqueueSeconds: number;
  tasksPerSec: number;
  peakRssMb: number;
  error?: string;
}

/** One system in one database condition. */
interface Variant {
  system: QueueSystem;
  analyze: boolean;
  key: string;
  label: string;
}

/**
 * Why: workload 4 over every available system; rows keyed `durable/c<n>/<system>` (fresh schema) and
 * `durable/c<n>/<system>-analyzed`, plus what was skipped.
 */
export async function runDurable(options: DurableOptions): Promise<{ rows: Row[]; skipped: string[]; info: Record<string, unknown> }> {
  const { tasks = 10_000, concurrency = [1, 8, 32], passes = 3, match = () => true, peers } = options;
  const skipped: string[] = [];
  const systems = DURABLE_SYSTEMS.filter((s) => match(s) || match(LABELS[s])).filter((s) => {
    const need = NEEDS[s];
    const avail = need ? peers[need] : undefined;
    if (avail && !avail.ok) {
      skipped.push(`${LABELS[s]}: ${avail.reason}`);
      console.log(`  skipped ${LABELS[s]}: ${avail.reason}`);
      return false;
    }
    return true;
  });
  const variants: Variant[] = systems.flatMap((system) => [
    { system, analyze: false, key: system, label: LABELS[system] },
    ...(ANALYZED_TOO.has(system) ? [{ system, analyze: true, key: `${system}-analyzed`, label: `${LABELS[system]}, ANALYZEd` }] : []),
  ]);
  const warmup = Math.min(500, Math.ceil(tasks / 10));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-durable-'));
  const results = new Map<string, RunResult[]>();
  try {
    for (let pass = 0; pass < passes; pass++) {
      for (const c of concurrency) {
        for (const v of variants) {
          const spec: ChildSpec = { system: v.system, concurrency: c, namespace: createNamespace(dir), pgUrl: PG_URL, redisUrl: REDIS_URL, tasks, warmup, batch: 500, analyze: v.analyze };
          let r: RunResult;
          try {
            r = await runInChild<RunResult>(import.meta.url, spec, { timeoutMs: 900_000 });
          } catch (error) {
            r = { system: v.system, concurrency: c, tasks, seconds: Number.NaN, enqueueSeconds: Number.NaN, tasksPerSec: Number.NaN, peakRssMb: Number.NaN, error: (error as Error).message };
          } finally {
            await dropNamespace(spec).catch(() => {});
            for (const suffix of ['', '-wal', '-shm']) rmSync(`${spec.namespace.sqliteFile}${suffix}`, { force: true });
          }
          const line = r.error ? `error: ${r.error}` : `${Math.round(r.tasksPerSec).toLocaleString('en-US')} tasks/s (${r.seconds.toFixed(2)} s, enqueue ${r.enqueueSeconds.toFixed(2)} s, peak RSS ${r.peakRssMb} MB)`;
          console.log(`  durable pass ${pass + 1} c=${c} ${v.label}: ${line}`);
          const key = `c${c}/${v.key}`;
          results.set(key, [...(results.get(key) ?? []), r]);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: Row[] = [];
  for (const c of concurrency) {
    for (const v of variants) {
      const runs = results.get(`c${c}/${v.key}`) ?? [];
      const ok = runs.filter((r) => !r.error);
      const errors = runs.filter((r) => r.error).map((r) => r.error!);
      if (ok.length === 0) {
        skipped.push(`${v.label} c=${c}: ${errors[0] ?? 'no run'}`);
        continue;
      }
      const rate = median(ok.map((r) => r.tasksPerSec));
      rows.push(createRow('durable', `c${c}/${v.key}`, {
        workload: `${tasks.toLocaleString('en-US')} no-ops enqueue → stored`,
        system: v.label,
        concurrency: c,
        opsPerSec: Math.round(rate),
        meanMs: round((tasks / rate) * 1000, 4),
        samples: ok.length,
        peakRssMb: Math.max(...ok.map((r) => r.peakRssMb)),
        note: `enqueue ${round(median(ok.map((r) => r.enqueueSeconds)), 3)} s${errors.length ? `; ${errors.length} failed run(s)` : ''}`,
      }));
    }
  }
  return {
    rows,
    skipped,
    info: { tasks, concurrency, passes, enqueueBatch: 500, warmup, meanMsIs: 'the whole run (all tasks)', analyzedRows: 'ANALYZE of the schema after the warm-up (queue drained): statistics of an empty queue table' },
  };
}

/** The child's side: one system, one concurrency, one timed run. */
async function measure(spec: ChildSpec): Promise<RunResult> {
  let ran = 0;
  const sys = await openSystem(spec, () => {
    ran++;
  });
  try {
    const enqueueAll = async (from: number, count: number) => {
      for (let at = 0; at < count; at += spec.batch) {
        const n = Math.min(spec.batch, count - at);
        await sys.addMany(Array.from({ length: n }, (_, k) => from + at + k));
      }
    };
    await enqueueAll(-spec.warmup, spec.warmup);
    await sys.waitCompleted(spec.warmup);
    if (spec.analyze) await sys.analyze();
    const started = performance.now();
    await enqueueAll(0, spec.tasks);
    const enqueued = performance.now();
    await sys.waitCompleted(spec.warmup + spec.tasks);
    const seconds = (performance.now() - started) / 1000;
    if (ran < spec.warmup + spec.tasks) throw new Error(`${spec.system}: ${ran} handler runs for ${spec.warmup + spec.tasks} tasks`);
    return {
      system: spec.system,
      concurrency: spec.concurrency,
      tasks: spec.tasks,
      seconds: round(seconds, 4),
      enqueueSeconds: round((enqueued - started) / 1000, 4),
      tasksPerSec: spec.tasks / seconds,
      peakRssMb: peakRssMb(),
    };
  } finally {
    await within(sys.close(), 15_000, `${spec.system}: close`).catch(() => {});
  }
}

const child = childSpec<ChildSpec>();
if (child) {
  let result: RunResult;
  try {
    result = await measure(child);
  } catch (error) {
    result = { system: child.system, concurrency: child.concurrency, tasks: child.tasks, seconds: Number.NaN, enqueueSeconds: Number.NaN, tasksPerSec: Number.NaN, peakRssMb: peakRssMb(), error: (error as Error).message };
  }
  await reportToParent(result);
}
