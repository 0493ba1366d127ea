/**
 * What the runtime's drain at depth costs the main thread in system calls, beside its rate: the scale suite's drain
 * phase (20,000 inline no-op tasks, concurrency 16) on copies of store files, taking turns, with the main thread's
 * read and write calls and bytes per task read from /proc/thread-self/io (Linux). The calls do not move with the
 * load of the machine; the rates do.
 *
 *   npx tsx bench/drain-calls.ts <file>[@<src dir>] … [--drain 20000] [--passes 2]
 *
 * Each file is one `deep-claim.bench.ts build` made (tasks of the name `noop`), opened with the runtime of `<src
 * dir>` (another checkout's src/; default this one's). A file needs at least drain × passes queued tasks.
 */
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts, positionals: args } = parseArgs({
  options: { drain: { type: 'string', default: '20000' }, passes: { type: 'string', default: '2' } },
  allowPositionals: true,
});
const drainCount = Number(opts.drain);
const passes = Number(opts.passes);
const here = path.join(import.meta.dirname, '../src');

const io = (): Record<'syscr' | 'syscw' | 'rchar' | 'wchar', number> => {
  const text = readFileSync('/proc/thread-self/io', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { syscr: get('syscr'), syscw: get('syscw'), rchar: get('rchar'), wchar: get('wchar') };
};

const specs = args.map((arg) => {
  const at = arg.lastIndexOf('@');
  return at > 0 ? { file: arg.slice(0, at), src: path.resolve(arg.slice(at + 1)) } : { file: arg, src: here };
});
// a file with fewer queued tasks than the passes drain would leave the last pass waiting for ever
const Database = (await import('better-sqlite3')).default;
for (const { file } of specs) {
  const db = new Database(file, { readonly: true });
  const queued = db.prepare<[], number>("SELECT n FROM task_counts WHERE state = 'queued'").pluck().get() ?? 0;
  db.close();
  if (queued < drainCount * passes) {
    console.error(`${file} holds ${queued} queued tasks, fewer than --drain × --passes (${drainCount * passes})`);
    process.exit(2);
  }
}
const counter = { ran: 0, target: Number.POSITIVE_INFINITY, done: undefined as undefined | (() => void) };
const runtimes = await Promise.all(
  specs.map(async ({ file, src }, i) => {
    const copy = `${file}.drain${i}-${process.pid}`;
    for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
    copyFileSync(file, copy);
    const { createRuntime } = (await import(path.join(src, 'runtime.ts'))) as typeof import('../src/runtime.ts');
    const rt = await createRuntime({
      store: `sqlite:${copy}`,
      concurrency: 16,
      maintenance: false,
      tasks: { noop: { run: () => (++counter.ran === counter.target && counter.done?.(), null) } },
    });
    rt.pause('noop');
    return { rt, copy, name: `${path.basename(file)}${src === here ? '' : `@${src}`}` };
  }),
);
for (let pass = 0; pass < passes; pass++) {
  const line: string[] = [];
  for (let k = 0; k < runtimes.length; k++) {
    const { rt, name } = runtimes[pass % 2 === 0 ? k : runtimes.length - 1 - k]!;
    counter.ran = 0;
    counter.target = drainCount;
    const finished = new Promise<void>((resolve) => (counter.done = resolve));
    const before = io();
    const t0 = performance.now();
    rt.resume('noop');
    await finished;
    const seconds = (performance.now() - t0) / 1000;
    rt.pause('noop');
    await rt.flush();
    const after = io();
    const per = (k: keyof typeof before) => ((after[k] - before[k]) / drainCount).toFixed(2);
    line.push(`${name}: ${Math.round(drainCount / seconds)}/s, per task ${per('syscr')} reads (${per('rchar')} B), ${per('syscw')} writes (${per('wchar')} B)`);
  }
  console.log(`pass ${pass}: ${line.join(' | ')}`);
}
for (const { rt, copy } of runtimes) {
  await rt.close();
  for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
}
