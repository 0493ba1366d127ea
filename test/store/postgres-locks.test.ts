/**
 * PostgreSQL row locks: a heartbeat never closes a deadlock with a writer that holds some of its owner's running
 * rows (the tracker's settle, a cancel, another node), and still extends every lease it was asked to; a statement
 * that PostgreSQL picks as a deadlock's victim is run again instead of failing its caller.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, PG_URL, trackSchemas, withAdmin } from '../helpers/pg.ts';
import { waitFor } from '../helpers/wait-for.ts';

const schemas = trackSchemas('locks');
after(() => schemas.dropAll());

function newTask(i: number, now: number): NewTask {
  return { id: createTaskId(now), name: 'noop', input: { i }, priority: 0, weight: 1, maxAttempts: 1, createdAt: now, runAt: now };
}

/** True once a statement on `schema` waits for a lock (`Lock` wait event) that another session holds. */
async function someoneWaitsForALock(admin: pg.Client, schema: string): Promise<boolean> {
  const { rows } = await admin.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
    [`"${schema}"`],
  );
  return Number(rows[0]!.n) > 0;
}

describe('postgres store: row locks', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const open: PostgresStore[] = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close()));
  });

  async function runningTasks(count: number): Promise<{ s: PostgresStore; schema: string; ids: string[]; now: number }> {
    const schema = schemas.next();
    const s = createPostgresStore(PG_URL!, { schema, listen: false, poolSize: 2 });
    open.push(s);
    await s.open();
    const now = Date.now();
    const tasks = Array.from({ length: count }, (_, i) => newTask(i, now));
    await s.enqueue(tasks);
    const claimed = await s.claim({ owner: 'o', limit: count, leaseMs: 1000, now, names: ['noop'] });
    assert.equal(claimed.length, count);
    return { s, schema, ids: tasks.map((t) => t.id), now };
  }

  it('a heartbeat that meets a locked row extends the others at once, waits for that one alone, and closes no deadlock', async () => {
    const { s, schema, ids, now } = await runningTasks(6);
    const last = ids.at(-1)!;
    const leaseUntil = now + 60_000;
    await withAdmin(async (blocker) => {
      await withAdmin(async (watcher) => {
        // A writer (a settle in flight, say) holds the last row.
        await blocker.query('BEGIN');
        await blocker.query(`UPDATE "${schema}".tasks SET progress = '1'::jsonb WHERE id = $1`, [last]);
        let settled = false;
        const beat = s.heartbeat('o', leaseUntil).finally(() => {
          settled = true;
        });
        await waitFor(async () => settled || (await someoneWaitsForALock(watcher, schema)), { label: 'the heartbeat waits for the locked row' });
        assert.equal(settled, false, 'the heartbeat waits for the row a writer holds');
        // The writer now wants the other rows too. A heartbeat holding them while it waits would make PostgreSQL
        // abort one side ("deadlock detected") after deadlock_timeout; here they are already free.
        const others = await blocker.query(`UPDATE "${schema}".tasks SET progress = '2'::jsonb WHERE id = ANY($1::text[]) AND id <> $2`, [ids, last]);
        assert.equal(others.rowCount, ids.length - 1);
        const early = await watcher.query<{ id: string }>(`SELECT id FROM "${schema}".tasks WHERE lease_until = $1`, [leaseUntil]);
        assert.equal(early.rows.length, ids.length - 1, 'every row but the locked one was extended before the writer ended');
        await blocker.query('COMMIT');
        assert.equal(await beat, ids.length);
        const leases = await watcher.query<{ lease_until: string }>(`SELECT lease_until FROM "${schema}".tasks`);
        assert.deepEqual(leases.rows.map((r) => Number(r.lease_until)), ids.map(() => leaseUntil));
      });
    });
  });

  it('a heartbeat that meets no locked row takes one statement', async () => {
    const { s, schema, ids, now } = await runningTasks(3);
    const texts: string[] = [];
    const query = pg.Client.prototype.query;
    // A spy on the driver: counts the statements the store sends on this schema, and sends them on.
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as string | { text?: string };
      const text = typeof config === 'string' ? config : config?.text;
      if (typeof text === 'string' && text.includes(`"${schema}"`)) texts.push(text);
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    let extended: number;
    try {
      extended = await s.heartbeat('o', now + 60_000);
    } finally {
      pg.Client.prototype.query = query;
    }
    assert.equal(extended, ids.length);
    assert.equal(texts.length, 1, `one statement, not ${texts.length}`);
  });

  it('a heartbeat never shortens a lease, and does not count a row that left running while it waited', async () => {
    const { s, schema, ids, now } = await runningTasks(3);
    const [first, second] = ids;
    await withAdmin(async (admin) => {
      await admin.query(`UPDATE "${schema}".tasks SET lease_until = $2 WHERE id = $1`, [first, now + 90_000]);
      await admin.query('BEGIN');
      await admin.query(`UPDATE "${schema}".tasks SET state = 'succeeded', owner = NULL, lease_until = NULL WHERE id = $1`, [second]);
      const beat = s.heartbeat('o', now + 60_000);
      await withAdmin(async (watcher) => waitFor(() => someoneWaitsForALock(watcher, schema), { label: 'the heartbeat waits for the settled row' }));
      await admin.query('COMMIT');
      assert.equal(await beat, 2);
      const { rows } = await admin.query<{ id: string; lease_until: string | null }>(`SELECT id, lease_until FROM "${schema}".tasks ORDER BY id`);
      const byId = new Map(rows.map((r) => [r.id, r.lease_until === null ? null : Number(r.lease_until)]));
      assert.equal(byId.get(first), now + 90_000);
      assert.equal(byId.get(second), null);
      assert.equal(byId.get(ids[2]!), now + 60_000);
    });
  });

  it('an operation PostgreSQL aborts to break a deadlock runs again instead of failing its caller', async () => {
    // The store's sessions look for deadlocks after 50 ms, the blocker's after a minute: the store's is the victim.
    const url = new URL(PG_URL!);
    url.searchParams.set('options', '-c deadlock_timeout=50ms');
    const schema = schemas.next();
    const s = createPostgresStore(url.toString(), { schema, listen: false, poolSize: 2 });
    open.push(s);
    await s.open();
    const now = Date.now();
    const tasks = [newTask(0, now), newTask(1, now)];
    await s.enqueue(tasks);
    assert.equal((await s.claim({ owner: 'o', limit: 2, leaseMs: 60_000, now, names: ['noop'] })).length, 2);
    // The settle takes its rows in id order (a primary-key scan of the sorted ids): the first, then the last.
    const [first, last] = tasks.map((t) => t.id).sort();
    const deadlocks = async (admin: pg.Client): Promise<number> =>
      Number((await admin.query<{ n: string }>('SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]!.n);
    await withAdmin(async (watcher) => {
      const before = await deadlocks(watcher);
      await withAdmin(async (blocker) => {
        await blocker.query(`SET deadlock_timeout = '60s'`);
        await blocker.query('BEGIN');
        await blocker.query(`UPDATE "${schema}".tasks SET progress = '1'::jsonb WHERE id = $1`, [last]);
        const settled = s.settle(tasks.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'o', attempt: 1, at: now, result: t.input })));
        await waitFor(() => someoneWaitsForALock(watcher, schema), { label: 'the settle holds the first row and waits for the last' });
        // Closes the cycle; PostgreSQL aborts the settle, which lets this through, and the settle runs again.
        await blocker.query(`UPDATE "${schema}".tasks SET progress = '2'::jsonb WHERE id = $1`, [first]);
        await blocker.query('COMMIT');
        assert.deepEqual(await settled, [true, true]);
      });
      await waitFor(async () => (await deadlocks(watcher)) > before, { label: 'PostgreSQL counted the deadlock', timeout: 5000 });
    });
    assert.deepEqual((await s.history(first!)).map((t) => t.to), ['queued', 'running', 'succeeded']);
    assert.equal((await s.get(last!))?.state, 'succeeded');
  });

  it('the ids form of the heartbeat takes the same care', async () => {
    const { s, schema, ids, now } = await runningTasks(4);
    await withAdmin(async (blocker) => {
      await blocker.query('BEGIN');
      await blocker.query(`UPDATE "${schema}".tasks SET progress = '1'::jsonb WHERE id = $1`, [ids[2]]);
      const beat = s.heartbeat('o', now + 60_000, [ids[0]!, ids[1]!, ids[2]!]);
      await withAdmin(async (watcher) => waitFor(() => someoneWaitsForALock(watcher, schema), { label: 'the heartbeat waits for the locked row' }));
      await blocker.query(`UPDATE "${schema}".tasks SET progress = '2'::jsonb WHERE id = ANY($1::text[])`, [ids.slice(0, 2)]);
      await blocker.query('COMMIT');
      assert.equal(await beat, 3);
      const { rows } = await blocker.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".tasks WHERE lease_until = $1`, [now + 60_000]);
      assert.equal(Number(rows[0]!.n), 3);
    });
  });
});
