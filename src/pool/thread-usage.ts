/**
 * What a handler job used of its worker thread, read inside the thread (why: the advisor's CPU and memory rules,
 * docs/advisor.md). Node 20 has no per-thread CPU clock, so:
 *
 * - CPU, on Linux: the thread's own `/proc/thread-self/schedstat` (its first field is the nanoseconds the kernel
 *   ran this thread). The kernel brings that figure up to date only at its scheduler ticks (250 Hz here) and when
 *   the thread is switched out, so read alone it lags by up to a tick: a 1 ms job read 0.26 ms, a 0.5 ms one 0.15 ms
 *   (means of 20, measured here), since the switch-out that accounts a short job comes after it settled. A
 *   `process.cpuUsage()` just before the read fixes that: getrusage(RUSAGE_SELF) brings the calling thread's
 *   figure up to date (the kernel's thread_group_cputime), and the same jobs then read 0.96 and 0.50 ms. The file
 *   is opened once per thread and read with a positioned `readSync` into one buffer: ≈1.4 µs + ≈3.5 µs a reading
 *   here, so only jobs that may be slow (≥ 1 ms a call, which run alone on their thread) are read, twice.
 * - CPU, elsewhere (no /proc, or it cannot be read): the thread's event-loop active time
 *   (`performance.eventLoopUtilization()`), the time it was not waiting for I/O or timers. With one job on the
 *   thread this is its busy time, on the CPU or waiting for one (it counts time the thread was preempted).
 * - Memory: the isolate's committed heap (`total_heap_size`) plus its external memory (Buffers, ArrayBuffers) when
 *   the job settled (≈0.5 µs). Threads share the process's RSS, so no per-thread resident figure exists; this is
 *   what the thread holds, garbage not yet collected included, not a peak.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** The fd of this thread's schedstat: undefined before the first read, -1 when it cannot be read. */
let schedFd: number | undefined;
const buffer = Buffer.alloc(64);

/** This thread's CPU time so far (ms; see the header for what it is where /proc is missing). */
export function threadCpuMs(): number {
  if (schedFd === undefined) schedFd = openSchedstat();
  if (schedFd >= 0) {
    try {
      process.cpuUsage();
      const n = readSync(schedFd, buffer, 0, buffer.length, 0);
      let ns = 0;
      for (let i = 0; i < n; i++) {
        const c = buffer[i]!;
        if (c < 48 || c > 57) break;
        ns = ns * 10 + (c - 48);
      }
      return ns / 1e6;
    } catch {
      schedFd = -1;
    }
  }
  return performance.eventLoopUtilization().active;
}

function openSchedstat(): number {
  if (process.platform !== 'linux') return -1;
  try {
    const fd = openSync('/proc/thread-self/schedstat', 'r');
    // A worker's `exit` comes when the thread ends (also when it is terminated): the fd is the process's, not the thread's.
    process.once('exit', () => closeSync(fd));
    return fd;
  } catch {
    return -1;
  }
}

/** The memory this thread's isolate holds now, in KiB: committed heap plus external memory. */
export function isolateMemoryKib(): number {
  const s = getHeapStatistics();
  return Math.round((s.total_heap_size + s.external_memory) / 1024);
}
