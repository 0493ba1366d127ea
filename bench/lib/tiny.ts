/**
 * tinybench runs turned into rows. Every system of a workload is a task of the same `Bench`; the Bench runs
 * `passes` times (interleaving the systems pass by pass), and a row reports the median of its passes, so one
 * unlucky second on this shared machine does not decide a ratio.
 *
 * A task's iteration handles `tasksPerIteration` tasks (1000 no-ops at once, one command…): ops/s is that count
 * over the mean iteration time; the latency columns are of one iteration.
 */
import { Bench } from 'tinybench';
import { createRow, type Row, type Scope } from './results.ts';
import { median, round } from './stats.ts';

export interface TinyRowSpec {
  /** The Bench task name. */
  name: string;
  /** `<workload>/<system>`, the row key without the scope. */
  id: string;
  workload: string;
  system: string;
  concurrency?: number;
  tasksPerIteration: number;
  note?: string;
}

export interface TinyOptions {
  scope: Scope;
  /** @default 2 */
  passes?: number;
  /** Measured time per task and pass (ms). @default 1000 */
  time?: number;
  /** @default 200 */
  warmupTime?: number;
}

interface PassFigures {
  mean: number;
  p50: number;
  p99: number;
  samples: number;
}

/**
 * Why: runs a Bench built by `build` `passes` times and returns a row per spec (medians), plus failures. `build`
 * returns its closers: they run after each pass whatever happened, since tinybench skips `afterAll` when a task
 * throws, and a pool left open would keep the process alive.
 */
export async function runTinyPasses(specs: readonly TinyRowSpec[], build: (bench: Bench) => Array<() => Promise<void>>, options: TinyOptions): Promise<{ rows: Row[]; skipped: string[] }> {
  const { scope, passes = 2, time = 1000, warmupTime = 200 } = options;
  const figures = new Map<string, PassFigures[]>();
  const errors = new Map<string, string>();
  for (let pass = 0; pass < passes; pass++) {
    const bench = new Bench({ name: `${scope} pass ${pass + 1}`, time, warmupTime });
    const closers = build(bench);
    try {
      await bench.run();
    } finally {
      for (const close of closers) await close().catch(() => {});
    }
    for (const task of bench.tasks) {
      const r = task.result;
      if (r && (r.state === 'completed' || r.state === 'aborted-with-statistics')) {
        const f = { mean: r.latency.mean, p50: r.latency.p50, p99: r.latency.p99, samples: r.latency.samplesCount };
        figures.set(task.name, [...(figures.get(task.name) ?? []), f]);
        const spec = specs.find((s) => s.name === task.name);
        const rate = spec ? Math.round((spec.tasksPerIteration / f.mean) * 1000).toLocaleString('en-US') : '?';
        console.log(`  ${scope} pass ${pass + 1}: ${task.name}: ${rate} ops/s, mean ${f.mean.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms`);
      } else if (r && r.state === 'errored') {
        errors.set(task.name, r.error.message);
        console.log(`  ${scope} pass ${pass + 1}: ${task.name}: error: ${r.error.message}`);
      }
    }
  }
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const spec of specs) {
    const fs = figures.get(spec.name);
    if (!fs?.length) {
      if (errors.has(spec.name)) skipped.push(`${spec.system} (${spec.workload}): ${errors.get(spec.name)}`);
      continue;
    }
    const mean = median(fs.map((f) => f.mean));
    rows.push(createRow(scope, spec.id, {
      workload: spec.workload,
      system: spec.system,
      ...(spec.concurrency === undefined ? {} : { concurrency: spec.concurrency }),
      opsPerSec: Math.round((spec.tasksPerIteration / mean) * 1000),
      meanMs: round(mean, 4),
      p50Ms: round(median(fs.map((f) => f.p50)), 4),
      p99Ms: round(median(fs.map((f) => f.p99)), 4),
      samples: fs.reduce((n, f) => n + f.samples, 0),
      ...(spec.note ? { note: spec.note } : {}),
    }));
  }
  return { rows, skipped };
}
