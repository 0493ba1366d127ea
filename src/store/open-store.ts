/**
 * Opens a store from the `store` option: `'memory'`, `'sqlite:./path.db'` (or a bare path ending in .db),
 * `'postgres://…[?schema=name]'`, or an object that already implements Store. The PostgreSQL adapter is imported lazily so an
 * embedded runtime never loads `pg`.
 */
import type { Clock } from '../clock.ts';
import { invalidOption } from '../errors.ts';
import { createMemoryStore } from './memory-store.ts';
import { createSqliteStore } from './sqlite/sqlite-store.ts';
import type { Store, StoreOptions } from './store.ts';

export interface OpenStoreOptions extends StoreOptions {
  clock?: Clock;
  synchronous?: 'NORMAL' | 'FULL';
  /** PostgreSQL schema. @default 'troupe' */
  schema?: string;
}

/** Builds the store the spec names and opens it (migrating its schema). */
export async function openStore(spec: string | Store, options: OpenStoreOptions = {}): Promise<Store> {
  let store: Store;
  if (typeof spec === 'object' && spec !== null && typeof spec.claim === 'function') store = spec;
  else if (spec === 'memory') store = createMemoryStore(options);
  else if (typeof spec === 'string' && spec.startsWith('sqlite:')) store = createSqliteStore(spec.slice('sqlite:'.length), options);
  else if (typeof spec === 'string' && /\.(db|sqlite3?)$/i.test(spec) && !spec.includes('://')) store = createSqliteStore(spec, options);
  else if (typeof spec === 'string' && /^postgres(ql)?:\/\//.test(spec)) {
    // `?schema=name` picks the schema (several runtimes, or tests, can share one database apart).
    const url = new URL(spec);
    const schema = url.searchParams.get('schema') ?? options.schema;
    url.searchParams.delete('schema');
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw invalidOption('store', 'a schema name of lowercase letters, digits and _', schema);
    const modulePath = './postgres/postgres-store.ts';
    const mod = (await import(modulePath)) as { createPostgresStore(url: string, o: OpenStoreOptions): Store };
    store = mod.createPostgresStore(url.toString(), { ...options, ...(schema !== undefined ? { schema } : {}) });
  } else throw invalidOption('store', "'memory', 'sqlite:PATH', 'postgres://…' or a Store", spec);
  await store.open();
  return store;
}
