import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { runStoreContract } from './store.contract.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-sqlite-contract-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

runStoreContract('sqlite', async (options) => createSqliteStore(join(root, `store-${++n}.db`), options));
