/**
 * Health sampling that never blocks the event loop: one pidusage call for every pid (it reads /proc
 * asynchronously), `os` for load and memory, `fs.statfs` for disk, and a `monitorEventLoopDelay` histogram
 * that runs between samples.
 *
 * CPU is computed here from pidusage's cumulative `ctime` rather than taken from its `cpu` field: pidusage's own
 * history gives 0 on the first call for a pid, which is every call of an on-demand check. So the first reading of
 * a pid is its average since it started, and later ones the average since the previous sample. Every `cpu` value
 * is a percentage of the whole host (0–100), i.e. divided by the core count.
 */
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type pidusageModule from 'pidusage';
import type { Clock } from '../../src/clock.ts';

/** The pids the runtime owns, as listed just before sampling. */
export interface SamplePids {
  /** The runtime process (usually `process.pid`). */
  runtime: number;
  /** Worker `threadId`s: reported as they are, sampled as part of the runtime process. */
  threads: readonly number[];
  /** Subprocesses started for command tasks. */
  subprocesses: readonly number[];
}

export interface ProcessReading {
  pid: number;
  /** % of the whole host. Undefined when the process could not be read. */
  cpu: number | undefined;
  /** Resident set size, bytes. */
  memoryRss: number;
  heapUsed: number;
  uptimeSec: number;
  threads: number[];
}

export interface SubprocessReading {
  pid: number;
  /** % of the whole host. */
  cpu: number;
  /** Resident set size, bytes. */
  memory: number;
}

export interface HostReading {
  loadavg: [number, number, number];
  totalMemMb: number;
  freeMemMb: number;
  /** % of host memory in use. */
  memoryPercentUsed: number;
  cores: number;
}

export interface DiskReading {
  path: string;
  totalGb: number;
  freeGb: number;
  percentUsed: number;
}

export interface EventLoopReading {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A reading that could not be taken, with the error's code (`ENOENT`, `EACCES`…). */
export interface HealthReadingError {
  reading: 'pidusage' | 'disk' | 'store';
  code: string;
}

/** One sample. A reading that failed is undefined (and named in `errors`), never a thrown error. */
export interface HealthSample {
  at: number;
  process: ProcessReading;
  subprocesses: SubprocessReading[];
  /** Listed pids that were gone when sampled (a finished command): not an error. */
  vanished: number[];
  host: HostReading;
  disk: DiskReading | undefined;
  /** Undefined until the histogram has recorded a delay (about 10 ms after the sampler is created). */
  eventLoop: EventLoopReading | undefined;
  errors: HealthReadingError[];
}

type PidUsage = typeof pidusageModule;

export interface HealthSamplerOptions {
  clock: Clock;
  /** Injected for tests. @default the pidusage package */
  pidusage?: PidUsage;
  /** Where disk usage is read: the store's folder. @default process.cwd() */
  diskPath?: string;
  /** Cores used to normalise CPU. @default os.availableParallelism() */
  cores?: number;
}

export interface HealthSampler {
  sample(pids: SamplePids): Promise<HealthSample>;
  /** Stops the event-loop histogram. Idempotent. */
  close(): void;
}

interface CpuMark {
  ctime: number;
  timestamp: number;
}

const MB = 1024 * 1024;
const GB = 1e9;
/** Below this gap between two samples of a pid, the previous CPU figure is kept (too little time to measure). */
const MIN_CPU_WINDOW_MS = 50;

let pidusageLoaded: Promise<PidUsage> | undefined;

/** pidusage is loaded by the first sample: a runtime that never samples its health never loads it. */
function loadPidusage(): Promise<PidUsage> {
  return (pidusageLoaded ??= import('pidusage').then((m) => m.default));
}

/** Creates a sampler that keeps its event-loop histogram and per-pid CPU marks between samples. */
export function createHealthSampler(options: HealthSamplerOptions): HealthSampler {
  const { clock } = options;
  const diskPath = options.diskPath ?? process.cwd();
  const cores = Math.max(1, options.cores ?? os.availableParallelism());
  const marks = new Map<number, CpuMark & { cpu: number }>();
  let histogram: IntervalHistogram | undefined = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();

  function cpuOf(pid: number, stat: pidusageModule.Status): number {
    const previous = marks.get(pid);
    let percentOfCore: number;
    if (previous === undefined || stat.ctime < previous.ctime) {
      percentOfCore = stat.elapsed > 0 ? (stat.ctime / stat.elapsed) * 100 : 0;
    } else if (stat.timestamp - previous.timestamp < MIN_CPU_WINDOW_MS) {
      return previous.cpu;
    } else {
      percentOfCore = ((stat.ctime - previous.ctime) / (stat.timestamp - previous.timestamp)) * 100;
    }
    const cpu = round1(Math.min(100, Math.max(0, percentOfCore / cores)));
    marks.set(pid, { ctime: stat.ctime, timestamp: stat.timestamp, cpu });
    return cpu;
  }

  async function readPids(pids: number[], errors: HealthSample['errors']): Promise<Map<number, pidusageModule.Status>> {
    const found = new Map<number, pidusageModule.Status>();
    try {
      // One call for all pids. With more than one pid pidusage reports a missing one as a hole, not an error.
      const pidusage = options.pidusage ?? (await loadPidusage());
      const stats = await pidusage(pids);
      for (const pid of pids) {
        const stat = stats[pid];
        if (stat && typeof stat.ctime === 'number') found.set(pid, stat);
      }
    } catch (error) {
      errors.push({ reading: 'pidusage', code: codeOf(error) });
    }
    return found;
  }

  async function readDisk(errors: HealthSample['errors']): Promise<DiskReading | undefined> {
    try {
      const s = await statfs(diskPath);
      const used = (s.blocks - s.bfree) * s.bsize;
      const available = s.bavail * s.bsize;
      const usable = used + available;
      return {
        path: diskPath,
        totalGb: round2((s.blocks * s.bsize) / GB),
        freeGb: round2(available / GB),
        // As df computes it: space reserved for root counts as neither used nor available.
        percentUsed: usable > 0 ? round1((used / usable) * 100) : 0,
      };
    } catch (error) {
      errors.push({ reading: 'disk', code: codeOf(error) });
      return undefined;
    }
  }

  function readEventLoop(): EventLoopReading | undefined {
    if (histogram === undefined || histogram.count === 0) return undefined;
    const reading = {
      p50Ms: round1(histogram.percentile(50) / 1e6),
      p99Ms: round1(histogram.percentile(99) / 1e6),
      maxMs: round1(histogram.max / 1e6),
    };
    histogram.reset();
    return reading;
  }

  return {
    async sample(pids) {
      const errors: HealthSample['errors'] = [];
      const subprocessPids = [...new Set(pids.subprocesses)].filter((pid) => pid !== pids.runtime && isPid(pid));
      const all = [pids.runtime, ...subprocessPids];
      const [stats, disk] = await Promise.all([readPids(all, errors), readDisk(errors)]);

      for (const pid of marks.keys()) if (!stats.has(pid)) marks.delete(pid);
      const runtimeStat = stats.get(pids.runtime);
      const memory = process.memoryUsage();
      const total = os.totalmem();
      const free = os.freemem();
      const load = os.loadavg();

      const subprocesses: SubprocessReading[] = [];
      const vanished: number[] = [];
      for (const pid of subprocessPids) {
        const stat = stats.get(pid);
        if (stat === undefined) vanished.push(pid);
        else subprocesses.push({ pid, cpu: cpuOf(pid, stat), memory: stat.memory });
      }

      return {
        at: clock.now(),
        process: {
          pid: pids.runtime,
          cpu: runtimeStat === undefined ? undefined : cpuOf(pids.runtime, runtimeStat),
          memoryRss: pids.runtime === process.pid ? memory.rss : (runtimeStat?.memory ?? 0),
          heapUsed: memory.heapUsed,
          uptimeSec: Math.round(process.uptime()),
          threads: [...pids.threads],
        },
        subprocesses,
        vanished,
        host: {
          loadavg: [round2(load[0] ?? 0), round2(load[1] ?? 0), round2(load[2] ?? 0)],
          totalMemMb: Math.round(total / MB),
          freeMemMb: Math.round(free / MB),
          memoryPercentUsed: total > 0 ? round1(((total - free) / total) * 100) : 0,
          cores,
        },
        disk,
        eventLoop: readEventLoop(),
        errors,
      };
    },
    close() {
      histogram?.disable();
      histogram = undefined;
      marks.clear();
    },
  };
}

function isPid(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
