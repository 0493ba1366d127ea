/**
 * weighted-random on PostgreSQL draws exactly as the memory and SQLite stores do: given one seed and the same
 * tasks, the same claims pick the same tasks, through both PostgreSQL paths (one statement for a single task,
 * the locked-candidates transaction for several), with fractional weights, several names and per-name caps.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createTaskId } from '../../src/ids.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { ClaimRequest, Store } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, PG_URL, asyncCommitUrl, trackSchemas } from '../helpers/pg.ts';
import { seededRandom } from './contract/context.ts';

const schemas = trackSchemas('weighted');
const dir = mkdtempSync(join(tmpdir(), 'troupe-weighted-'));
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await schemas.dropAll();
});

const NAMES = ['a', 'b', 'c'];
const WEIGHTS = [0.1, 0.2, 0.7, 3, 1.5];
const START = Date.UTC(2026, 0, 1);

function buildTasks(): NewTask[] {
  const out: NewTask[] = [];
  for (let i = 0; i < 60; i++) {
    const at = START + i;
    out.push({
      id: createTaskId(at),
      name: NAMES[i % NAMES.length]!,
      input: { i },
      priority: 0,
      weight: WEIGHTS[(i * 7) % WEIGHTS.length]!,
      maxAttempts: 100,
      createdAt: at,
      runAt: at,
    });
  }
  return out;
}

/** One task list for every store (ids come from a monotonic generator, so build it once). */
const TASKS = buildTasks();

/** A fixed script of claims (some released again), returning the ids each claim took. */
async function script(store: Store): Promise<string[][]> {
  await store.open();
  await store.enqueue(TASKS);
  const now = START + 1000;
  const steps: Array<Partial<ClaimRequest>> = [
    { limit: 1 }, { limit: 1 }, { limit: 4 }, { limit: 1, perName: { a: 0 } }, { limit: 6, perName: { b: 1 } },
    { limit: 1, names: ['c'] }, { limit: 3, exclude: ['a'] }, { limit: 1 }, { limit: 8 }, { limit: 1 },
  ];
  const taken: string[][] = [];
  for (let round = 0; round < 3; round++) {
    for (const step of steps) {
      const got = await store.claim({ owner: 'n', limit: 1, leaseMs: 60_000, now, ...step });
      taken.push(got.map((t) => t.id));
      // Give back every other claim, so the classes keep changing size both ways.
      if (taken.length % 2 === 0) {
        await store.settle(got.map((t) => ({ type: 'release' as const, id: t.id, owner: 'n', attempt: t.attempts, at: now, reason: 'script' })));
      }
    }
  }
  await store.close();
  return taken;
}

describe('postgres store: weighted-random matches the other stores', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  it('picks the same tasks as the memory and SQLite stores for one seed', async () => {
    const seed = 424242;
    const memory = await script(createMemoryStore({ strategy: 'weighted-random', random: seededRandom(seed) }));
    const sqlite = await script(createSqliteStore(join(dir, 'w.db'), { strategy: 'weighted-random', random: seededRandom(seed) }));
    const postgres = await script(
      createPostgresStore(asyncCommitUrl(PG_URL!), { schema: schemas.next(), strategy: 'weighted-random', random: seededRandom(seed), listen: false }),
    );
    assert.ok(memory.flat().length > 60, 'the script claims plenty');
    assert.deepEqual(sqlite, memory, 'sqlite and memory agree (the reference for this test)');
    assert.deepEqual(postgres, memory);
  });
});
