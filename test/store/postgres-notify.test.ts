/**
 * PostgreSQL signals between nodes and connection loss: NOTIFY wakes a listener on another node, a cancel reaches
 * the node running the task, a killed LISTEN connection is reported and comes back, a query on a killed
 * connection fails with STORE_UNAVAILABLE and the pool recovers, an unreachable server fails `open` clearly.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createTaskId } from '../../src/ids.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { StoreChange } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, terminateSessions, suiteStores, trackSchemas, withAdmin } from '../helpers/pg.ts';
import { waitFor } from '../helpers/wait-for.ts';

const schemas = trackSchemas('notify');
after(() => schemas.dropAll());

function newTask(fields: Partial<NewTask> = {}): NewTask {
  const now = Date.now();
  return { id: createTaskId(now), name: 'job', input: null, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now, ...fields };
}

/** Resolves with the next value a subscription delivers; the timeout is only a safety net. */
function nextEvent<T>(subscribe: (fn: (value: T) => void) => () => void, timeout = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no event within ${timeout} ms`));
    }, timeout);
    const unsubscribe = subscribe((value) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}

describe('postgres store: notifications and connection loss', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const store = suiteStores({ poolSize: 2 });

  it('an enqueue on one node wakes a listener on another', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    const woken = nextEvent<void>((fn) => a.onWake(() => fn()));
    await b.enqueue([newTask()]);
    await woken;
    assert.deepEqual(a.health(), { healthy: true });
  });

  it('a cancel of a running task reaches the node running it, and a queued one sends nothing', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    const queued = newTask();
    const running = newTask();
    await b.enqueue([running]);
    const [claimed] = await a.claim({ owner: 'node-a', limit: 1, leaseMs: 60_000, now: Date.now() });
    assert.equal(claimed?.id, running.id);
    await b.enqueue([queued]);
    const cancelled = nextEvent<string>((fn) => a.onCancel(fn));
    // Notifications arrive in commit order: if the queued task's cancel sent one, it would come first.
    assert.deepEqual(await b.cancel(queued.id, Date.now()), { previous: 'queued', cancelled: true, name: queued.name });
    assert.deepEqual(await b.cancel(running.id, Date.now(), 'by operator'), { previous: 'running', cancelled: true, owner: 'node-a', name: running.name });
    assert.equal(await cancelled, running.id);
  });

  it('a task marked awaited while queued keeps its mark through a claim and a retry, and its end on another node is named on the ended channel', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    // Node B runs a task of its own: A marks queued tasks only while another node runs something.
    const own = newTask();
    await b.enqueue([own]);
    await b.claim({ owner: 'node-b', limit: 1, leaseMs: 60_000, now: Date.now() });
    const t = newTask();
    const enqueued = nextEvent<void>((fn) => b.onWake(() => fn()));
    await b.enqueue([t]);
    await enqueued;
    // Marking a due task wakes the claimers: one that skipped the row while it was being marked looks again.
    const woken = nextEvent<void>((fn) => b.onWake(() => fn()));
    assert.deepEqual(await a.awaitEnd!([t.id], 'node-a'), new Set([t.id]));
    await woken;
    const ended = nextEvent<StoreChange>((fn) => a.onChange((c) => c.type === 'task.ended' && fn(c)));
    let now = Date.now();
    assert.equal((await b.claim({ owner: 'node-b', limit: 1, leaseMs: 60_000, now }))[0]?.id, t.id);
    const error = { name: 'Error', message: 'again' };
    assert.deepEqual(await b.settle([{ type: 'retry', id: t.id, owner: 'node-b', attempt: 1, at: now, runAt: now + 1, error, reason: 'retry' }]), [true]);
    now += 2;
    assert.equal((await b.claim({ owner: 'node-b', limit: 1, leaseMs: 60_000, now }))[0]?.id, t.id);
    assert.deepEqual(await b.settle([{ type: 'succeeded', id: t.id, owner: 'node-b', attempt: 2, at: now, result: 1 }]), [true]);
    assert.deepEqual(await ended, { type: 'task.ended', ids: [t.id] });
  });

  it('a task awaited elsewhere is marked while queued, waiting or running under another owner, never when final or run by the waiting node', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    const now = Date.now();
    const [mine, theirs, queued, later, done] = [newTask(), newTask(), newTask(), newTask({ runAt: now + 60_000 }), newTask()];
    await a.enqueue([mine]);
    await a.claim({ owner: 'node-a', limit: 1, leaseMs: 60_000, now });
    await b.enqueue([theirs]);
    await b.claim({ owner: 'node-b', limit: 1, leaseMs: 60_000, now });
    await b.enqueue([done]);
    await b.cancel(done.id, now);
    await b.enqueue([queued, later]);
    const marked = await a.awaitEnd!([mine.id, theirs.id, queued.id, later.id, done.id], 'node-a');
    assert.deepEqual([...marked].sort(), [theirs.id, queued.id, later.id].sort());
  });

  it('a task not started is marked only while another owner runs something: a node alone marks none of its backlog', async () => {
    const schema = schemas.next();
    const a = store({ schema });
    await a.open();
    const now = Date.now();
    const [mine, queued, later] = [newTask(), newTask(), newTask({ runAt: now + 60_000 })];
    await a.enqueue([mine]);
    await a.claim({ owner: 'node-a', limit: 1, leaseMs: 60_000, now });
    await a.enqueue([queued, later]);
    assert.deepEqual(await a.awaitEnd!([mine.id, queued.id, later.id], 'node-a'), new Set(), 'only node-a runs anything');
    const other = newTask({ name: 'other' });
    await a.enqueue([other]);
    assert.deepEqual((await a.claim({ owner: 'node-b', limit: 1, leaseMs: 60_000, now, names: ['other'] })).map((t) => t.id), [other.id], 'node-b runs a task');
    assert.deepEqual([...(await a.awaitEnd!([mine.id, queued.id, later.id], 'node-a'))].sort(), [queued.id, later.id].sort());
  });

  it('a cancel of a queued task marked awaited is named on the ended channel, an unmarked one on none', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    const [own, plain, marked] = [newTask(), newTask(), newTask()];
    await b.enqueue([own]);
    await b.claim({ owner: 'node-b', limit: 1, leaseMs: 60_000, now: Date.now() });
    await b.enqueue([plain, marked]);
    assert.deepEqual(await a.awaitEnd!([marked.id], 'node-a'), new Set([marked.id]));
    const ended = nextEvent<StoreChange>((fn) => a.onChange((c) => c.type === 'task.ended' && fn(c)));
    let cancels = 0;
    a.onCancel(() => cancels++);
    // Notifications arrive in commit order: if the unmarked task's cancel sent one, it would come first.
    assert.deepEqual(await b.cancel(plain.id, Date.now()), { previous: 'queued', cancelled: true, name: plain.name });
    assert.deepEqual(await b.cancel(marked.id, Date.now()), { previous: 'queued', cancelled: true, name: marked.name });
    assert.deepEqual(await ended, { type: 'task.ended', ids: [marked.id] });
    assert.equal(cancels, 0, 'nothing on the cancel channel: no run to stop');
  });

  it('a task marked awaited that a lease recovery fails is named on the ended channel', async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    const t = newTask({ maxAttempts: 1 });
    await b.enqueue([t]);
    const now = Date.now();
    await b.claim({ owner: 'node-b', limit: 1, leaseMs: 10, now });
    assert.deepEqual(await a.awaitEnd!([t.id], 'node-a'), new Set([t.id]));
    const ended = nextEvent<StoreChange>((fn) => a.onChange((c) => c.type === 'task.ended' && fn(c)));
    // The first lost run adds an attempt (pick.ts decideExpiredLease): the second one fails the task.
    for (let i = 1, at = now + 20; (await b.get(t.id))?.state !== 'failed'; i++, at += 20) {
      assert.ok(i <= 3, 'failed by its lost leases');
      await b.recoverExpired(at);
      if ((await b.get(t.id))?.state === 'queued') await b.claim({ owner: 'node-b', limit: 1, leaseMs: 10, now: at });
    }
    assert.deepEqual(await ended, { type: 'task.ended', ids: [t.id] });
  });

  it("a cancel of a flow parent reaches the node running one of its children, once per running child", async () => {
    const schema = schemas.next();
    const [a, b] = [store({ schema }), store({ schema })];
    await Promise.all([a.open(), b.open()]);
    const parent = newTask({ name: 'parent', flow: { pending: 2, policy: 'fail' } });
    const running = newTask({ name: 'child', parentId: parent.id });
    const queued = newTask({ name: 'child', parentId: parent.id, runAt: Date.now() + 60_000 });
    await b.enqueue([parent, running, queued]);
    const [claimed] = await a.claim({ owner: 'node-a', limit: 5, leaseMs: 60_000, now: Date.now() });
    assert.equal(claimed?.id, running.id);
    const heard: string[] = [];
    const unsubscribe = a.onCancel((id) => heard.push(id));
    const result = await b.cancel(parent.id, Date.now());
    assert.deepEqual(result.children?.map((c) => [c.id, c.previous, c.owner]), [[running.id, 'running', 'node-a'], [queued.id, 'scheduled', undefined]]);
    // A plain task's cancel after it: its notification comes after any the flow's cancel sent (commit order).
    const marker = newTask();
    await b.enqueue([marker]);
    await a.claim({ owner: 'node-a', limit: 1, leaseMs: 60_000, now: Date.now() });
    await b.cancel(marker.id, Date.now());
    await waitFor(() => heard.includes(marker.id), { label: 'the marker cancel heard' });
    unsubscribe();
    assert.deepEqual(heard, [running.id, marker.id]);
  });

  it('reports a killed LISTEN connection, reconnects with backoff and wakes again', async () => {
    const schema = schemas.next();
    const clock = new ManualClock();
    const app = `troupe-t-${randomBytes(4).toString('hex')}`;
    const a = store({ schema, clock, applicationName: app });
    const b = store({ schema, listen: false });
    await Promise.all([a.open(), b.open()]);
    assert.equal(a.health().healthy, true);

    assert.equal(await terminateSessions(`${app}:listen`), 1);
    await waitFor(() => !a.health().healthy, { timeout: 5000, label: 'listener reported down' });
    assert.equal(typeof a.health().lastError, 'string');
    // Queries do not depend on the listener.
    await b.enqueue([newTask()]);
    assert.equal((await a.counts(Date.now())).byState.queued, 1);

    // The reconnect waits on the injected clock; moving it lets the listener come back, which wakes the node
    // (wake-ups sent while it was down are lost, so it must look for work).
    const reconnected = nextEvent<void>((fn) => a.onWake(() => fn()));
    await clock.advance(10_000);
    await reconnected;
    assert.deepEqual(a.health(), { healthy: true });

    const woken = nextEvent<void>((fn) => a.onWake(() => fn()));
    await b.enqueue([newTask()]);
    await woken;
  });

  it('fails a query on a killed connection with TROUPE_ERR_STORE_UNAVAILABLE, then recovers', async () => {
    const schema = schemas.next();
    const app = `troupe-t-${randomBytes(4).toString('hex')}`;
    const a = store({ schema, listen: false, applicationName: app });
    await a.open();
    const t = newTask();
    await a.enqueue([t]);

    await withAdmin(async (admin) => {
      // Hold the row so the store's cancel waits on it, then end the store's session mid-query.
      await admin.query('BEGIN');
      await admin.query(`SELECT id FROM "${schema}".tasks WHERE id = $1 FOR UPDATE`, [t.id]);
      const pending = a.cancel(t.id, Date.now());
      const outcome = pending.then(() => undefined, (error: unknown) => error);
      await waitFor(
        async () =>
          (await admin.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app])).rowCount,
        { timeout: 5000, label: 'cancel waiting on the row lock' },
      );
      assert.ok((await terminateSessions(app)) >= 1);
      const error = await outcome;
      assert.equal((error as { code?: string })?.code, 'TROUPE_ERR_STORE_UNAVAILABLE');
      assert.ok((error as Error).cause, 'the driver error is kept as cause');
      assert.equal(a.health().healthy, false);
      await admin.query('ROLLBACK');
    });

    // The pool dropped the dead connection; the next call opens a new one.
    assert.equal((await a.get(t.id))?.state, 'queued');
    assert.deepEqual(a.health(), { healthy: true });
    assert.deepEqual(await a.cancel(t.id, Date.now()), { previous: 'queued', cancelled: true, name: t.name });
  });

  it('fails open with TROUPE_ERR_STORE_UNAVAILABLE when the server cannot be reached', async (t) => {
    // Not a store of the test database (suiteStores): closed here, and again after the test should an assertion fail.
    const down = createPostgresStore('postgres://postgres@127.0.0.1:1/test', { connectionTimeoutMs: 2000 });
    t.after(() => down.close());
    await assert.rejects(down.open(), { code: 'TROUPE_ERR_STORE_UNAVAILABLE' });
    assert.equal(down.health().healthy, false);
    await down.close();
    await assert.rejects(down.get('0'.repeat(28)), { code: 'TROUPE_ERR_CLOSED' });
  });
});
