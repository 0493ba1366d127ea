/**
 * SQLite instructions per claim 64 + settle 64 on a store file, counted by valgrind's callgrind: a figure that does
 * not move with the load of a shared machine. Only instructions inside `sqlite3_step` are counted (the statements,
 * their COMMITs and any checkpoint they run; not the JavaScript around them, not the kernel's side of a read or a
 * write), between two markers (`sqlite3_create_function_v2`, called from a side connection), so that opening the
 * file (its `quick_check`) and enqueueing the tasks beforehand are left out.
 *
 *   npx tsx bench/claim-instructions.ts <file> [rounds=100] [--src <dir>]
 *
 * runs itself under `valgrind --tool=callgrind` on a copy of `<file>` (one `deep-claim.bench.ts build` made), with the
 * store of `<dir>` (another checkout's src/; default this one's): 64 × rounds tasks are enqueued first, then each
 * round claims 64 and settles them. Prints instructions per round. Checkpoints run inline (SQLite's own, in the
 * commit that fills the WAL to 1000 pages), so they are part of the count.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const at = args.indexOf('--src');
const src = path.resolve(at >= 0 ? args.splice(at, 2)[1]! : path.join(import.meta.dirname, '../src'));
const [file, roundsArg, child] = args;
const rounds = Number(roundsArg ?? 100);
if (!file || !Number.isInteger(rounds) || rounds <= 0) {
  console.error('usage: claim-instructions.ts <file> [rounds] [--src dir]');
  process.exit(2);
}

if (child !== '--child') {
  const copy = `${file}.instructions-${process.pid}`;
  const out = `${copy}.callgrind`;
  for (const ext of ['', '-wal', '-shm']) rmSync(copy + ext, { force: true });
  copyFileSync(file, copy);
  const r = spawnSync(
    'valgrind',
    ['--tool=callgrind', '--toggle-collect=sqlite3_step', '--dump-before=sqlite3_create_function_v2', `--callgrind-out-file=${out}.%p`,
      process.execPath, '--import', 'tsx', import.meta.filename, copy, String(rounds), '--child', '--src', src],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    console.error(r.stderr.slice(-2000));
    process.exit(1);
  }
  // a dump before every sqlite3_create_function_v2 (opening a connection calls it too): the last numbered one ends
  // at the end marker, and the marker_start call just before it began it, so it holds the rounds alone
  const pid = /==(\d+)==/.exec(r.stderr)?.[1];
  const parts = readdirSync(path.dirname(out)).filter((f) => f.startsWith(`${path.basename(out)}.${pid}.`)).map((f) => Number(f.slice(f.lastIndexOf('.') + 1)));
  const dump = readFileSync(`${out}.${pid}.${Math.max(...parts)}`, 'utf8');
  const total = Number(/^summary: (\d+)/m.exec(dump)?.[1]);
  console.log(`${path.basename(file)} (${src}): ${Math.round(total / rounds).toLocaleString('en-US')} instructions in sqlite3_step per claim 64 + settle 64 (${rounds} rounds)`);
  for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) rmSync(f, { force: true });
  for (const f of readdirSync(path.dirname(out))) if (f.startsWith(`${path.basename(out)}.`)) rmSync(path.join(path.dirname(out), f));
} else {
  const Database = (await import('better-sqlite3')).default;
  const { createSqliteStore } = (await import(path.join(src, 'store/sqlite/sqlite-store.ts'))) as typeof import('../src/store/sqlite/sqlite-store.ts');
  const { createTaskId } = (await import(path.join(src, 'ids.ts'))) as typeof import('../src/ids.ts');
  const OWNER = 'node-3f9c2a7e-5d1b';
  const store = createSqliteStore(file, { strategy: 'priority', checkpoints: 'inline' });
  await store.open();
  const now = Date.now();
  for (let done = 0; done < rounds * 64; done += 1024) {
    const n = Math.min(1024, rounds * 64 - done);
    await store.enqueue(Array.from({ length: n }, (_, j) => ({ id: createTaskId(now), name: 'noop', input: { i: done + j }, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now })));
  }
  const side = new Database(file);
  side.function('marker_start', () => 0);
  for (let round = 0; round < rounds; round++) {
    const claimed = await store.claim({ owner: OWNER, limit: 64, leaseMs: 30_000, now, names: ['noop'] });
    await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: OWNER, attempt: t.attempts, at: now, result: null })));
    if (claimed.length !== 64) throw new Error(`claimed ${claimed.length}`);
  }
  side.function('marker_end', () => 0);
  side.close();
  await store.close();
}
