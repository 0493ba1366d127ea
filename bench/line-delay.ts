/**
 * The streaming benchmark's memory-store line delay, alone and with the collector's pauses beside it: one memory
 * runtime (the benchmark's output caps), then per pass a 500,000-line flood and 2 s of 20,000 lines/s, as
 * `runStreaming` runs them. Prints per pass the flood's lines/s and the runtime process's CPU time per flood line
 * (all its threads; the printer is another process), the heap the flood left, the paced delays, and the GC pauses
 * that fell in the paced run (minor = scavenges, major = mark-compact).
 *
 * Run: `node --import tsx bench/line-delay.ts [passes] [memory|sqlite]` (add `--trace-gc-nvp` to see what each
 * scavenge promoted). `sqlite` runs the runtime on a fresh SQLite file (WAL, NORMAL), as the streaming suite does. `TROUPE_ROOT=/path/to/checkout` measures another checkout with the same script.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';

const root = process.env.TROUPE_ROOT ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { createRuntime } = (await import(`${root}/src/runtime.ts`)) as typeof import('../src/runtime.ts');
const { measureLines, printerTask } = (await import(`${root}/bench/lib/line-printer.ts`)) as typeof import('./lib/line-printer.ts');

const passes = Number(process.argv[2] ?? 3);
const storeKind = process.argv[3] ?? 'memory';
if (storeKind !== 'memory' && storeKind !== 'sqlite') throw new Error(`store: memory or sqlite, not ${storeKind}`);
const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-line-delay-'));
const pauses = { minor: [] as number[], major: [] as number[] };
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) pauses.minor.push(entry.duration);
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) pauses.major.push(entry.duration);
  }
});

const rt = await createRuntime({ store: storeKind === 'memory' ? 'memory' : `sqlite:${path.join(dir, 'stream.db')}`, maintenance: false, output: { maxLines: 2_000_000, maxBytes: '500MB' }, tasks: { printer: printerTask } });
try {
  await measureLines(rt, 1000, 0);
  for (let pass = 1; pass <= passes; pass++) {
    const cpu = process.cpuUsage();
    const flood = await measureLines(rt, 500_000, 0);
    const { user, system } = process.cpuUsage(cpu);
    const heap = process.memoryUsage().heapUsed / 1e6;
    pauses.minor = [];
    pauses.major = [];
    observer.observe({ entryTypes: ['gc'] });
    const paced = await measureLines(rt, 40_000, 20_000);
    await new Promise((resolve) => setImmediate(resolve));
    observer.disconnect();
    const d = paced.delay!;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0).toFixed(1);
    const max = (xs: number[]) => Math.max(0, ...xs).toFixed(1);
    console.log(
      `pass ${pass}: flood ${flood.linesPerSec.toLocaleString('en-US')} lines/s, ${((user + system) / 500_000).toFixed(2)} µs CPU/line, heap after ${heap.toFixed(0)} MB; ` +
        `paced p50 ${d.p50Ms.toFixed(3)} ms, p99 ${d.p99Ms.toFixed(3)} ms, max ${d.maxMs.toFixed(1)} ms; ` +
        `GC in paced: ${pauses.minor.length} minor (${sum(pauses.minor)} ms, max ${max(pauses.minor)}), ${pauses.major.length} major (${sum(pauses.major)} ms, max ${max(pauses.major)})`,
    );
  }
} finally {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
}
