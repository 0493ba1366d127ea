/**
 * The 'auto' prefetch rule per store kind: PostgreSQL claims further ahead than SQLite (a claim there is a network
 * round trip, and two go out side by side), the memory store not at all, and an explicit number always wins.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { resolvePrefetch } from '../../src/options.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { PG_SKIP, pgUrl, trackSchemas } from '../helpers/pg.ts';

const schemas = trackSchemas('prefetch');
after(() => schemas.dropAll());

function executorInfo(rt: Runtime): Record<string, unknown> {
  const node = rt.tree().children?.find((c) => c.address === 'executor');
  return (node?.info ?? {}) as Record<string, unknown>;
}

describe('prefetch: the auto rule per store kind', () => {
  it('holds four claim batches on PostgreSQL, twice the concurrency when that is more', () => {
    assert.equal(resolvePrefetch('auto', 'postgres', 1, 64), 256);
    assert.equal(resolvePrefetch('auto', 'postgres', 32, 64), 256);
    assert.equal(resolvePrefetch('auto', 'postgres', 200, 64), 400);
    assert.equal(resolvePrefetch('auto', 'postgres', 8, 16), 64);
    assert.equal(resolvePrefetch('auto', 'postgres', 9_000, 64), 10_000);
  });

  it('holds two claim batches on SQLite, none on memory, and an explicit number everywhere', () => {
    assert.equal(resolvePrefetch('auto', 'sqlite', 8, 64), 128);
    assert.equal(resolvePrefetch('auto', 'sqlite', 100, 64), 200);
    assert.equal(resolvePrefetch('auto', 'memory', 8, 64), 0);
    for (const kind of ['postgres', 'sqlite', 'memory']) assert.equal(resolvePrefetch(5, kind, 8, 64), 5);
  });

  it('is what a runtime on PostgreSQL uses', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    const store = createPostgresStore(pgUrl(), { schema: schemas.next() });
    const rt = await createRuntime({ store, maintenance: false, concurrency: 8, tasks: { t: { run: () => 1 } } });
    try {
      assert.equal(executorInfo(rt).prefetch, 256);
    } finally {
      await rt.close();
    }
  });
});
