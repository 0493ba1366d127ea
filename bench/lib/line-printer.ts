/**
 * Workload 8's source and sink: a command that prints numbered, timestamped lines (as fast as the pipe takes them,
 * or at a steady rate), run as a troupe command task, and a subscriber on `rt.on('task.output')` that counts them.
 *
 * Each line is `<i> <printed-at-ms>`, the time read as `performance.timeOrigin + performance.now()` in the
 * printer; the subscriber reads the same wall clock, so the delay of a line is its arrival minus its stamp.
 * Lines/s run from the first line printed to the last one delivered.
 */
import type { Runtime } from '../../src/runtime.ts';
import { summarize, type SampleSummary } from './stats.ts';

/** `node -e PRINTER <lines> <rate>`: rate 0 = flood (500-line writes, waiting for `drain`), else lines/s in 1 ms ticks. */
export const PRINTER = String.raw`
const n = Number(process.argv[1]); const rate = Number(process.argv[2]);
const now = () => (performance.timeOrigin + performance.now()).toFixed(3);
let i = 0;
if (rate === 0) {
  const pump = () => {
    while (i < n) {
      let batch = '';
      for (const end = Math.min(n, i + 500); i < end; i++) batch += i + ' ' + now() + '\n';
      if (!process.stdout.write(batch)) return process.stdout.once('drain', pump);
    }
  };
  pump();
} else {
  const start = performance.now();
  const timer = setInterval(() => {
    const due = Math.min(n, Math.ceil(((performance.now() - start) / 1000) * rate));
    let batch = '';
    for (; i < due; i++) batch += i + ' ' + now() + '\n';
    if (batch) process.stdout.write(batch);
    if (i >= n) clearInterval(timer);
  }, 1);
}
`;

/** The task definition to register as `printer` (input `{ lines, rate }`). */
export const printerTask = {
  command: process.execPath,
  args: (input: { lines: number; rate: number }) => ['-e', PRINTER, String(input.lines), String(input.rate)],
  output: { maxLines: 2_000_000, maxBytes: '500MB' },
  timeout: '5m',
} as const;

export interface LineFigures {
  lines: number;
  /** Lines per second from the first line printed to the last delivered to the subscriber. */
  linesPerSec: number;
  /** Delay of each line (paced runs only; a flood measures throughput, its delays are queueing). */
  delay?: SampleSummary;
}

const wallNow = () => performance.timeOrigin + performance.now();

/** Why: runs the printer once under `rt` and measures what its `task.output` subscriber received. */
export async function measureLines(rt: Runtime, lines: number, rate: number): Promise<LineFigures> {
  let count = 0;
  let firstPrinted = Number.POSITIVE_INFINITY;
  let lastAt = 0;
  const delays = rate > 0 ? new Float64Array(lines) : undefined;
  let id: string | undefined;
  const take = (text: string, at: number) => {
    if (count === 0 || delays) {
      const printed = Number(text.slice(text.indexOf(' ') + 1));
      if (printed < firstPrinted) firstPrinted = printed;
      if (delays && count < delays.length) delays[count] = at - printed;
    }
    count++;
    lastAt = at;
  };
  let allIn: (() => void) | undefined;
  const off = rt.on('task.output', (f) => {
    if (f.id !== id) return;
    take(f.line.text, wallNow());
    if (count >= lines) allIn?.();
  });
  try {
    // The id is known before any output can arrive: facts are delivered asynchronously.
    const handle = rt.start('printer', { lines, rate });
    id = handle.id;
    await handle.result;
    if (count < lines) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the subscriber got ${count} of ${lines} lines`)), 10_000);
        allIn = () => (clearTimeout(timer), resolve());
      });
    }
  } finally {
    off();
  }
  return {
    lines,
    linesPerSec: Math.round(lines / ((lastAt - firstPrinted) / 1000)),
    ...(delays ? { delay: summarize(delays.subarray(0, count)) } : {}),
  };
}
