/**
 * What a command's process used, sampled from its /proc entry while it runs (Linux; elsewhere nothing is sampled
 * and the figures stay unknown). Why sampling: the entry disappears once the child is reaped, so no reading can be
 * taken at its end; the kernel keeps the peak for us (`VmHWM`, the largest resident set the process has had), so a
 * sample taken late enough holds the peak reached so far.
 *
 * Samples are taken SAMPLE_FIRST_MS after the spawn, then at gaps that double up to SAMPLE_MAX_GAP_MS (20, 40, 80 …
 * 1000 ms): a 1 s command is read 6 times, a minute-long one about 66 times. A sample reads `/proc/<pid>/stat`
 * (utime + stime + cutime + cstime, 10 ms ticks) and `/proc/<pid>/status` (`VmHWM`): ≈20–50 µs of main-thread time
 * here (a loaded 2-core machine). Each run costs one timer (unref'd) until its first sample; a command that ends within SAMPLE_FIRST_MS is
 * never read.
 *
 * What the figures miss: memory reached after the last sample (up to one gap before the exit) and the memory of
 * descendants (the leader's own VmHWM only); the CPU time after the last sample, which the spawn server's exact
 * figure at the reap replaces (see spawn-server.mjs). A pid reused between samples is told apart by its start time.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const SAMPLE_FIRST_MS = 20;
const SAMPLE_MAX_GAP_MS = 1000;
const SAMPLING = process.platform === 'linux';
/** One buffer for every read (a status file is ≈1.4 KB): open, one positioned read, close — about half the cost of readFileSync. */
const buffer = Buffer.allocUnsafe(4096);

function readProc(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** A command's measured usage: either figure may be unknown. */
export interface ProcessUsage {
  /** CPU time of the process and the descendants it waited for, at the last reading (ms). */
  cpuMs?: number;
  /** The largest resident set of the process at the last reading (MiB). */
  peakRssMb?: number;
}

/** Samples one process until `stop()`. */
export class UsageSampler {
  readonly #pid: number;
  #timer: NodeJS.Timeout | undefined = undefined;
  #gap = SAMPLE_FIRST_MS;
  #startTime: string | undefined = undefined;
  #cpuMs: number | undefined = undefined;
  #peakKib = -1;

  constructor(pid: number) {
    this.#pid = pid;
    if (SAMPLING) this.#arm();
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#sample(), this.#gap);
    this.#timer.unref();
  }

  #sample(): void {
    this.#timer = undefined;
    if (!this.#read()) return;
    this.#gap = Math.min(SAMPLE_MAX_GAP_MS, this.#gap * 2);
    this.#arm();
  }

  /** One reading; false when the process is gone (or its pid now names another one). */
  #read(): boolean {
    let stat: string;
    let status: string;
    try {
      stat = readProc(`/proc/${this.#pid}/stat`);
      status = readProc(`/proc/${this.#pid}/status`);
    } catch {
      return false;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // state [0], utime [11], stime [12], cutime [13], cstime [14], starttime [19]
    const startTime = fields[19];
    if (this.#startTime === undefined) this.#startTime = startTime;
    else if (startTime !== this.#startTime) return false;
    this.#cpuMs = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
    // A zombie (exited, not reaped yet) has its final CPU figure and no memory left to read.
    if (fields[0] === 'Z') return false;
    const at = status.indexOf('VmHWM:');
    if (at !== -1) {
      const kib = Number.parseInt(status.slice(at + 6, status.indexOf('kB', at)), 10);
      if (kib > this.#peakKib) this.#peakKib = kib;
    }
    return true;
  }

  /** Stops sampling and returns what was read (nothing, for a run that ended before its first sample). */
  stop(): ProcessUsage {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const usage: ProcessUsage = {};
    if (this.#cpuMs !== undefined) usage.cpuMs = this.#cpuMs;
    if (this.#peakKib >= 0) usage.peakRssMb = this.#peakKib / 1024;
    return usage;
  }
}
