/**
 * How much of the machine other processes took while a measured test ran: the measured tests assert their bounds
 * only when the cores were theirs. The 1-minute load average lags behind a burst (another test file starting, a
 * build), so it is read beside this, not instead of it.
 */
import { availableParallelism } from 'node:os';
import { cpuTimes } from '../../bench/lib/machine.ts';

/**
 * Starts watching; the returned function gives the cores (0–n) that processes other than this one kept busy on
 * average since the start, or undefined where /proc/stat cannot be read (off Linux).
 */
export function watchOthersCpu(): () => number | undefined {
  const machine = cpuTimes();
  const own = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const now = cpuTimes();
    if (machine === undefined || now === undefined || now.total === machine.total) return undefined;
    // The busy share of all CPUs, in cores, less this process's own CPU time over the same wall time.
    const busyCores = ((now.busy - machine.busy) / (now.total - machine.total)) * availableParallelism();
    const mine = process.cpuUsage(own);
    const ownCores = (mine.user + mine.system) / 1000 / (performance.now() - t0);
    return Math.max(0, busyCores - ownCores);
  };
}
