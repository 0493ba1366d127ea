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

runStoreContract('memory', async (options) => createMemoryStore(options));
