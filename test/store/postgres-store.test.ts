/**
 * The Store contract against real PostgreSQL, one fresh schema per test. Skipped, with its reason, when
 * TROUPE_TEST_PG_URL is not set. PostgreSQL-only behaviour (concurrent nodes, migrations, LISTEN/NOTIFY,
 * connection loss) is tested in postgres-*.test.ts.
 */
import { after } from 'node:test';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { PG_SKIP, PG_URL, asyncCommitUrl, trackSchemas } from '../helpers/pg.ts';
import { runStoreContract } from './store.contract.ts';

const schemas = trackSchemas('contract');
after(() => schemas.dropAll());

// The contract checks behaviour, not crash durability: sessions skip the WAL flush wait, which keeps the
// 10 000-claim weighted-random test at a few seconds. LISTEN is on: flow changes are reported through NOTIFY.
const url = PG_URL ? asyncCommitUrl(PG_URL) : '';

runStoreContract(
  'postgres',
  async (options) => createPostgresStore(url, { ...options, schema: schemas.next(), poolSize: 4 }),
  PG_SKIP ? { skip: PG_SKIP } : {},
);
