/**
 * Which B-trees a claim 64 + settle 64 writes, read from the WAL: the scale suite's store round (64 tasks enqueued,
 * then claimed, then settled) on a copy of a file `deep-claim.bench.ts build` made, with a side connection that
 * truncates the WAL before each transaction, so the frames in the -wal file afterwards are that transaction's pages.
 * Each frame's page number is mapped to its B-tree and page kind through `dbstat` at the end.
 *
 *   npx tsx bench/wal-pages.ts <file> [--rounds 100] [--src <dir>] [--calls]
 *
 * The side connection's checkpoints restart the WAL, and a connection that sees the WAL restarted empties its page
 * cache, so the reads counted then are those of a cold cache. `--calls` counts only the system calls, with the
 * store as it runs (checkpoints on its thread, no side connection checkpointing): the reads are then the pages
 * SQLite's own cache did not hold.
 *
 * Prints, per verb (enqueue, claim, settle), the pages per round by B-tree and kind (leaf / interior / overflow)
 * as dbstat sees them at the end (a page freed and reused since counts as what it became), the same by the kind
 * each page had when written (its type byte in the frame), the pages the file grew by (new pages: splits), and the
 * read and write system calls the verb made (/proc/self/io: a page SQLite's cache did not hold is one read).
 */
import Database from 'better-sqlite3';
import { copyFileSync, openSync, readFileSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts, positionals: args } = parseArgs({
  options: { src: { type: 'string', default: path.join(import.meta.dirname, '../src') }, rounds: { type: 'string', default: '100' }, calls: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const src = path.resolve(opts.src);
const rounds = Number(opts.rounds);
const callsOnly = opts.calls;
const [file] = args;
if (!file) {
  console.error('usage: wal-pages.ts <file> [--rounds N] [--src dir]');
  process.exit(2);
}
const { createSqliteStore } = (await import(path.join(src, 'store/sqlite/sqlite-store.ts'))) as typeof import('../src/store/sqlite/sqlite-store.ts');
const { createTaskId } = (await import(path.join(src, 'ids.ts'))) as typeof import('../src/ids.ts');

const copy = `${file}.walpages`;
for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
copyFileSync(file, copy);
const store = createSqliteStore(copy, { strategy: 'priority', checkpoints: callsOnly ? 'thread' : 'inline' });
await store.open();
const side = new Database(copy);
const pageSize = side.pragma('page_size', { simple: true }) as number;

const PAGE_KINDS: Record<number, string> = { 2: 'index interior', 5: 'table interior', 10: 'index leaf', 13: 'table leaf' };
/** What the frames written so far were when written (their page's type byte), per verb. */
const written_kinds = { enqueue: new Map<string, number>(), claim: new Map<string, number>(), settle: new Map<string, number>() };

/** The page numbers of the frames in the -wal file now (in order, repeats kept); counts their kinds into `kinds`. */
function walPages(kinds?: Map<string, number>): number[] {
  if (callsOnly) return [];
  const wal = `${copy}-wal`;
  const size = statSync(wal, { throwIfNoEntry: false })?.size ?? 0;
  const out: number[] = [];
  if (size <= 32) return out;
  const fd = openSync(wal, 'r');
  const head = Buffer.alloc(24);
  const type = Buffer.alloc(1);
  try {
    for (let at = 32; at + 24 + pageSize <= size; at += 24 + pageSize) {
      readSync(fd, head, 0, 24, at);
      const page = head.readUInt32BE(0);
      out.push(page);
      if (kinds) {
        readSync(fd, type, 0, 1, at + 24 + (page === 1 ? 100 : 0));
        const kind = page === 1 ? 'page 1' : (PAGE_KINDS[type[0]!] ?? `other (${type[0]})`);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
const truncate = () => (callsOnly ? undefined : side.pragma('wal_checkpoint(TRUNCATE)'));
const pagesInFile = () => statSync(copy).size / pageSize + 0;

/** The main thread's read and write system calls and bytes so far (/proc/thread-self/io; Linux). */
const io = (): Record<'syscr' | 'syscw' | 'rchar' | 'wchar', number> => {
  const text = readFileSync('/proc/thread-self/io', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { syscr: get('syscr'), syscw: get('syscw'), rchar: get('rchar'), wchar: get('wchar') };
};
const calls = { enqueue: { syscr: 0, syscw: 0, rchar: 0, wchar: 0 }, claim: { syscr: 0, syscw: 0, rchar: 0, wchar: 0 }, settle: { syscr: 0, syscw: 0, rchar: 0, wchar: 0 } };
const during = async <T>(verb: keyof typeof calls, fn: () => Promise<T>): Promise<T> => {
  const before = io();
  const result = await fn();
  const after = io();
  for (const k of ['syscr', 'syscw', 'rchar', 'wchar'] as const) calls[verb][k] += after[k] - before[k];
  return result;
};

const OWNER = 'node-3f9c2a7e-5d1b';
const written = { enqueue: [] as number[][], claim: [] as number[][], settle: [] as number[][] };
const grown = { enqueue: 0, claim: 0, settle: 0 };
const dbPages = () => (side.pragma('page_count', { simple: true }) as number);
for (let round = 0; round < rounds; round++) {
  const now = Date.now();
  truncate();
  let p0 = dbPages();
  await during('enqueue', () => store.enqueue(Array.from({ length: 64 }, (_, j) => ({ id: createTaskId(now), name: 'noop', input: { i: j }, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now }))));
  written.enqueue.push(walPages(written_kinds.enqueue));
  grown.enqueue += dbPages() - p0;
  truncate();
  p0 = dbPages();
  const claimed = await during('claim', () => store.claim({ owner: OWNER, limit: 64, leaseMs: 30_000, now, names: ['noop'] }));
  written.claim.push(walPages(written_kinds.claim));
  grown.claim += dbPages() - p0;
  truncate();
  p0 = dbPages();
  await during('settle', () => store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: OWNER, attempt: t.attempts, at: now, result: null }))));
  written.settle.push(walPages(written_kinds.settle));
  grown.settle += dbPages() - p0;
  if (claimed.length !== 64) throw new Error(`claimed ${claimed.length}`);
}
truncate();
await store.close();
void pagesInFile;

const kinds = new Map<number, string>();
for (const row of side.prepare<[], { name: string; pageno: number; pagetype: string }>('SELECT name, pageno, pagetype FROM dbstat').iterate()) {
  kinds.set(row.pageno, `${row.name} ${row.pagetype}`);
}
side.close();
for (const verb of ['enqueue', 'claim', 'settle'] as const) {
  const by = new Map<string, number>();
  let total = 0;
  for (const frames of written[verb]) {
    for (const p of frames) {
      const k = p === 1 ? 'header (page 1)' : (kinds.get(p) ?? 'free/other');
      by.set(k, (by.get(k) ?? 0) + 1);
      total++;
    }
  }
  console.log(`${verb}: ${(total / rounds).toFixed(1)} pages/round, file grew ${(grown[verb] / rounds).toFixed(2)} pages/round`);
  for (const [k, n] of [...by].sort((a, b) => b[1] - a[1])) console.log(`  ${(n / rounds).toFixed(2).padStart(6)}  ${k}`);
  const when = [...written_kinds[verb]].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${(n / rounds).toFixed(2)}`);
  console.log(`  as written: ${when.join(', ')}`);
  const c = calls[verb];
  console.log(`  system calls: ${(c.syscr / rounds).toFixed(1)} reads (${(c.rchar / rounds / 1024).toFixed(1)} KiB), ${(c.syscw / rounds).toFixed(1)} writes (${(c.wchar / rounds / 1024).toFixed(1)} KiB)`);
}
for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
