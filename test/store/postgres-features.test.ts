/**
 * Issue 8 on PostgreSQL with several nodes (store instances) on one schema, claiming and enqueueing at the same
 * time: rate limits and group limits hold across them, a throttle key creates one task, and flow changes reach
 * every listening node. Skipped, with its reason, when TROUPE_TEST_PG_URL is not set.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createTaskId } from '../../src/ids.ts';
import { createPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { ClaimRequest, StoreChange } from '../../src/store/store.ts';
import type { NewTask, TaskRecord } from '../../src/task.ts';
import { PG_SKIP, PG_URL, asyncCommitUrl, trackSchemas } from '../helpers/pg.ts';
import { waitFor } from '../helpers/wait-for.ts';

const schemas = trackSchemas('feat');
const open: PostgresStore[] = [];
after(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await schemas.dropAll();
});

async function nodes(count: number, clock: ManualClock, listen = false): Promise<PostgresStore[]> {
  const schema = schemas.next();
  const out: PostgresStore[] = [];
  for (let i = 0; i < count; i++) {
    const s = createPostgresStore(asyncCommitUrl(PG_URL), { schema, poolSize: 4, listen, clock });
    open.push(s);
    await s.open();
    out.push(s);
  }
  return out;
}

function task(clock: ManualClock, fields: Partial<NewTask> = {}): NewTask {
  const now = clock.now();
  return { id: createTaskId(now), name: 'job', input: null, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now, ...fields };
}

/**
 * Every node claims `rounds` times at once; returns all that was claimed. With `settle`, the nodes then claim one
 * after the other until a claim finds nothing: claims made at once may be held back (another node held a limited
 * name's lock, and the caller is told to try again), so what ends up claimed does not depend on how they
 * interleaved.
 */
async function claimTogether(stores: readonly PostgresStore[], clock: ManualClock, request: Partial<ClaimRequest>, rounds = 3, settle = false): Promise<TaskRecord[]> {
  const all: TaskRecord[] = [];
  const claim = (s: PostgresStore, owner: string) => s.claim({ owner, limit: 10, leaseMs: 30_000, now: clock.now(), ...request });
  for (let r = 0; r < rounds; r++) {
    const results = await Promise.all(stores.flatMap((s, i) => [1, 2].map((k) => claim(s, `node-${i}-${k}`))));
    all.push(...results.flat());
  }
  for (let i = 0; settle; i = (i + 1) % stores.length) {
    const more = await claim(stores[i]!, `node-${i}-late`);
    all.push(...more);
    if (more.length === 0) break;
  }
  return all;
}

describe('PostgreSQL: issue 8 features across nodes', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  it('a rate limit holds across nodes claiming at once, and frees up with its window', async () => {
    const clock = new ManualClock();
    const stores = await nodes(2, clock);
    await stores[0]!.enqueue(Array.from({ length: 20 }, () => task(clock)));
    const rateLimits = { job: { max: 3, perMs: 1000, by: 'name' as const } };
    assert.equal((await claimTogether(stores, clock, { rateLimits })).length, 3);
    await clock.advance(999);
    assert.equal((await claimTogether(stores, clock, { rateLimits })).length, 0);
    await clock.advance(1);
    assert.equal((await claimTogether(stores, clock, { rateLimits })).length, 3);
  });

  it('a group limit holds across nodes claiming at once', async () => {
    const clock = new ManualClock();
    const stores = await nodes(2, clock);
    await stores[1]!.enqueue(['a', 'b', 'c'].flatMap((group) => Array.from({ length: 10 }, () => task(clock, { group }))));
    const claimed = await claimTogether(stores, clock, { groupLimits: { job: 2 } }, 3, true);
    const perGroup = new Map<string, number>();
    for (const t of claimed) perGroup.set(t.group!, (perGroup.get(t.group!) ?? 0) + 1);
    assert.deepEqual([...perGroup].sort(), [['a', 2], ['b', 2], ['c', 2]]);
  });

  it('a throttle key enqueued by several nodes at once creates one task', async () => {
    const clock = new ManualClock();
    const stores = await nodes(3, clock);
    const dedup = { key: 'user-1', mode: 'throttle' as const, windowMs: 60_000 };
    const results = await Promise.all(stores.flatMap((s) => [s.enqueue([task(clock, { dedup })]), s.enqueue([task(clock, { dedup })])]));
    const created = results.flat().filter((r) => r.created);
    assert.equal(created.length, 1);
    assert.ok(results.flat().every((r) => r.id === created[0]!.id));
  });

  it('a debounce key pushed by several nodes at once keeps one waiting task', async () => {
    const clock = new ManualClock();
    const stores = await nodes(3, clock);
    const dedup = { key: 'doc', mode: 'debounce' as const, windowMs: 1000 };
    const results = await Promise.all(stores.map((s, i) => s.enqueue([task(clock, { dedup, input: i })])));
    assert.equal(new Set(results.flat().map((r) => r.id)).size, 1);
    const list = await stores[0]!.list();
    assert.equal(list.tasks.length, 1);
    assert.equal(list.tasks[0]!.state, 'scheduled');
  });

  it("a flow parent released on one node is reported to another node's onChange", async () => {
    const clock = new ManualClock();
    const [a, b] = await nodes(2, clock, true);
    const heard: StoreChange[] = [];
    b!.onChange((c) => heard.push(c));
    const parent = task(clock, { name: 'parent', flow: { pending: 1, policy: 'fail' } });
    const child = task(clock, { name: 'child', parentId: parent.id });
    await a!.enqueue([parent, child]);
    const [running] = await a!.claim({ owner: 'node-a', limit: 10, leaseMs: 30_000, now: clock.now() });
    assert.equal(running?.id, child.id);
    await a!.settle([{ type: 'succeeded', id: child.id, owner: 'node-a', attempt: 1, at: clock.now(), result: 7 }]);
    await waitFor(() => heard.length > 0, { label: 'flow.released heard on the other node' });
    assert.deepEqual(heard, [{ type: 'flow.released', id: parent.id, name: 'parent', at: clock.now() }]);
    const [claimed] = await b!.claim({ owner: 'node-b', limit: 10, leaseMs: 30_000, now: clock.now() });
    assert.deepEqual(claimed?.children, [{ id: child.id, name: 'child', state: 'succeeded', result: 7 }]);
  });
});
