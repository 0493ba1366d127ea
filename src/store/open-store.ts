/**
 * Opens a store from the `store` option: `'memory'`, `'sqlite:./path.db'` (or a bare path ending in .db,
 * .sqlite or .sqlite3), `'postgres://…'`/`'postgresql://…'`, or an object that already implements Store. The
 * PostgreSQL adapter is imported lazily, so an embedded runtime never loads `pg`.
 */
import type { Clock } from '../clock.ts';
import { invalidOption } from '../errors.ts';
import { createMemoryStore } from './memory-store.ts';
import { createSqliteStore } from './sqlite/sqlite-store.ts';
import type { Store, StoreOptions } from './store.ts';

export interface OpenStoreOptions extends StoreOptions {
  clock?: Clock;
  /** SQLite only. @default 'NORMAL' */
  synchronous?: 'NORMAL' | 'FULL';
  /** SQLite only: where WAL checkpoints run. @default 'thread' */
  checkpoints?: 'thread' | 'inline';
  /** PostgreSQL only: the schema holding troupe's tables. @default 'troupe' */
  schema?: string;
}

const EXPECTED = "'memory', 'sqlite:PATH', a path ending in .db, 'postgres://…' or a Store";
const STORE_METHODS = ['open', 'enqueue', 'claim', 'settle', 'get', 'close'] as const;

function isStore(value: unknown): value is Store {
  return typeof value === 'object' && value !== null && STORE_METHODS.every((m) => typeof (value as Record<string, unknown>)[m] === 'function');
}

/** Why: one door from a config value to an opened (and migrated) store, with a clear error for anything else. */
export async function openStore(spec: string | Store, options: OpenStoreOptions = {}): Promise<Store> {
  const store = await createStore(spec, options);
  await store.open();
  return store;
}

async function createStore(spec: string | Store, options: OpenStoreOptions): Promise<Store> {
  if (isStore(spec)) return spec;
  if (typeof spec !== 'string') throw invalidOption('store', EXPECTED, spec);
  const { schema, synchronous, checkpoints, ...common } = options;
  const sqlite = { ...common, ...(synchronous === undefined ? {} : { synchronous }), ...(checkpoints === undefined ? {} : { checkpoints }) };
  if (spec === 'memory') return createMemoryStore(common);
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (path === '') throw invalidOption('store', EXPECTED, spec);
    return createSqliteStore(path, sqlite);
  }
  if (/^postgres(ql)?:\/\//i.test(spec)) {
    // `?schema=name` picks the schema (several runtimes, or tests, can share one database apart).
    let url: URL;
    try {
      url = new URL(spec);
    } catch (error) {
      throw invalidOption('store', EXPECTED, spec);
    }
    const fromUrl = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    const chosen = fromUrl ?? schema;
    if (chosen !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(chosen)) throw invalidOption('store', 'a schema name of lowercase letters, digits and _', chosen);
    const { createPostgresStore } = await import('./postgres/postgres-store.ts');
    return createPostgresStore(url.toString(), chosen === undefined ? common : { ...common, schema: chosen });
  }
  if (/\.(db|sqlite3?)$/i.test(spec) && !spec.includes('://')) {
    return createSqliteStore(spec, sqlite);
  }
  throw invalidOption('store', EXPECTED, spec);
}
