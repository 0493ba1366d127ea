/**
 * Which B-trees a claim 64 + settle 64 writes, read from the WAL: the scale suite's store round (64 tasks enqueued,
 * then claimed, then settled) on a copy of a file `deep-claim.bench.ts build` made, with a side connection that
 * truncates the WAL before each transaction, so the frames in the -wal file afterwards are that transaction's pages.
 * Each frame's page number is mapped to its B-tree and page kind through `dbstat` at the end.
 *
 *   npx tsx bench/wal-pages.ts <file> [--rounds 100] [--src <dir>]
 *
 * Prints, per verb (enqueue, claim, settle), the pages per round by B-tree and kind (leaf / interior / overflow),
 * and the pages the file grew by (new pages: splits).
 */
import Database from 'better-sqlite3';
import { copyFileSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1]!;
  args.splice(i, 2);
  return v;
};
const src = path.resolve(flag('--src', path.join(import.meta.dirname, '../src')));
const rounds = Number(flag('--rounds', '100'));
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
const store = createSqliteStore(copy, { strategy: 'priority', checkpoints: 'inline' });
await store.open();
const side = new Database(copy);
const pageSize = side.pragma('page_size', { simple: true }) as number;

/** The page numbers of the frames in the -wal file now (in order, repeats kept). */
function walPages(): number[] {
  const wal = `${copy}-wal`;
  const size = statSync(wal, { throwIfNoEntry: false })?.size ?? 0;
  const out: number[] = [];
  if (size <= 32) return out;
  const fd = openSync(wal, 'r');
  const head = Buffer.alloc(24);
  try {
    for (let at = 32; at + 24 + pageSize <= size; at += 24 + pageSize) {
      readSync(fd, head, 0, 24, at);
      out.push(head.readUInt32BE(0));
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
const truncate = () => side.pragma('wal_checkpoint(TRUNCATE)');
const pagesInFile = () => statSync(copy).size / pageSize + 0;

const OWNER = 'node-3f9c2a7e-5d1b';
const written = { enqueue: [] as number[][], claim: [] as number[][], settle: [] as number[][] };
const grown = { enqueue: 0, claim: 0, settle: 0 };
const dbPages = () => (side.pragma('page_count', { simple: true }) as number);
for (let round = 0; round < rounds; round++) {
  const now = Date.now();
  truncate();
  let p0 = dbPages();
  await store.enqueue(Array.from({ length: 64 }, (_, j) => ({ id: createTaskId(now), name: 'noop', input: { i: j }, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now })));
  written.enqueue.push(walPages());
  grown.enqueue += dbPages() - p0;
  truncate();
  p0 = dbPages();
  const claimed = await store.claim({ owner: OWNER, limit: 64, leaseMs: 30_000, now, names: ['noop'] });
  written.claim.push(walPages());
  grown.claim += dbPages() - p0;
  truncate();
  p0 = dbPages();
  await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: OWNER, attempt: t.attempts, at: now, result: null })));
  written.settle.push(walPages());
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
}
for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
