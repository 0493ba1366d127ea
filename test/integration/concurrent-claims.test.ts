/**
 * On PostgreSQL the scheduler keeps two claims in flight while the executor's demand has room for both (each on
 * its own connection; `SKIP LOCKED` keeps them apart). Checked on the real store, by watching its claim calls:
 * how many overlap, and that every task still runs exactly once. Where two claims could together take more than
 * a limit allows (a per-name cap, a group limit), and on SQLite, one claim at a time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import type { TaskDefinition } from '../../src/registry.ts';
import { PG_SKIP, asyncCommitUrl, trackSchemas } from '../helpers/pg.ts';

const schemas = trackSchemas('claims');
const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-claims-'));
after(async () => {
  await schemas.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Wraps the store's claim to record the most claims ever in flight at once. With `holdFirst`, the first claim
 * waits until a second one is sent (10 s at most, a safety net), so that a loaded machine, where the first claim
 * may come back before the scheduler would send the second, cannot decide the overlap: what is checked is that the
 * scheduler sends a second claim while one is out.
 */
function watchClaims(store: Store, { holdFirst = false } = {}): { readonly most: number; readonly calls: number } {
  const claim = store.claim.bind(store);
  const seen = { most: 0, calls: 0 };
  let inFlight = 0;
  let second!: () => void;
  const secondSent = new Promise<void>((resolve) => (second = resolve));
  store.claim = async (request) => {
    inFlight++;
    seen.calls++;
    seen.most = Math.max(seen.most, inFlight);
    if (inFlight === 2) second();
    try {
      if (holdFirst && seen.calls === 1) {
        let safety: NodeJS.Timeout | undefined;
        await Promise.race([secondSent, new Promise<void>((resolve) => (safety = setTimeout(resolve, 10_000)))]);
        clearTimeout(safety);
      }
      return await claim(request);
    } finally {
      inFlight--;
    }
  };
  return seen;
}

const TASKS = 1500;

/** Fills the queue while the name is paused, then lets it drain; resolves with each task's run count. */
async function drain(store: Store, def: Partial<TaskDefinition> = {}, enqueue: (rt: Runtime, i: number) => Promise<unknown> = (rt, i) => rt.enqueue('job', { i }), holdFirst = false): Promise<{ runs: Map<number, number>; seen: { most: number; calls: number } }> {
  const runs = new Map<number, number>();
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((resolve) => (finished = resolve));
  const rt = await createRuntime({
    store,
    concurrency: 8,
    maintenance: false,
    tasks: {
      job: {
        ...def,
        run: (input: { i: number }) => {
          runs.set(input.i, (runs.get(input.i) ?? 0) + 1);
          return null;
        },
      } as TaskDefinition,
    },
  });
  const off = rt.on('task.succeeded', () => {
    if (++done === TASKS) finished();
  });
  try {
    rt.pause('job');
    for (let at = 0; at < TASKS; at += 500) {
      await Promise.all(Array.from({ length: Math.min(500, TASKS - at) }, (_, k) => enqueue(rt, at + k)));
    }
    const seen = watchClaims(store, { holdFirst });
    rt.resume('job');
    await all;
    return { runs, seen };
  } finally {
    off();
    await rt.close();
  }
}

function assertEachRanOnce(runs: Map<number, number>): void {
  assert.equal(runs.size, TASKS);
  for (const [i, n] of runs) assert.equal(n, 1, `task ${i} ran ${n} times`);
}

describe('claims in flight', () => {
  it('PostgreSQL: two claims overlap while the queue is deep, and every task runs once', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    const { runs, seen } = await drain(createPostgresStore(asyncCommitUrl(), { schema: schemas.next() }), {}, undefined, true);
    assertEachRanOnce(runs);
    assert.equal(seen.most, 2, `claims in flight at most ${seen.most} (of ${seen.calls} calls)`);
  });

  it('PostgreSQL: one claim at a time for a name with a concurrency cap', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    const { runs, seen } = await drain(createPostgresStore(asyncCommitUrl(), { schema: schemas.next() }), { concurrency: 4 });
    assertEachRanOnce(runs);
    assert.equal(seen.most, 1);
  });

  it('PostgreSQL: one claim at a time for a name with a group limit', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    const { runs, seen } = await drain(createPostgresStore(asyncCommitUrl(), { schema: schemas.next() }), { groupConcurrency: 4 }, (rt, i) => rt.enqueue('job', { i }, { group: `g${i % 3}` }));
    assertEachRanOnce(runs);
    assert.equal(seen.most, 1);
  });

  it('SQLite: one claim at a time', async () => {
    const { runs, seen } = await drain(createSqliteStore(path.join(dir, 'claims.db')));
    assertEachRanOnce(runs);
    assert.equal(seen.most, 1);
    assert.ok(seen.calls > 1);
  });
});
