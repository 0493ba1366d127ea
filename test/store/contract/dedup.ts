/** Contract (issue 8): dedup modes of enqueue, `throttle` and `debounce`, scoped to the task name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoreChange } from '../../../src/store/store.ts';
import { ids, withStore, type MakeStore } from './context.ts';

export function dedupContract(makeStore: MakeStore): void {
  describe('dedup', () => {
    it('throttle: ignores an enqueue of the same name and key within the window, whatever the state', () =>
      withStore(makeStore, {}, async ({ store, task, clock, claim, succeed }) => {
        const dedup = { key: 'user-7', mode: 'throttle' as const, windowMs: 1000 };
        const first = task({ dedup, input: 1 });
        const t0 = clock.now();
        assert.deepEqual(await store.enqueue([first]), [{ id: first.id, created: true, state: 'queued' }]);
        assert.equal((await store.get(first.id))?.dedupKey, 'user-7');
        await clock.advance(400);
        assert.deepEqual(await store.enqueue([task({ dedup, input: 2 })]), [{ id: first.id, created: false, state: 'queued' }]);
        const [running] = await claim();
        assert.ok(await succeed(running!));
        await clock.advanceTo(t0 + 999);
        assert.deepEqual(await store.enqueue([task({ dedup })]), [{ id: first.id, created: false, state: 'succeeded' }]);
        // another name with the same key is another stream
        const other = task({ name: 'other', dedup });
        assert.deepEqual(await store.enqueue([other]), [{ id: other.id, created: true, state: 'queued' }]);
        await clock.advanceTo(t0 + 1000);
        const later = task({ dedup, input: 3 });
        assert.deepEqual(await store.enqueue([later]), [{ id: later.id, created: true, state: 'queued' }]);
        assert.deepEqual((await store.get(first.id))?.input, 1);
      }));

    it('debounce: a newer enqueue replaces the input of the waiting task and pushes it back', () =>
      withStore(makeStore, {}, async ({ store, task, clock, claim }) => {
        const changes: StoreChange[] = [];
        store.onChange?.((c) => changes.push(c));
        const dedup = { key: 'doc-1', mode: 'debounce' as const, windowMs: 1000 };
        const t0 = clock.now();
        const first = task({ dedup, input: { v: 1 } });
        assert.deepEqual(await store.enqueue([first]), [{ id: first.id, created: true, state: 'scheduled' }]);
        assert.equal((await store.get(first.id))?.runAt, t0 + 1000);
        await clock.advance(600);
        assert.deepEqual(await store.enqueue([task({ dedup, input: { v: 2 } })]), [{ id: first.id, created: false, state: 'scheduled' }]);
        const rec = await store.get(first.id);
        assert.deepEqual([rec?.input, rec?.runAt, rec?.state], [{ v: 2 }, t0 + 1600, 'scheduled']);
        assert.deepEqual(changes, [{ type: 'debounced', id: first.id, name: 'job', at: t0 + 600, runAt: t0 + 1600 }]);
        assert.deepEqual((await store.history(first.id)).map((h) => [h.from, h.to, h.reason]), [
          [null, 'scheduled', undefined],
          ['scheduled', 'scheduled', 'debounced'],
        ]);
        assert.equal(await store.nextRunAt(), t0 + 1600);
        assert.equal((await store.counts(clock.now())).byState.scheduled, 1);
        await clock.advanceTo(t0 + 1599);
        assert.deepEqual(await claim(), []);
        await clock.advanceTo(t0 + 1600);
        const [started] = await claim();
        assert.deepEqual([started?.id, started?.input], [first.id, { v: 2 }]);
        // once it started, the next enqueue makes a new task a window later
        const next = task({ dedup, input: { v: 3 } });
        assert.deepEqual(await store.enqueue([next]), [{ id: next.id, created: true, state: 'scheduled' }]);
        assert.equal((await store.get(next.id))?.runAt, t0 + 2600);
      }));

    it('debounce: pushes back a released (queued) task too, and applies within one batch', () =>
      withStore(makeStore, {}, async ({ store, task, clock, claim }) => {
        const dedup = { key: 'k', mode: 'debounce' as const, windowMs: 50 };
        const plain = task({ dedup });
        await store.enqueue([plain]);
        await clock.advance(50);
        const [c] = await claim();
        await store.settle([{ type: 'release', id: c!.id, owner: c!.owner!, attempt: 1, at: clock.now(), reason: 'shutdown' }]);
        assert.deepEqual([(await store.get(plain.id))?.state, (await store.get(plain.id))?.attempts], ['queued', 0]);
        const batch = [task({ dedup, input: 'x' }), task({ dedup: { ...dedup, windowMs: 200 }, input: 'y' })];
        assert.deepEqual(await store.enqueue(batch), [
          { id: plain.id, created: false, state: 'scheduled' },
          { id: plain.id, created: false, state: 'scheduled' },
        ]);
        const rec = await store.get(plain.id);
        assert.deepEqual([rec?.state, rec?.input, rec?.runAt], ['scheduled', 'y', clock.now() + 200]);
        assert.deepEqual(ids((await store.list()).tasks), [plain.id]);
        assert.deepEqual(await claim(), []);
        await clock.advance(200);
        assert.deepEqual(ids(await claim()), [plain.id]);
      }));

    it('debounce: pushing a waiting task far back leaves the other delayed tasks due at their time', () =>
      withStore(makeStore, {}, async ({ store, add, clock, claim }) => {
        // The memory store's delayed heap read the pushed-back task's new runAt through its old, stale item, so
        // its order broke and the tasks below that item were hidden behind a later one (here for 5 minutes).
        const t0 = clock.now();
        const dedup = { key: 'd', mode: 'debounce' as const, windowMs: 200 };
        await add({ runAt: t0 + 600_000, input: 'L' });
        const a = await add({ runAt: t0 + 100, input: 'A' });
        await add({ dedup, input: 'D' });
        await add({ runAt: t0 + 300_000, input: 'B' });
        const c1 = await add({ runAt: t0 + 300, input: 'C1' });
        const c2 = await add({ runAt: t0 + 300, input: 'C2' });
        await add({ runAt: t0 + 480_000, input: 'F1' });
        await add({ runAt: t0 + 480_000, input: 'F2' });
        await add({ dedup: { ...dedup, windowMs: 3_600_000 }, input: 'D2' });
        await clock.advanceTo(t0 + 150);
        assert.deepEqual(ids(await claim()), [a.id]);
        assert.equal(await store.nextRunAt(), t0 + 300);
        await clock.advanceTo(t0 + 300);
        assert.deepEqual(ids(await claim()), [c1.id, c2.id]);
        assert.equal(await store.nextRunAt(), t0 + 300_000);
      }));
  });
}
