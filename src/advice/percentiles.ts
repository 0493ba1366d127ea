/**
 * Percentiles of a bounded sample, computed when read (never per observation): the finite values are copied,
 * sorted, and read by nearest rank (the smallest value with at least p % of the sample at or below it), so a
 * reported p99 is always a duration that was actually measured.
 */

/** The spread of one measured quantity over the samples that carried it. */
export interface Percentiles {
  /** How many samples had a value. */
  samples: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array (p in 0–100). */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summarises the finite values among the first `count` of `values`; undefined when there are none. */
export function summarizeValues(values: ArrayLike<number>, count: number = values.length): Percentiles | undefined {
  const finite = new Float64Array(count);
  let n = 0;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) {
      finite[n++] = v;
      sum += v;
    }
  }
  if (n === 0) return undefined;
  const sorted = finite.subarray(0, n).sort();
  return {
    samples: n,
    mean: sum / n,
    p50: nearestRank(sorted, 50),
    p95: nearestRank(sorted, 95),
    p99: nearestRank(sorted, 99),
    max: sorted[n - 1]!,
  };
}
