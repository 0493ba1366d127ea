import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { PG_SKIP, PG_URL, trackSchemas } from '../helpers/pg.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-open-store-'));
const schemas = trackSchemas('open');
after(async () => {
  rmSync(root, { recursive: true, force: true });
  await schemas.dropAll();
});

describe('openStore', () => {
  it('opens the memory store with the given strategy', async () => {
    const store = await openStore('memory', { strategy: 'lifo' });
    assert.equal(store.kind, 'memory');
    assert.equal(store.strategy, 'lifo');
    assert.deepEqual(await store.list(), { tasks: [] });
    await store.close();
  });

  it('opens SQLite from sqlite:PATH and from a bare .db path, creating the file', async () => {
    for (const spec of [`sqlite:${join(root, 'a', 'one.db')}`, join(root, 'b', 'two.db'), join(root, 'c.sqlite3')]) {
      const store = await openStore(spec, { synchronous: 'FULL', strategy: 'priority' });
      assert.equal(store.kind, 'sqlite');
      assert.equal(store.strategy, 'priority');
      await store.close();
    }
    assert.ok(existsSync(join(root, 'a', 'one.db')));
    assert.ok(existsSync(join(root, 'b', 'two.db')));
  });

  it('returns a Store object as it is, after opening it', async () => {
    const mine = createMemoryStore();
    let opened = 0;
    const spy: Store = Object.assign(Object.create(mine) as Store, { open: async () => void opened++ });
    assert.equal(await openStore(spy), spy);
    assert.equal(opened, 1);
    await mine.close();
  });

  it('refuses anything else with TROUPE_ERR_INVALID_OPTION', async () => {
    for (const spec of ['', 'redis://localhost', 'sqlite:', 'mysql://x/y', './data.json', 42, null, {}, { claim() {} }]) {
      await assert.rejects(openStore(spec as string), { code: 'TROUPE_ERR_INVALID_OPTION' }, String(spec));
    }
  });

  it('passes open failures through with their code', async () => {
    await assert.rejects(openStore(`sqlite:${join(root, 'a')}`), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
  });

  it('loads the PostgreSQL store for postgres:// URLs', { skip: PG_SKIP ?? false }, async () => {
    for (const url of [PG_URL!, PG_URL!.replace(/^postgres(ql)?:/, 'postgresql:')]) {
      const store = await openStore(url, { schema: schemas.next() });
      assert.equal(store.kind, 'postgres');
      await store.close();
    }
  });
});

describe('openStore: PostgreSQL schema from the URL', () => {
  const url = process.env.TROUPE_TEST_PG_URL;
  it('`?schema=name` selects the schema; a bad name is refused', { skip: url ? false : 'TROUPE_TEST_PG_URL not set' }, async () => {
    const { openStore } = await import('../../src/store/open-store.ts');
    const pg = (await import('pg')).default;
    const schema = `os_${process.pid}_${Date.now().toString(36)}`;
    const sep = url!.includes('?') ? '&' : '?';
    const store = await openStore(`${url}${sep}schema=${schema}`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      assert.equal(found.rowCount, 1);
    } finally {
      await store.close();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
    await assert.rejects(openStore(`${url}${sep}schema=Bad-Name`), (e: unknown) => (e as { code?: string }).code === 'TROUPE_ERR_INVALID_OPTION');
  });
});
