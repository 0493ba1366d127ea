/**
 * PostgreSQL for tests: the URL from `TROUPE_TEST_PG_URL` (CI: postgres://postgres@127.0.0.1:5432/test), a
 * visible skip reason when it is not set, a short unique schema per test, and cleanup that drops every schema a
 * file created. Each test gets its own schema, as pg-boss's suite does, so tests never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import pg from 'pg';
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/postgres-store.ts';

export const PG_URL: string | undefined = process.env.TROUPE_TEST_PG_URL || undefined;

/** The reason to give `describe(…, { skip })` when there is no database. */
export const PG_SKIP: string | undefined = PG_URL ? undefined : 'TROUPE_TEST_PG_URL not set';

/** The test database URL; only call where the suite is not skipped. */
export function pgUrl(): string {
  if (!PG_URL) throw new Error('TROUPE_TEST_PG_URL not set');
  return PG_URL;
}

/**
 * The URL with `synchronous_commit=off` for its sessions: commits stop waiting for the WAL flush (≈0.5 ms each
 * here). For suites that check behaviour, not crash durability, and make thousands of commits.
 */
export function asyncCommitUrl(url: string = pgUrl()): string {
  const u = new URL(url);
  u.searchParams.set('options', '-c synchronous_commit=off');
  return u.toString();
}

/** A schema name nobody else uses: prefix, pid and random bits (lower case, well under 51 characters). */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${process.pid.toString(36)}_${randomBytes(5).toString('hex')}`;
}

/** Runs `fn` on a short-lived connection of its own (not a store's), for setup, inspection and fault injection. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgUrl(), application_name: 'troupe-test-admin' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Hands out unique schema names and drops them all at the end (call `dropAll` from `after`). */
export function trackSchemas(prefix = 't'): { next(): string; dropAll(): Promise<void> } {
  const created: string[] = [];
  return {
    next() {
      const name = uniqueSchema(prefix);
      created.push(name);
      return name;
    },
    async dropAll() {
      if (created.length === 0 || !PG_URL) return;
      const names = created.splice(0);
      await withAdmin(async (client) => {
        for (const name of names) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      });
    },
  };
}

/**
 * Stores of the test database for one suite, closed after it (call inside its `describe`): each call opens one with
 * `defaults` and then `options`.
 */
export function suiteStores(defaults: PostgresStoreOptions = {}): (options?: PostgresStoreOptions) => PostgresStore {
  const open: PostgresStore[] = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close()));
  });
  return (options = {}) => {
    const s = createPostgresStore(pgUrl(), { ...defaults, ...options });
    open.push(s);
    return s;
  };
}

/** A runtime's `store` option: the test database with a fresh schema from `schemas` (`?schema=` on the URL). */
export function schemaStoreUrl(schemas: { next(): string }): string {
  const u = new URL(pgUrl());
  u.searchParams.set('schema', schemas.next());
  return u.toString();
}

/** Ends the server sessions whose application_name is `name` (as a crash or a DBA would); returns how many. */
export async function terminateSessions(name: string): Promise<number> {
  return withAdmin(async (client) => {
    const { rows } = await client.query<{ ok: boolean }>(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    return rows.filter((r) => r.ok).length;
  });
}

/** Every node of a JSON query plan (`EXPLAIN (FORMAT JSON)`), depth first, as "<Node Type> on <Index Name>". */
export function nodeTypes(plan: Record<string, unknown>): string[] {
  const own = [`${String(plan['Node Type'])}${plan['Index Name'] ? ` on ${String(plan['Index Name'])}` : ''}`];
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? [];
  return own.concat(children.flatMap(nodeTypes));
}
