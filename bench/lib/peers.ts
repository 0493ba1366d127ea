/**
 * Where the peers' servers are, and whether they answer. A peer whose server is unreachable is skipped with a
 * printed line saying why, never silently: `checkPeers()` returns the reasons and the suites put them in the
 * result's `skipped` list.
 *
 * Addresses: `TROUPE_BENCH_PG_URL` (or `TROUPE_TEST_PG_URL`), default postgres://postgres@127.0.0.1:5432/test;
 * `TROUPE_BENCH_REDIS_URL`, default redis://127.0.0.1:6379.
 */
// The clients are imported inside the probes, so a child process that only reads the addresses loads none of them.

export const PG_URL = process.env.TROUPE_BENCH_PG_URL || process.env.TROUPE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TROUPE_BENCH_REDIS_URL || 'redis://127.0.0.1:6379';

export type Availability = { ok: true; version: string } | { ok: false; reason: string };

export interface Peers {
  postgres: Availability;
  redis: Availability;
}

/** Why: a server is probed once per run, with a short timeout, before any suite relies on it. */
export async function checkPostgres(url = PG_URL, timeoutMs = 3000): Promise<Availability> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: 'troupe-bench-probe' });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return { ok: true, version: rows[0]!.server_version };
  } catch (error) {
    return { ok: false, reason: `PostgreSQL at ${redact(url)} unreachable (${(error as Error).message || (error as Error).name})` };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Why: same as `checkPostgres`, for BullMQ's Redis. */
export async function checkRedis(url = REDIS_URL, timeoutMs = 3000): Promise<Availability> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const info = await redis.info('server');
    return { ok: true, version: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown' };
  } catch (error) {
    return { ok: false, reason: `Redis at ${redact(url)} unreachable (${(error as Error).message || (error as Error).name})` };
  } finally {
    redis.disconnect();
  }
}

/** Why: both probes at once; their versions go into the result file. */
export async function checkPeers(): Promise<Peers> {
  const [postgres, redis] = await Promise.all([checkPostgres(), checkRedis()]);
  return { postgres, redis };
}

/** Why: the SQLite library's version is part of what the SQLite rows measured. */
export async function sqliteVersion(): Promise<string> {
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(':memory:');
  try {
    return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  } finally {
    db.close();
  }
}

/** Why: server versions next to the package versions in the result file. */
export async function serverVersions(peers: Peers): Promise<Record<string, string>> {
  return {
    sqlite: await sqliteVersion(),
    postgresql: peers.postgres.ok ? peers.postgres.version : 'unreachable',
    redis: peers.redis.ok ? peers.redis.version : 'unreachable',
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
