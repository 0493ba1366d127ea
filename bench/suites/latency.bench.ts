/**
 * Workload 5, add → start latency: one task added to an idle runtime (worker running, queue empty), timed from
 * the add call until the handler is called, p50 and p99 over many samples, on every durable system and troupe's
 * memory store. Settings of each system: bench/lib/queue-systems.ts (concurrency 8 here; idle, it does not matter).
 *
 * Each system runs in a fresh child process (its own namespace, dropped after). A sample: add one job with the
 * system's single-add API, wait for the handler to be called (the latency) and for the job to be stored as
 * completed, then stay idle for a random 0–10 ms so no sample rides on the previous one's wake-up. pg-boss has no
 * wake-up on insert (it polls, at least every 0.5 s): its idle gap is random over its whole polling interval, as a
 * job arriving at a random moment would see it, and it takes fewer samples.
 *
 * Run: `npm run bench -- --scope latency [--filter regex]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childSpec, reportToParent, runInChild, within } from '../lib/child.ts';
import { PG_URL, REDIS_URL, type Peers } from '../lib/peers.ts';
import { createNamespace, dropNamespace, LABELS, NEEDS, openSystem, type QueueSystem, type SystemSpec } from '../lib/queue-systems.ts';
import { createRow, type Row } from '../lib/results.ts';
import { round, summarize } from '../lib/stats.ts';

export const LATENCY_SYSTEMS = ['troupe-memory', 'troupe-sqlite-normal', 'troupe-sqlite-full', 'troupe-postgres', 'bullmq', 'pg-boss', 'graphile-worker'] as const satisfies readonly QueueSystem[];

const CONCURRENCY = 8;
const POLLING_MS = 500;

export interface LatencyOptions {
  /** Samples per system (pg-boss: a tenth, at least 20). @default 300 */
  samples?: number;
  match?: (text: string) => boolean;
  peers: Peers;
}

interface ChildSpec extends SystemSpec {
  samples: number;
  warmup: number;
  /** Upper bound of the random idle gap between samples (ms). */
  gapMs: number;
}

interface LatencyResult {
  samples: number[];
  error?: string;
}

/** Why: workload 5 over every available system; rows keyed `latency/add-start/<system>`. */
export async function runLatency(options: LatencyOptions): Promise<{ rows: Row[]; skipped: string[]; info: Record<string, unknown> }> {
  const { samples = 300, match = () => true, peers } = options;
  const skipped: string[] = [];
  const rows: Row[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-latency-'));
  try {
    for (const system of LATENCY_SYSTEMS) {
      if (!match(system) && !match(LABELS[system])) continue;
      const need = NEEDS[system];
      const avail = need ? peers[need] : undefined;
      if (avail && !avail.ok) {
        skipped.push(`${LABELS[system]}: ${avail.reason}`);
        console.log(`  skipped ${LABELS[system]}: ${avail.reason}`);
        continue;
      }
      const polling = system === 'pg-boss';
      const spec: ChildSpec = {
        system,
        concurrency: CONCURRENCY,
        namespace: createNamespace(dir),
        pgUrl: PG_URL,
        redisUrl: REDIS_URL,
        samples: polling ? Math.max(20, Math.round(samples / 10)) : samples,
        warmup: polling ? 2 : 20,
        gapMs: polling ? POLLING_MS : 10,
      };
      let result: LatencyResult;
      try {
        result = await runInChild<LatencyResult>(import.meta.url, spec, { timeoutMs: 300_000 });
      } catch (error) {
        result = { samples: [], error: (error as Error).message };
      } finally {
        await dropNamespace(spec).catch(() => {});
        for (const suffix of ['', '-wal', '-shm']) rmSync(`${spec.namespace.sqliteFile}${suffix}`, { force: true });
      }
      if (result.error || result.samples.length === 0) {
        skipped.push(`${LABELS[system]}: ${result.error ?? 'no samples'}`);
        console.log(`  ${LABELS[system]}: error: ${result.error ?? 'no samples'}`);
        continue;
      }
      const s = summarize(result.samples);
      console.log(`  latency ${LABELS[system]}: p50 ${s.p50Ms.toFixed(3)} ms, p99 ${s.p99Ms.toFixed(3)} ms (${s.samples} samples)`);
      rows.push(createRow('latency', `add-start/${system}`, {
        workload: 'add → start, one task, idle',
        system: LABELS[system],
        meanMs: round(s.meanMs, 4),
        p50Ms: round(s.p50Ms, 4),
        p99Ms: round(s.p99Ms, 4),
        maxMs: round(s.maxMs, 4),
        samples: s.samples,
        ...(polling ? { note: `polls every ${POLLING_MS / 1000} s; idle gap random over it` } : {}),
      }));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, skipped, info: { concurrency: CONCURRENCY, samples, idleGapMs: '0–10 (pg-boss 0–500)' } };
}

/** The child's side: warm up, then `samples` add → start measurements on an idle system. */
async function measure(spec: ChildSpec): Promise<LatencyResult> {
  let started: ((at: number) => void) | undefined;
  const sys = await openSystem(spec, () => {
    const at = performance.now();
    started?.(at);
    started = undefined;
  });
  const out: number[] = [];
  try {
    let done = 0;
    for (let k = 0; k < spec.warmup + spec.samples; k++) {
      const ran = new Promise<number>((resolve) => (started = resolve));
      const t0 = performance.now();
      await sys.addOne(k);
      const t1 = await within(ran, 60_000, `${spec.system}: sample ${k} never started`);
      await sys.waitCompleted(++done, 60_000);
      if (k >= spec.warmup) out.push(t1 - t0);
      await new Promise((r) => setTimeout(r, Math.random() * spec.gapMs));
    }
  } finally {
    await within(sys.close(), 15_000, `${spec.system}: close`).catch(() => {});
  }
  return { samples: out };
}

const child = childSpec<ChildSpec>();
if (child) {
  let result: LatencyResult;
  try {
    result = await measure(child);
  } catch (error) {
    result = { samples: [], error: (error as Error).message };
  }
  await reportToParent(result);
}
