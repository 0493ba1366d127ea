/** Contract (issue 8): per-group concurrency, paused groups and rate limits, decided in the claim. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimRequest, Strategy } from '../../../src/store/store.ts';
import { ids, withStore, type MakeStore } from './context.ts';

/** A claim request that records what `onHeldBack` said. */
function heldBackProbe(): { calls: Array<number | undefined>; onHeldBack: NonNullable<ClaimRequest['onHeldBack']> } {
  const calls: Array<number | undefined> = [];
  return { calls, onHeldBack: (retryAt) => void calls.push(retryAt) };
}

export function groupsContract(makeStore: MakeStore): void {
  describe('groups', () => {
    it('round-trips the group and lists by group', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const a = await add({ group: 'tenant-1' });
        await add({ group: 'tenant-2' });
        await add();
        assert.equal((await store.get(a.id))?.group, 'tenant-1');
        assert.deepEqual(ids((await store.list({ group: 'tenant-1' })).tasks), [a.id]);
      }));

    for (const strategy of ['fifo', 'priority', 'weighted-random'] as const satisfies readonly Strategy[]) {
      it(`${strategy}: groupLimits caps running tasks per group of a name, counted over every owner`, () =>
        withStore(makeStore, { strategy }, async ({ store, add, claim, succeed }) => {
          const g1 = [await add({ group: 'g1' }), await add({ group: 'g1' }), await add({ group: 'g1' })];
          const g2 = [await add({ group: 'g2' }), await add({ group: 'g2' })];
          const free = await add();
          const other = await add({ name: 'other', group: 'g1' });
          const probe = heldBackProbe();
          const first = await claim({ groupLimits: { job: 1 }, onHeldBack: probe.onHeldBack });
          assert.deepEqual(new Set(ids(first)), new Set([g1[0]!.id, g2[0]!.id, free.id, other.id]));
          assert.deepEqual(probe.calls, [undefined]);
          // another node sees the same running tasks
          assert.deepEqual(await claim({ owner: 'node-b', groupLimits: { job: 1 } }), []);
          assert.ok(await succeed(first.find((t) => t.id === g1[0]!.id)!));
          assert.deepEqual(ids(await claim({ owner: 'node-b', groupLimits: { job: 1 } })), [g1[1]!.id]);
          // without the limit the rest starts at once
          assert.deepEqual(ids(await claim()), [g1[2]!.id, g2[1]!.id]);
          assert.equal((await store.get(g1[2]!.id))?.state, 'running');
        }));
    }

    it('fifo: a full group does not hold back younger tasks of other groups', () =>
      withStore(makeStore, {}, async ({ add, claim }) => {
        const flood = [];
        for (let i = 0; i < 30; i++) flood.push(await add({ group: 'flood' }));
        const quiet = await add({ group: 'quiet' });
        assert.deepEqual(ids(await claim({ limit: 2, groupLimits: { job: 1 } })), [flood[0]!.id, quiet.id]);
        assert.deepEqual(await claim({ limit: 2, groupLimits: { job: 1 } }), []);
      }));

    it('excludeGroups skips paused groups and keeps their tasks', () =>
      withStore(makeStore, {}, async ({ store, add, claim }) => {
        const paused = await add({ group: 'paused' });
        const other = await add({ group: 'other' });
        const none = await add();
        assert.deepEqual(ids(await claim({ excludeGroups: ['paused'] })), [other.id, none.id]);
        assert.equal((await store.get(paused.id))?.state, 'queued');
        assert.deepEqual(ids(await claim()), [paused.id]);
      }));

    it('keeps honouring names, exclude and perName under group limits', () =>
      withStore(makeStore, {}, async ({ add, claim }) => {
        const a1 = await add({ name: 'a', group: 'g' });
        await add({ name: 'a', group: 'g' });
        const a3 = await add({ name: 'a', group: 'h' });
        const b1 = await add({ name: 'b' });
        await add({ name: 'c' });
        const b2 = await add({ name: 'b' });
        const got = await claim({ names: ['a', 'b'], perName: { b: 1 }, groupLimits: { a: 1 } });
        assert.deepEqual(ids(got), [a1.id, a3.id, b1.id]);
        assert.deepEqual(ids(await claim({ exclude: ['c'], groupLimits: { a: 1 } })), [b2.id]);
      }));
  });

  describe('rate limits', () => {
    it('by name: at most max starts per window, and says when the window frees up', () =>
      withStore(makeStore, {}, async ({ add, claim, clock }) => {
        const tasks = [];
        for (let i = 0; i < 7; i++) tasks.push(await add());
        const rateLimits = { job: { max: 3, perMs: 1000, by: 'name' as const } };
        const t0 = clock.now();
        const probe = heldBackProbe();
        assert.deepEqual(ids(await claim({ rateLimits, onHeldBack: probe.onHeldBack })), ids(tasks.slice(0, 3)));
        assert.deepEqual(probe.calls, [t0 + 1000]);
        await clock.advance(999);
        assert.deepEqual(await claim({ rateLimits, owner: 'node-b' }), []);
        await clock.advance(1);
        assert.deepEqual(ids(await claim({ rateLimits, limit: 2 })), ids(tasks.slice(3, 5)));
        assert.deepEqual(ids(await claim({ rateLimits })), ids(tasks.slice(5, 6)));
      }));

    it('by group: each group of the name has its own window; other names are not limited', () =>
      withStore(makeStore, {}, async ({ add, claim, clock }) => {
        const a1 = await add({ group: 'a' });
        const a2 = await add({ group: 'a' });
        const b1 = await add({ group: 'b' });
        const n1 = await add();
        const n2 = await add();
        const x = await add({ name: 'x', group: 'a' });
        const rateLimits = { job: { max: 1, perMs: 500, by: 'group' as const } };
        const t0 = clock.now();
        const probe = heldBackProbe();
        assert.deepEqual(ids(await claim({ rateLimits, onHeldBack: probe.onHeldBack })), [a1.id, b1.id, n1.id, x.id]);
        assert.deepEqual(probe.calls, [t0 + 500]);
        await clock.advance(500);
        assert.deepEqual(ids(await claim({ rateLimits })), [a2.id, n2.id]);
      }));

    it('counts starts, not running tasks: a finished task still fills its window', () =>
      withStore(makeStore, {}, async ({ add, claim, clock, succeed }) => {
        await add();
        const second = await add();
        const rateLimits = { job: { max: 1, perMs: 1000, by: 'name' as const } };
        const [first] = await claim({ rateLimits });
        assert.ok(await succeed(first!));
        assert.deepEqual(await claim({ rateLimits }), []);
        await clock.advance(1000);
        assert.deepEqual(ids(await claim({ rateLimits })), [second.id]);
      }));

    it('combines with a group limit on the same name', () =>
      withStore(makeStore, {}, async ({ add, claim, clock }) => {
        const a1 = await add({ group: 'a' });
        await add({ group: 'a' });
        const b1 = await add({ group: 'b' });
        await add({ group: 'b' });
        const got = await claim({ groupLimits: { job: 1 }, rateLimits: { job: { max: 10, perMs: 1000, by: 'name' } } });
        assert.deepEqual(ids(got), [a1.id, b1.id]);
        await clock.advance(5000);
        assert.deepEqual(await claim({ groupLimits: { job: 1 } }), []);
      }));
  });
}
