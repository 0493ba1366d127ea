/**
 * The targets of issue 7, next to the figures, with a plain verdict per row: `met`, `missed by x %`, or
 * `not measured` with the reason (a peer skipped, a row filtered out).
 *
 * A target reads rows by their stable keys (see results.ts). A ratio target divides two rows of the same run,
 * so it holds on a noisy machine; an absolute target (tasks/s, ms, MB) depends on the machine and its load, which
 * the result file records.
 */
import type { Row, Scope } from './results.ts';

export interface Verdict {
  scope: Scope;
  /** What is measured, in words. */
  label: string;
  /** The target, in words (`≥ 3× raw Piscina`). */
  target: string;
  /** The measured figure, in words (`2.41×`, `0.18 ms`), or `—`. */
  figure: string;
  /** `met`, `missed by 12 %`, or `not measured (…)`. */
  verdict: string;
  met: boolean | undefined;
  value?: number;
  threshold?: number;
}

type Field = 'opsPerSec' | 'p50Ms' | 'p99Ms' | 'peakRssMb' | 'meanMs';
type Op = '>=' | '<=' | '<';

interface Target {
  scope: Scope;
  label: string;
  target: string;
  op: Op;
  threshold: number;
  /** The figure from the rows, or why it cannot be computed. */
  measure(rows: ReadonlyMap<string, Row>): { value: number; figure: string } | { missing: string };
}

function field(rows: ReadonlyMap<string, Row>, key: string, f: Field): number | string {
  const row = rows.get(key);
  if (!row) return `no row ${key}: filtered out or not run`;
  const v = row[f];
  return typeof v === 'number' && Number.isFinite(v) ? v : `${key} has no ${f}`;
}

/** `num[f] / den[f]` compared with `threshold`. */
function ratio(scope: Scope, label: string, target: string, num: string, den: string, f: Field, op: Op, threshold: number): Target {
  return {
    scope, label, target, op, threshold,
    measure(rows) {
      const a = field(rows, num, f);
      const b = field(rows, den, f);
      if (typeof a === 'string') return { missing: a };
      if (typeof b === 'string') return { missing: b };
      if (b === 0) return { missing: `${den} is 0` };
      const value = a / b;
      return { value, figure: `${value.toFixed(2)}×` };
    },
  };
}

/** `row[f]` compared with `threshold` (`unit` for the figure). */
function absolute(scope: Scope, label: string, target: string, key: string, f: Field, op: Op, threshold: number, unit: string): Target {
  return {
    scope, label, target, op, threshold,
    measure(rows) {
      const v = field(rows, key, f);
      if (typeof v === 'string') return { missing: v };
      const digits = unit === 'ms' ? (v < 10 ? 3 : 1) : 0;
      return { value: v, figure: `${unit === 'ms' ? v.toFixed(digits) : Math.round(v).toLocaleString('en-US')} ${unit}` };
    },
  };
}

const DURABLE_CONCURRENCY = [1, 8, 32] as const;

/** Why: every target of issue 7 in one list, in the order RESULTS.md shows them. */
export const TARGETS: readonly Target[] = [
  ratio('mem', 'troupe `run` no-op throughput (burst) / raw Piscina', '≥ 3×', 'mem/burst/troupe', 'mem/burst/piscina', 'opsPerSec', '>=', 3),
  ratio('mem', 'troupe `run` idle single-task p50 / raw Piscina', '≤ 1.3×', 'mem/idle/troupe', 'mem/idle/piscina', 'p50Ms', '<=', 1.3),
  ratio('cpu', 'troupe `run` sha256 64 KiB throughput / raw Piscina', '≥ 0.98×', 'cpu/burst/troupe', 'cpu/burst/piscina', 'opsPerSec', '>=', 0.98),
  ratio('process', 'troupe command task / raw execa, one at a time', '≥ 1.0×', 'process/c1/troupe', 'process/c1/execa', 'opsPerSec', '>=', 1),
  ratio('process', 'troupe command task / raw execa, 8 at once', '≥ 1.0×', 'process/c8/troupe', 'process/c8/execa', 'opsPerSec', '>=', 1),
  ...[8, 32].map((c) =>
    ratio('durable', `troupe-SQLite (WAL, synchronous=NORMAL) / BullMQ-on-Redis, concurrency ${c}`, '≥ 2×', `durable/c${c}/troupe-sqlite-normal`, `durable/c${c}/bullmq`, 'opsPerSec', '>=', 2),
  ),
  ...[8, 32].map((c) =>
    absolute('durable', `troupe-SQLite synchronous=FULL, concurrency ${c}`, '≥ 4,000 tasks/s', `durable/c${c}/troupe-sqlite-full`, 'opsPerSec', '>=', 4000, 'tasks/s'),
  ),
  ...DURABLE_CONCURRENCY.map((c) =>
    ratio('durable', `troupe-PostgreSQL / pg-boss, concurrency ${c}`, '≥ 3×', `durable/c${c}/troupe-postgres`, `durable/c${c}/pg-boss`, 'opsPerSec', '>=', 3),
  ),
  ...DURABLE_CONCURRENCY.map((c) =>
    ratio('durable', `troupe-PostgreSQL / graphile-worker (local batching), concurrency ${c}`, '≥ 1.5×', `durable/c${c}/troupe-postgres`, `durable/c${c}/graphile-worker`, 'opsPerSec', '>=', 1.5),
  ),
  absolute('latency', 'add → start p50, memory', '≤ 0.2 ms', 'latency/add-start/troupe-memory', 'p50Ms', '<=', 0.2, 'ms'),
  absolute('latency', 'add → start p50, SQLite', '≤ 1 ms', 'latency/add-start/troupe-sqlite-normal', 'p50Ms', '<=', 1, 'ms'),
  absolute('latency', 'add → start p50, PostgreSQL', '≤ 5 ms', 'latency/add-start/troupe-postgres', 'p50Ms', '<=', 5, 'ms'),
  absolute('periodic', 'periodic firing, slot → start p99, memory store', '< 2 ms late', 'periodic/every/troupe-memory', 'p99Ms', '<', 2, 'ms'),
  absolute('periodic', 'periodic firing, slot → start p99, SQLite store', '< 2 ms late', 'periodic/every/troupe-sqlite', 'p99Ms', '<', 2, 'ms'),
  absolute('streaming', 'output capture to a subscriber, memory store', '≥ 500,000 lines/s', 'streaming/flood/troupe-memory', 'opsPerSec', '>=', 500_000, 'lines/s'),
  absolute('streaming', 'output capture to a subscriber, SQLite store', '≥ 500,000 lines/s', 'streaming/flood/troupe-sqlite', 'opsPerSec', '>=', 500_000, 'lines/s'),
  absolute('streaming', 'line delay to a subscriber p99, memory store', '< 5 ms', 'streaming/paced/troupe-memory', 'p99Ms', '<', 5, 'ms'),
  absolute('streaming', 'line delay to a subscriber p99, SQLite store', '< 5 ms', 'streaming/paced/troupe-sqlite', 'p99Ms', '<', 5, 'ms'),
  absolute('scale', 'RSS with 1,000,000 queued tasks (peak, enqueue and claims)', '< 150 MB', 'scale/held/troupe-sqlite', 'peakRssMb', '<', 150, 'MB'),
  ratio('scale', 'store claim 64 + settle 64 at 1,000,000 deep / near-empty queue', '≥ 0.9× (within 10 %)', 'scale/claim-deep/troupe-sqlite', 'scale/claim-empty/troupe-sqlite', 'opsPerSec', '>=', 0.9),
  ratio('scale', 'runtime drain rate at 1,000,000 deep / near-empty queue', '≥ 0.9× (within 10 %)', 'scale/drain-deep/troupe-sqlite', 'scale/drain-empty/troupe-sqlite', 'opsPerSec', '>=', 0.9),
];

/** Why: the verdict text the issue asks for, from a value and its threshold. */
export function verdictOf(op: Op, value: number, threshold: number): { met: boolean; verdict: string } {
  const met = op === '>=' ? value >= threshold : op === '<=' ? value <= threshold : value < threshold;
  if (met) return { met, verdict: 'met' };
  const miss = op === '>=' ? (threshold - value) / threshold : (value - threshold) / threshold;
  const pct = miss * 100;
  return { met, verdict: `missed by ${pct >= 10 ? Math.round(pct) : pct.toFixed(1)} %` };
}

/** Why: a scope's verdicts from its rows; `skipped` explains rows that a peer's absence left out. */
export function evaluateTargets(scope: Scope, rows: readonly Row[], skipped: readonly string[] = []): Verdict[] {
  const byKey = new Map(rows.map((r) => [r.key, r]));
  return TARGETS.filter((t) => t.scope === scope).map((t) => {
    const m = t.measure(byKey);
    if ('missing' in m) {
      const why = skipped.length ? `${m.missing}; skipped: ${skipped.join('; ')}` : m.missing;
      return { scope, label: t.label, target: t.target, figure: '—', verdict: `not measured (${why})`, met: undefined, threshold: t.threshold };
    }
    return { scope, label: t.label, target: t.target, figure: m.figure, value: m.value, threshold: t.threshold, ...verdictOf(t.op, m.value, t.threshold) };
  });
}
