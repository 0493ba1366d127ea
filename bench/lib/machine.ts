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
  node: string;
  v8: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Packages whose versions every result file records (troupe's own layers and every peer). */
export const MEASURED_PACKAGES = [
  'piscina', 'p-queue', 'execa', 'better-sqlite3', 'pg', 'xstate', 'nanoevents', 'bullmq', 'ioredis', 'pg-boss',
  'graphile-worker', 'tinybench', 'tsx', 'croner', 'fastify',
] as const;

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
