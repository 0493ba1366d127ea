import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createTaskId } from '../../src/ids.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { NewTask } from '../../src/task.ts';
import { runStoreContract } from './store.contract.ts';

function task(clock: ManualClock, fields: Partial<NewTask> = {}): NewTask {
  const now = clock.now();
  return { id: createTaskId(now), name: 'job', input: { n: 1 }, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: now, ...fields };
}

describe('memory store (smoke)', () => {
  it('enqueues, claims in fifo order and settles', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ clock });
    await store.open();
    const a = task(clock);
    await clock.advance(1);
    const b = task(clock);
    const res = await store.enqueue([b, a]);
    assert.deepEqual(res.map((r) => r.created), [true, true]);
    const claimed = await store.claim({ owner: 'n1', limit: 10, leaseMs: 1000, now: clock.now() });
    assert.deepEqual(claimed.map((t) => t.id), [a.id, b.id]);
    assert.equal(claimed[0]!.state, 'running');
    assert.equal(claimed[0]!.attempts, 1);
    const applied = await store.settle([
      { type: 'succeeded', id: a.id, owner: 'n1', attempt: 1, at: clock.now(), result: 42 },
      { type: 'succeeded', id: b.id, owner: 'n2', attempt: 1, at: clock.now(), result: 43 },
    ]);
    assert.deepEqual(applied, [true, false]);
    assert.equal((await store.get(a.id))?.result, 42);
    assert.deepEqual((await store.history(a.id)).map((t) => t.to), ['queued', 'running', 'succeeded']);
  });

  // QA: a delayed task cancelled and retried left its old heap item behind with the record's new runAt, so the
  // delayed heap was no longer ordered: a task due in 300 ms waited behind one due in an hour (under `troupe serve`,
  // retries and delayed tasks stopped running while new ones still started).
  it('keeps delayed tasks in time order after a delayed task is cancelled and retried', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ clock });
    const hour = 3_600_000;
    const far = task(clock, { runAt: clock.now() + hour });
    const moved = task(clock, { runAt: clock.now() + hour });
    await store.enqueue([far, moved]);
    assert.equal((await store.cancel(moved.id, clock.now())).cancelled, true);
    assert.equal((await store.retry(moved.id, clock.now()))?.state, 'queued');
    assert.deepEqual((await store.claim({ owner: 'n1', limit: 10, leaseMs: 1000, now: clock.now() })).map((t) => t.id), [moved.id]);
    const soon = task(clock, { runAt: clock.now() + 300 });
    await store.enqueue([soon]);
    assert.equal(await store.nextRunAt(), soon.runAt);
    await clock.advance(300);
    assert.deepEqual((await store.claim({ owner: 'n1', limit: 10, leaseMs: 1000, now: clock.now() })).map((t) => t.id), [soon.id]);
    assert.equal(await store.nextRunAt(), far.runAt);
  });

  it('keeps each owner\'s running tasks right as they end in any order (heartbeats, lease recovery)', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ clock });
    const tasks = Array.from({ length: 9 }, () => task(clock, { maxAttempts: 1 }));
    await store.enqueue(tasks);
    const a = await store.claim({ owner: 'a', limit: 6, leaseMs: 1000, now: clock.now() });
    const b = await store.claim({ owner: 'b', limit: 3, leaseMs: 5000, now: clock.now() });
    const running = { a: a.map((t) => t.id), b: b.map((t) => t.id) };
    // Ends first, last and middle ones, and one given back to the queue and taken again by `b`.
    for (const [owner, id] of [['a', running.a[0]!], ['a', running.a[5]!], ['b', running.b[1]!], ['a', running.a[2]!]] as const) {
      assert.deepEqual(await store.settle([{ type: 'succeeded', id, owner, attempt: 1, at: clock.now(), result: null }]), [true]);
      running[owner] = running[owner].filter((x) => x !== id);
      assert.equal(await store.heartbeat('a', clock.now() + 1000), running.a.length);
      assert.equal(await store.heartbeat('b', clock.now() + 5000), running.b.length);
    }
    const given = running.a[1]!;
    assert.deepEqual(await store.settle([{ type: 'release', id: given, owner: 'a', attempt: 1, at: clock.now(), reason: 'shutdown' }]), [true]);
    running.a = running.a.filter((x) => x !== given);
    assert.deepEqual((await store.claim({ owner: 'b', limit: 1, leaseMs: 5000, now: clock.now() })).map((t) => t.id), [given]);
    running.b.push(given);
    assert.equal(await store.heartbeat('a', clock.now() + 1000), running.a.length);
    assert.equal(await store.heartbeat('b', clock.now() + 5000), running.b.length);
    await clock.advance(2000);
    const expired = await store.recoverExpired(clock.now());
    assert.deepEqual(expired.map((t) => t.id).sort(), [...running.a].sort(), 'exactly the tasks `a` still ran');
    assert.equal(await store.heartbeat('a', clock.now() + 1000), 0);
    assert.equal(await store.heartbeat('b', clock.now() + 5000), running.b.length);
  });

  it('holds a delayed task until its time', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ clock });
    const t = task(clock, { runAt: clock.now() + 1000 });
    assert.equal((await store.enqueue([t]))[0]!.state, 'scheduled');
    assert.equal((await store.claim({ owner: 'n', limit: 1, leaseMs: 10, now: clock.now() })).length, 0);
    assert.equal(await store.nextRunAt(), t.runAt);
    await clock.advance(1000);
    const [claimed] = await store.claim({ owner: 'n', limit: 1, leaseMs: 10, now: clock.now() });
    assert.equal(claimed?.id, t.id);
    assert.deepEqual((await store.history(t.id)).map((h) => h.to), ['scheduled', 'queued', 'running']);
  });
});

describe('memory store retention', () => {
  it('forgets the earliest finished tasks beyond maxFinished, never waiting or running ones', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ maxFinished: 3 });
    const tasks = Array.from({ length: 6 }, (_, i) => task(clock, { key: `k${i}` }));
    await store.enqueue(tasks);
    const claimed = await store.claim({ owner: 'n', limit: 5, leaseMs: 1000, now: clock.now() });
    await store.settle(claimed.slice(0, 4).map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'n', attempt: 1, at: clock.now(), result: t.id })));
    assert.equal(await store.get(tasks[0]!.id), undefined);
    assert.equal((await store.get(tasks[1]!.id))?.state, 'succeeded');
    await store.cancel(tasks[5]!.id, clock.now());
    assert.equal(await store.get(tasks[1]!.id), undefined);
    assert.equal((await store.get(tasks[4]!.id))?.state, 'running');
    const counts = await store.counts(clock.now());
    assert.deepEqual([counts.byState.succeeded, counts.byState.cancelled, counts.byState.running], [2, 1, 1]);
    assert.deepEqual((await store.list()).tasks.map((t) => t.id), [5, 4, 3, 2].map((i) => tasks[i]!.id));
    assert.equal((await store.enqueue([task(clock, { key: 'k0' })]))[0]!.created, true);
    // a retried dead letter leaves the finished set and is not forgotten while it waits
    assert.equal((await store.retry(tasks[5]!.id, clock.now()))?.state, 'queued');
    await store.settle([{ type: 'succeeded', id: tasks[4]!.id, owner: 'n', attempt: 1, at: clock.now(), result: 1 }]);
    assert.equal((await store.get(tasks[5]!.id))?.state, 'queued');
  });

  it("keeps a flow's finished children past maxFinished until their parent ends, then forgets them", async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ maxFinished: 2, clock });
    const parent = task(clock, { name: 'parent', flow: { pending: 4, policy: 'fail' } });
    const children = Array.from({ length: 4 }, (_, i) => task(clock, { name: `child-${i}`, parentId: parent.id }));
    const others = Array.from({ length: 3 }, () => task(clock));
    await store.enqueue([parent, ...children, ...others]);
    const claimed = await store.claim({ owner: 'n', limit: 10, leaseMs: 1000, now: clock.now() });
    assert.equal(claimed.length, 7);
    await store.settle(claimed.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'n', attempt: 1, at: clock.now(), result: t.name })));
    // Seven finished and the limit is two: the three plain tasks go, the four children stay past it.
    for (const o of others.slice(0, 3)) assert.equal(await store.get(o.id), undefined);
    const [p] = await store.claim({ owner: 'n', limit: 1, leaseMs: 1000, now: clock.now() });
    assert.equal(p?.id, parent.id);
    assert.deepEqual(p?.children?.map((c) => c.result), ['child-0', 'child-1', 'child-2', 'child-3'], 'every child\'s outcome reaches the parent');
    await store.settle([{ type: 'succeeded', id: parent.id, owner: 'n', attempt: 1, at: clock.now(), result: 'done' }]);
    // Once the parent has ended, the next finishes forget the children as any finished task.
    await store.enqueue([task(clock), task(clock)]);
    const more = await store.claim({ owner: 'n', limit: 2, leaseMs: 1000, now: clock.now() });
    await store.settle(more.map((t) => ({ type: 'succeeded' as const, id: t.id, owner: 'n', attempt: 1, at: clock.now(), result: 1 })));
    assert.equal((await store.counts(clock.now())).byState.succeeded, 2);
    for (const c of children) assert.equal(await store.get(c.id), undefined);
  });

  it('retention skips a purged task whose id was enqueued again, and keeps the new one', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore({ maxFinished: 1 });
    const finish = async (t: NewTask): Promise<void> => {
      await store.enqueue([t]);
      const [c] = await store.claim({ owner: 'n', limit: 1, leaseMs: 1000, now: clock.now() });
      assert.equal(c?.id, t.id);
      await store.settle([{ type: 'succeeded', id: t.id, owner: 'n', attempt: c!.attempts, at: clock.now(), result: 1 }]);
    };
    const a = task(clock);
    await finish(a);
    await clock.advance(10);
    assert.equal(await store.purge({ finishedBefore: clock.now() }), 1);
    assert.equal((await store.enqueue([{ ...a, createdAt: clock.now(), runAt: clock.now() + 60_000 }]))[0]!.created, true);
    await finish(task(clock));
    await finish(task(clock));
    // Retention passed the purged entry of `a` (the oldest finished) and forgot the next one instead.
    assert.equal((await store.get(a.id))?.state, 'scheduled');
    assert.deepEqual((await store.counts(clock.now())).byState.succeeded, 1);
  });

  it('hands out copies: changing a returned record changes nothing stored', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    const t = task(clock);
    await store.enqueue([t]);
    const got = (await store.get(t.id))!;
    got.state = 'failed';
    got.attempts = 99;
    (await store.history(t.id))[0]!.to = 'failed';
    assert.equal((await store.get(t.id))?.state, 'queued');
    assert.equal((await store.history(t.id))[0]?.to, 'queued');
    assert.throws(() => createMemoryStore({ maxFinished: -1 }), { code: 'TROUPE_ERR_INVALID_OPTION' });
  });
});

runStoreContract('memory', async (options) => createMemoryStore(options));
