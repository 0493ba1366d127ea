/**
 * Workload 6, periodic firing accuracy: how late a task starts after its `every` slot, p50 and p99.
 *
 * A runtime (memory, SQLite WAL NORMAL, or PostgreSQL store) in a fresh child process gets one schedule
 * `{ every: '1s' }` (the shortest troupe accepts; `every` slots are multiples of the interval from the epoch) of
 * an inline task that reads the wall clock when it is called. The delay of a run is that time minus its slot.
 * The clock is `performance.timeOrigin + performance.now()`, aligned at start to `Date.now()` (which the
 * scheduler uses; the best of 25 alignments), so delays have µs resolution. The first slot is a warm-up and not counted; each store runs in
 * turn (their slots would coincide), `slots` (25) slots each.
 *
 * The floor, measured in the same child at the same time, half an interval off the runtime's slots (so neither
 * delays the other): how late two bare timers fire for such a slot, with no runtime in the way. troupe's precise
 * timer alone (`setTimeoutAt` on the system clock, which waits on the timer thread), and a plain `setTimeout` for
 * the time left, which is how cron libraries for Node wait. A p99 over 2 ms on the floor rows says the machine,
 * not the runtime, was late in that run.
 *
 * The child also watches its garbage collector (`PerformanceObserver`, entry type `gc`): a slot whose task started
 * late because the main thread was in a collector pause between the slot and the start is named in the row's note,
 * with the p99 of the other slots. The verdict stays on all slots; the note says whether the latest slot waited for
 * the collector (on this machine the first major collection, ≈17 s after start, pauses 5–16 ms). It sees the main
 * thread's collector only: a pause of the timer thread's own (a worker isolate) delays the start unnamed.
 *
 * Run: `npm run bench -- --scope periodic [--filter memory|sqlite|postgres]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { childSpec, reportToParent, runInChild, within } from '../lib/child.ts';
import { PG_URL, type Peers } from '../lib/peers.ts';
import { createNamespace, dropNamespace } from '../lib/queue-systems.ts';
import { createRow, type Row } from '../lib/results.ts';
import { round, summarize } from '../lib/stats.ts';

const STORES = ['memory', 'sqlite', 'postgres'] as const;
type PeriodicStore = (typeof STORES)[number];
const LABELS: Record<PeriodicStore, string> = { memory: 'troupe (memory)', sqlite: 'troupe (SQLite, WAL, NORMAL)', postgres: 'troupe (PostgreSQL)' };
const EVERY_MS = 1000;

export interface PeriodicOptions {
  /** Counted slots per store. @default 25 */
  slots?: number;
  match?: (text: string) => boolean;
  peers: Peers;
}

interface ChildSpec {
  store: PeriodicStore;
  slots: number;
  sqliteFile: string;
  pgUrl: string;
  pgSchema: string;
}

interface PeriodicResult {
  delays: number[];
  /** Per counted slot: ms of collector pauses between the slot and its task's start (0: none). */
  gcMs?: number[];
  /** The floor timers' delays (see the file's note). */
  precise?: number[];
  plain?: number[];
  error?: string;
}

const FLOORS = [
  { key: 'precise', id: 'timer-floor', system: 'floor: troupe precise timer alone' },
  { key: 'plain', id: 'settimeout-floor', system: 'floor: plain setTimeout' },
] as const;

/** Why: workload 6 on each store; rows keyed `periodic/every/troupe-<store>`. */
export async function runPeriodic({ slots = 25, match = () => true, peers }: PeriodicOptions): Promise<{ rows: Row[]; skipped: string[]; info: Record<string, unknown> }> {
  const rows: Row[] = [];
  const skipped: string[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-periodic-'));
  try {
    for (const store of STORES) {
      if (!match(store) && !match(LABELS[store])) continue;
      if (store === 'postgres' && !peers.postgres.ok) {
        skipped.push(`${LABELS[store]}: ${peers.postgres.reason}`);
        console.log(`  skipped ${LABELS[store]}: ${peers.postgres.reason}`);
        continue;
      }
      const ns = createNamespace(dir);
      const spec: ChildSpec = { store, slots, sqliteFile: ns.sqliteFile, pgUrl: PG_URL, pgSchema: ns.pgSchema };
      let result: PeriodicResult;
      try {
        result = await runInChild<PeriodicResult>(import.meta.url, spec, { timeoutMs: (slots + 30) * EVERY_MS });
      } catch (error) {
        result = { delays: [], error: (error as Error).message };
      } finally {
        if (store === 'postgres') await dropNamespace({ system: 'troupe-postgres', concurrency: 1, namespace: ns, pgUrl: PG_URL, redisUrl: '' }).catch(() => {});
      }
      if (result.error || result.delays.length === 0) {
        skipped.push(`${LABELS[store]}: ${result.error ?? 'no slot fired'}`);
        console.log(`  ${LABELS[store]}: error: ${result.error ?? 'no slot fired'}`);
        continue;
      }
      const s = summarize(result.delays);
      const gc = gcNote(result.delays, result.gcMs);
      console.log(`  periodic ${LABELS[store]}: p50 ${s.p50Ms.toFixed(3)} ms, p99 ${s.p99Ms.toFixed(3)} ms late (${s.samples} slots)${gc ? `; ${gc}` : ''}`);
      rows.push(createRow('periodic', `every/troupe-${store}`, {
        workload: `every 1 s: slot → task start (${s.samples} slots)`,
        system: LABELS[store],
        meanMs: round(s.meanMs, 4),
        p50Ms: round(s.p50Ms, 4),
        p99Ms: round(s.p99Ms, 4),
        maxMs: round(s.maxMs, 4),
        samples: s.samples,
        note: gc ? `latency = how late after the slot; ${gc}` : 'latency = how late after the slot',
      }));
      for (const floor of FLOORS) {
        const delays = result[floor.key];
        if (delays === undefined || delays.length === 0) continue;
        const f = summarize(delays);
        console.log(`  periodic ${floor.system} (beside ${LABELS[store]}): p50 ${f.p50Ms.toFixed(3)} ms, p99 ${f.p99Ms.toFixed(3)} ms late`);
        rows.push(createRow('periodic', `every/${floor.id}-${store}`, {
          workload: `every 1 s: slot → timer callback (${f.samples} slots, beside ${LABELS[store]})`,
          system: floor.system,
          meanMs: round(f.meanMs, 4),
          p50Ms: round(f.p50Ms, 4),
          p99Ms: round(f.p99Ms, 4),
          maxMs: round(f.maxMs, 4),
          samples: f.samples,
          note: 'the machine’s floor in the same minutes, half a slot apart',
        }));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, skipped, info: { everyMs: EVERY_MS, slots, task: 'inline no-op reading the clock' } };
}

/** Names the slots that waited for the collector, and the p99 of the others; empty when none did. */
function gcNote(delays: readonly number[], gcMs: readonly number[] | undefined): string {
  if (gcMs === undefined) return '';
  const hit = delays.flatMap((d, i) => ((gcMs[i] ?? 0) > 0 ? [{ d, gc: gcMs[i]! }] : []));
  if (hit.length === 0) return 'no start waited for the garbage collector';
  const rest = delays.filter((_, i) => (gcMs[i] ?? 0) === 0);
  const slots = hit.map((h) => `${h.d.toFixed(2)} ms late, ${h.gc.toFixed(2)} ms of it in a pause`).join('; ');
  const others = rest.length > 0 ? `; the other ${rest.length}: p99 ${summarize(rest).p99Ms.toFixed(3)} ms` : '';
  return `${hit.length === 1 ? '1 start' : `${hit.length} starts`} waited for the garbage collector (${slots})${others}`;
}

/** Alignments taken; the best one is kept (see preciseWallClock). */
const ALIGNMENTS = 25;

/**
 * A wall clock with µs resolution, aligned to `Date.now()` at a millisecond edge. Each alignment reads
 * `performance.now()` just after seeing `Date.now()` tick, so it can only be late by the time between the two
 * reads (the first call pays lazy initialisation, measured here at 0.1–3.5 ms; a preemption costs more): of
 * several alignments the largest offset is the one closest to the truth. A single alignment made the clock read
 * early by that much, and every delay look that much smaller.
 */
function preciseWallClock(): () => number {
  let offset = -Infinity;
  for (let i = 0; i < ALIGNMENTS; i++) {
    const start = Date.now();
    let edge = Date.now();
    while (edge === start) edge = Date.now();
    offset = Math.max(offset, edge - (performance.timeOrigin + performance.now()));
  }
  return () => performance.timeOrigin + performance.now() + offset;
}

/** The child's side: one store, one schedule, `slots` + 1 firings. */
async function measure(spec: ChildSpec): Promise<PeriodicResult> {
  const { createRuntime } = await import('../../src/runtime.ts');
  const { setTimeoutAt, systemClock } = await import('../../src/clock.ts');
  const store =
    spec.store === 'memory'
      ? 'memory'
      : spec.store === 'sqlite'
        ? `sqlite:${spec.sqliteFile}`
        : (await import('../../src/store/postgres/postgres-store.ts')).createPostgresStore(spec.pgUrl, { schema: spec.pgSchema });
  const wall = preciseWallClock();
  // Collector pauses, in performance.now() time: [start, duration].
  const pauses: Array<[number, number]> = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push([e.startTime, e.duration]);
  });
  observer.observe({ entryTypes: ['gc'] });
  const starts: number[] = [];
  let enough: (() => void) | undefined;
  const rt = await createRuntime({
    store,
    maintenance: false,
    tasks: {
      tick: {
        run: () => {
          starts.push(wall());
          if (starts.length > spec.slots) enough?.();
          return null;
        },
      },
    },
  });
  // The floor timers, each armed for its next mark when the previous one fired; the first of each is a warm-up, as
  // for the runtime. The precise one fires half an interval after the runtime's slots, the plain one three
  // quarters after them, so that none of the three delays another.
  const precise: number[] = [];
  const plain: number[] = [];
  const nextAt = (phase: number): number => {
    const now = Date.now();
    const at = Math.floor(now / EVERY_MS) * EVERY_MS + phase;
    return at > now ? at : at + EVERY_MS;
  };
  let preciseTimer: ReturnType<typeof setTimeoutAt> | undefined;
  let plainTimer: ReturnType<typeof setTimeout> | undefined;
  const armPrecise = (): void => {
    const at = nextAt(EVERY_MS / 2);
    preciseTimer = setTimeoutAt(systemClock, () => {
      precise.push(wall() - at);
      armPrecise();
    }, at);
  };
  const armPlain = (): void => {
    const at = nextAt((EVERY_MS * 3) / 4);
    plainTimer = setTimeout(() => {
      plain.push(wall() - at);
      armPlain();
    }, at - Date.now());
  };
  try {
    const finished = new Promise<void>((resolve) => (enough = resolve));
    await rt.schedule('tick', { every: EVERY_MS, id: 'bench-tick' });
    armPrecise();
    armPlain();
    await within(finished, (spec.slots + 5) * EVERY_MS, `${spec.store}: ${spec.slots + 1} slots`);
  } finally {
    systemClock.clearTimeout(preciseTimer);
    clearTimeout(plainTimer);
    await rt.close();
    if (spec.store === 'sqlite') for (const suffix of ['', '-wal', '-shm']) rmSync(`${spec.sqliteFile}${suffix}`, { force: true });
  }
  observer.disconnect();
  // Each run belongs to the nearest slot (runs are far less than half a second off it). A run that started before
  // its slot shows as a negative delay instead of a delay of almost a whole interval.
  const counted = starts.slice(1);
  const delays = counted.map((at) => at - Math.round(at / EVERY_MS) * EVERY_MS);
  const toPerf = wall() - performance.now();
  const gcMs = counted.map((at, i) => {
    const from = at - delays[i]! - toPerf;
    const to = at - toPerf;
    return pauses.reduce((sum, [t, d]) => sum + Math.max(0, Math.min(t + d, to) - Math.max(t, from)), 0);
  });
  return { delays, gcMs, precise: precise.slice(1), plain: plain.slice(1) };
}

const child = childSpec<ChildSpec>();
if (child) {
  let result: PeriodicResult;
  try {
    result = await measure(child);
  } catch (error) {
    result = { delays: [], error: (error as Error).message };
  }
  await reportToParent(result);
}
