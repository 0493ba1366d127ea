/**
 * The store's sessions start with `plan_cache_mode=force_custom_plan`, also when the URL carries its own
 * `options` (pg would otherwise let the URL's replace ours). Without it, a claim planned while the table looked
 * empty kept seq-scanning the table after it grew (1 s per claim at 13k rows).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { STARTUP_OPTIONS, withStartupOptions } from '../../src/store/postgres/connection-options.ts';
import { PG_SKIP, PG_URL, asyncCommitUrl } from '../helpers/pg.ts';

async function settingsOf(url: string): Promise<{ plan: string; sync: string }> {
  const client = new pg.Client(withStartupOptions(url, STARTUP_OPTIONS));
  await client.connect();
  try {
    const { rows } = await client.query<{ plan: string; sync: string }>(
      "SELECT current_setting('plan_cache_mode') AS plan, current_setting('synchronous_commit') AS sync",
    );
    return rows[0]!;
  } finally {
    await client.end();
  }
}

describe('postgres store: session settings', () => {
  it('merges the options of a URL with its own, and leaves other URLs as they are', () => {
    assert.deepEqual(withStartupOptions('postgres://u@h:5432/db?options=-c%20a%3D1&sslmode=disable', '-c b=2'), {
      connectionString: 'postgres://u@h:5432/db?sslmode=disable',
      options: '-c a=1 -c b=2',
    });
    assert.deepEqual(withStartupOptions('postgres://u@h/db', '-c b=2'), { connectionString: 'postgres://u@h/db', options: '-c b=2' });
    assert.deepEqual(withStartupOptions('host=/var/run/postgresql dbname=db', '-c b=2'), {
      connectionString: 'host=/var/run/postgresql dbname=db',
      options: '-c b=2',
    });
  });

  it('starts sessions with custom plans, keeping the options a URL brings', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    assert.deepEqual(await settingsOf(PG_URL!), { plan: 'force_custom_plan', sync: 'on' });
    assert.deepEqual(await settingsOf(asyncCommitUrl(PG_URL!)), { plan: 'force_custom_plan', sync: 'off' });
  });
});
