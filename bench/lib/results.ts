/**
 * One shape for every benchmark figure, whichever suite produced it, so the table, the JSON file and
 * bench/RESULTS.md read the same rows.
 *
 * A row is one system doing one workload. `key` is stable (`<scope>/<workload>/<system>`): the targets
 * find their figures by it, so renaming a label never breaks a verdict. Throughput is `opsPerSec` (tasks, runs
 * or lines per second, as the workload says); the latency columns are of the unit the workload names (one
 * task for latency workloads, one iteration of the named batch for tinybench throughput rows).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MachineInfo } from './machine.ts';
import type { Verdict } from './targets.ts';

export const SCOPES = ['mem', 'cpu', 'process', 'durable', 'latency', 'periodic', 'scale', 'streaming'] as const;
export type Scope = (typeof SCOPES)[number];
/** `all` runs every scope but `scale` (minutes, and a million rows on disk): ask for that one by name. */
export const DEFAULT_SCOPES: readonly Scope[] = SCOPES.filter((s) => s !== 'scale');

export interface Row {
  /** Stable id the targets look rows up by: `<scope>/<workload>/<system>` (`durable/c8/bullmq`, `mem/idle/troupe`). */
  key: string;
  scope: Scope;
  workload: string;
  system: string;
  /** Tasks allowed in flight at once (the same for every system of a workload). */
  concurrency?: number;
  /** Tasks (runs, lines) per second. */
  opsPerSec?: number;
  meanMs?: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  samples?: number;
  /** Peak resident set size of the process that ran the system (MB), where that process was its own. */
  peakRssMb?: number;
  note?: string;
}

export interface ScopeResult {
  scope: Scope;
  /** The command line that produced this file. */
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  /** Versions of every package (and server) measured. */
  versions: Record<string, string>;
  rows: Row[];
  verdicts: Verdict[];
  /** Peers or workloads left out, each with its reason (never silently). */
  skipped: string[];
  /** Extra figures of the scope (passes, settings, counters). */
  info: Record<string, unknown>;
}

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/** Why: every run leaves a file next to the committed ones: bench/results/<date>-<scope>.json. */
export function writeScopeResult(result: ScopeResult, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.finishedAt.slice(0, 10)}-${result.scope}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/** Why: suites build rows with one call and never forget the key (`id` is `<workload>/<system>`). */
export function createRow(scope: Scope, id: string, fields: Omit<Row, 'key' | 'scope'>): Row {
  return { key: `${scope}/${id}`, scope, ...fields };
}
