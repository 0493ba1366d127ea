/**
 * What a result was measured on: the machine (CPUs, memory, load average), Node, and the versions of every package
 * and server measured. A figure without these cannot be compared with another.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export interface MachineInfo {
  platform: string;
  arch: string;
  kernel: string;
  cpus: { count: number; model: string };
  memoryMb: { total: number; free: number };
  /** 1, 5 and 15 minute load averages when the scope started and when it ended. */
  loadavgStart: number[];
  loadavgEnd: number[];
  /** How long the scope waited for the machine to quiet down before it started, and how busy it was then (see `waitForQuiet`). */
  quiet?: QuietWait;
  node: string;
  v8: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Packages whose versions every result file records (troupe's own layers and every peer). */
export const MEASURED_PACKAGES = [
  'piscina', 'p-queue', 'execa', 'better-sqlite3', 'pg', 'xstate', 'nanoevents', 'bullmq', 'ioredis', 'pg-boss',
  'graphile-worker', 'tinybench', 'tsx', 'croner', 'fastify',
] as const;

/** What `waitForQuiet` saw: the wait, and the share of all CPUs busy in the last window it measured. */
export interface QuietWait {
  waitedMs: number;
  /** Busy share of all CPUs (0–1) in the last window, or undefined where /proc/stat cannot be read. */
  busy: number | undefined;
  quiet: boolean;
}

/** CPU time counters from /proc/stat (all CPUs): busy and total jiffies; undefined off Linux. */
export function cpuTimes(): { busy: number; total: number } | undefined {
  let line: string | undefined;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  } catch {
    return undefined;
  }
  if (!line?.startsWith('cpu ')) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are the machine waiting.
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Why: a scope measured right after a heavy one (PostgreSQL still writing, another program's burst) reads that
 * load, whatever the systems compared. Before each scope the runner waits until the machine's CPUs are at most
 * `maxBusy` busy over a `windowMs` window (or `maxWaitMs` passed) and records what it saw. Every system of the
 * scope then starts from the same quiet machine; nothing inside a measurement changes.
 */
export async function waitForQuiet({ maxBusy = 0.15, windowMs = 500, maxWaitMs = 60_000 } = {}): Promise<QuietWait> {
  const started = Date.now();
  let busy: number | undefined;
  for (;;) {
    const a = cpuTimes();
    await new Promise((r) => setTimeout(r, windowMs));
    const b = cpuTimes();
    if (a === undefined || b === undefined || b.total === a.total) return { waitedMs: Date.now() - started, busy: undefined, quiet: false };
    busy = (b.busy - a.busy) / (b.total - a.total);
    if (busy <= maxBusy) return { waitedMs: Date.now() - started, busy: Math.round(busy * 1000) / 1000, quiet: true };
    if (Date.now() - started >= maxWaitMs) return { waitedMs: Date.now() - started, busy: Math.round(busy * 1000) / 1000, quiet: false };
  }
}

/** Why: the load average at the start, read before the scope runs and completed after it with `finishMachineInfo`. */
export function readMachineInfo(): MachineInfo {
  const cpus = os.cpus();
  const load = loadavg();
  return {
    platform: os.platform(),
    arch: os.arch(),
    kernel: os.release(),
    cpus: { count: cpus.length, model: cpus[0]?.model.trim() ?? 'unknown' },
    memoryMb: { total: Math.round(os.totalmem() / 2 ** 20), free: Math.round(os.freemem() / 2 ** 20) },
    loadavgStart: load,
    loadavgEnd: load,
    node: process.version,
    v8: process.versions.v8,
  };
}

/** Why: a scope's load average is only meaningful with its value at the end as well. */
export function finishMachineInfo(info: MachineInfo): MachineInfo {
  return { ...info, loadavgEnd: loadavg() };
}

/** Why: the load average, rounded, is printed with every run so a noisy figure explains itself. */
export function loadavg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** Why: the versions actually installed, read from node_modules (not from the ranges in package.json). */
export function packageVersions(names: readonly string[] = MEASURED_PACKAGES): Record<string, string> {
  const out: Record<string, string> = {};
  const own = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { name: string; version: string };
  out[own.name] = own.version;
  for (const name of names) {
    try {
      out[name] = (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
    } catch {
      out[name] = 'not installed';
    }
  }
  return out;
}
