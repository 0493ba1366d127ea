/**
 * The capture path's own cost per line, without a subprocess or a runtime: 500,000 benchmark-shaped lines
 * (`<i> <stamp>`, as the streaming benchmark's printer writes them) fed in 64 KiB pipe chunks to a `LineSplitter`
 * whose lines go into a `LineWindow` with the benchmark's caps, as `runCommand` does. Prints ns per line for 7
 * rounds (the first ones warm up).
 *
 * Run: `node --import tsx bench/capture-cpu.ts`; `TROUPE_ROOT=/path/to/checkout` measures another checkout.
 */
const root = process.env.TROUPE_ROOT ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { LineSplitter, LineWindow, utf8Length } = (await import(`${root}/src/process/line-capture.ts`)) as typeof import('../src/process/line-capture.ts');

const LINES = 500_000;
let text = '';
for (let i = 0; i < LINES; i++) text += `${i} ${(1_733_482_000_000 + i / 7).toFixed(3)}\n`;
const bytes = Buffer.from(text);
const chunks: Buffer[] = [];
for (let i = 0; i < bytes.length; i += 65_536) chunks.push(bytes.subarray(i, i + 65_536));

const rounds: string[] = [];
for (let round = 0; round < 7; round++) {
  const window = new LineWindow({ maxLines: 2_000_000, maxBytes: 500_000_000 });
  let lines = 0;
  const started = performance.now();
  // a checkout whose splitter gives no size (or -1) measures the line, as runCommand does
  const splitter = new LineSplitter(500_000_000, (line: string, size?: number) => {
    lines++;
    window.push(size !== undefined && size >= 0 ? size : utf8Length(line));
  });
  for (const chunk of chunks) splitter.write(chunk);
  splitter.end();
  rounds.push((((performance.now() - started) / lines) * 1e6).toFixed(0));
}
console.log(`split + window, ns per line: ${rounds.join(' ')}`);
