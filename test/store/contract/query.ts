/** Contract: list paging and filters, counts, nextRunAt, purge, schedules, meta and close. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleRecord } from '../../../src/store/store.ts';
import { TASK_STATES } from '../../../src/task.ts';
import { OWNER, ids, withStore, type MakeStore } from './context.ts';

export function queryContract(makeStore: MakeStore): void {
  describe('list', () => {
    it('pages newest first by cursor with no duplicates or gaps', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const added: string[] = [];
        for (let i = 0; i < 23; i++) added.push((await add({ name: i % 2 ? 'odd' : 'even' })).id);
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.list({ limit: 5, ...(cursor ? { cursor } : {}) });
          assert.ok(page.tasks.length <= 5);
          seen.push(...ids(page.tasks));
          cursor = page.nextCursor;
          pages++;
        } while (cursor);
        assert.equal(pages, 5);
        assert.deepEqual(seen, [...added].reverse());
        const exact = await store.list({ limit: 23 });
        assert.equal(exact.tasks.length, 23);
        assert.equal(exact.nextCursor, undefined, 'no cursor when nothing is left');
        assert.equal((await store.list()).tasks.length, 23);
        assert.equal((await store.list({ limit: 5000 })).tasks.length, 23);
      }));

    it('filters by state, name, scheduleId and since', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const a = await add({ name: 'a' });
        const b = await add({ name: 'b', scheduleId: 'nightly' });
        const since = clock.now();
        const c = await add({ name: 'a', scheduleId: 'nightly' });
        const d = await add({ name: 'b' });
        await claim({ names: ['b'], limit: 1 });
        await settleOne({ type: 'failed', id: b.id, owner: OWNER, attempt: 1, at: clock.now(), error: { name: 'Error', message: 'x' } });
        assert.deepEqual(ids((await store.list({ state: 'failed' })).tasks), [b.id]);
        assert.deepEqual(ids((await store.list({ state: ['failed', 'queued'] })).tasks), [d.id, c.id, b.id, a.id]);
        assert.deepEqual(ids((await store.list({ state: [] })).tasks), []);
        assert.deepEqual(ids((await store.list({ name: 'a' })).tasks), [c.id, a.id]);
        assert.deepEqual(ids((await store.list({ scheduleId: 'nightly' })).tasks), [c.id, b.id]);
        assert.deepEqual(ids((await store.list({ since })).tasks), [d.id, c.id]);
        assert.deepEqual(ids((await store.list({ name: 'b', state: 'queued' })).tasks), [d.id]);
        const p1 = await store.list({ name: 'a', limit: 1 });
        assert.deepEqual(ids(p1.tasks), [c.id]);
        const p2 = await store.list({ name: 'a', limit: 1, cursor: p1.nextCursor! });
        assert.deepEqual(ids(p2.tasks), [a.id]);
        assert.equal(p2.nextCursor, undefined);
      }));
  });

  describe('states', () => {
    it('reads the state of each existing task of a list of ids in one call', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const a = await add({ name: 'a' });
        const b = await add({ name: 'b' });
        await claim({ names: ['b'], limit: 1 });
        await settleOne({ type: 'succeeded', id: b.id, owner: OWNER, attempt: 1, at: clock.now(), result: 1 });
        const c = await add({ name: 'c' });
        await claim({ names: ['c'], limit: 1 });
        assert.ok(store.states, 'the built-in stores have states()');
        const found = await store.states!([a.id, b.id, c.id, 'no-such-task']);
        assert.deepEqual(Object.fromEntries(found), { [a.id]: 'queued', [b.id]: 'succeeded', [c.id]: 'running' });
        assert.equal((await store.states!([])).size, 0);
      }));
  });

  describe('counts and nextRunAt', () => {
    it('counts tasks by state and finds the oldest due one', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, succeed }) => {
        const empty = await store.counts(clock.now());
        assert.deepEqual(Object.keys(empty.byState).sort(), [...TASK_STATES].sort());
        assert.ok(Object.values(empty.byState).every((n) => n === 0));
        assert.equal(empty.oldestDueAt, undefined);
        const first = await add();
        await add();
        const late = await add({ runAt: clock.now() + 1000 });
        await add();
        const [c] = await claim({ limit: 1 });
        assert.equal(c?.id, first.id);
        await succeed(c!);
        await claim({ limit: 1 });
        const counts = await store.counts(clock.now());
        assert.deepEqual(
          { ...counts.byState },
          { scheduled: 1, queued: 1, running: 1, retrying: 0, succeeded: 1, failed: 0, cancelled: 0, timed_out: 0 },
        );
        assert.equal(counts.oldestDueAt, first.createdAt + 3);
        // once due, the delayed task is due too, but has waited since its runAt, not since it was created
        const atLate = await store.counts(late.runAt);
        assert.equal(atLate.oldestDueAt, first.createdAt + 3);
        assert.deepEqual([empty.due, counts.due, atLate.due], [0, 1, 2]);
      }));

    for (const strategy of ['fifo', 'lifo', 'priority', 'weighted-random'] as const) {
      it(`${strategy}: due scheduled and retrying tasks count as due from their runAt; a waiting flow parent never does`, () =>
        withStore(makeStore, { strategy }, async ({ store, add, task, claim, clock, settleOne }) => {
          const t0 = clock.now();
          const failing = await add();
          const [c] = await claim({ limit: 1 });
          assert.equal(c?.id, failing.id);
          assert.ok(await settleOne({ type: 'retry', id: c!.id, owner: OWNER, attempt: 1, at: clock.now(), runAt: t0 + 300, error: { name: 'E', message: 'e' } }));
          const delayed = await add({ runAt: t0 + 500 });
          const parent = task({ name: 'parent', flow: { pending: 1, policy: 'fail' } });
          await store.enqueue([parent, task({ name: 'child', parentId: parent.id, runAt: t0 + 100_000 })]);
          /** The oldest due time first, then the number due, then the states (scheduled, retrying, queued) behind it. */
          const expectAt = async (now: number, oldestDueAt: number | undefined, due: number, states: [number, number, number]) => {
            const counts = await store.counts(now);
            const where = `at t0 + ${now - t0}`;
            assert.equal(counts.oldestDueAt, oldestDueAt, where);
            assert.equal(counts.due, due, where);
            assert.deepEqual([counts.byState.scheduled, counts.byState.retrying, counts.byState.queued], states, where);
          };
          await expectAt(t0 + 299, undefined, 0, [3, 1, 0]);
          // the retrying task became due at the end of its backoff, not when it was created
          await expectAt(t0 + 300, t0 + 300, 1, [3, 1, 0]);
          await expectAt(t0 + 500, t0 + 300, 2, [3, 1, 0]);
          await clock.advance(1000);
          const queued = await add();
          await expectAt(clock.now(), t0 + 300, 3, [3, 1, 1]);
          // the child is due once its time comes; its parent, waiting for it, never is
          await expectAt(t0 + 100_000, t0 + 300, 4, [3, 1, 1]);
          assert.equal((await store.claim({ owner: OWNER, limit: 10, leaseMs: 30_000, now: clock.now() })).length, 3);
          await expectAt(clock.now(), undefined, 0, [2, 0, 0]);
          assert.equal((await store.get(queued.id))?.state, 'running');
          assert.equal((await store.get(delayed.id))?.state, 'running');
        }));
    }

    it('a dead letter put back counts as due from its retry, not from its creation', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const dead = await add();
        const [c] = await claim({ limit: 1 });
        assert.ok(await settleOne({ type: 'failed', id: c!.id, owner: OWNER, attempt: 1, at: clock.now(), error: { name: 'E', message: 'e' } }));
        await clock.advance(60_000);
        const waiting = await add();
        await clock.advance(1000);
        assert.ok(await store.retry(dead.id, clock.now()));
        const counts = await store.counts(clock.now());
        assert.equal(counts.oldestDueAt, waiting.runAt, 'the task enqueued before the retry has waited longest');
        assert.equal(counts.due, 2);
      }));

    it('nextRunAt is the earliest runAt of scheduled or retrying tasks', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        assert.equal(await store.nextRunAt(), undefined);
        await add();
        assert.equal(await store.nextRunAt(), undefined);
        const later = await add({ runAt: clock.now() + 5000 });
        const sooner = await add({ runAt: clock.now() + 3000 });
        assert.equal(await store.nextRunAt(), sooner.runAt);
        const [r] = await claim({ limit: 1 });
        await settleOne({ type: 'retry', id: r!.id, owner: OWNER, attempt: 1, at: clock.now(), runAt: clock.now() + 100, error: { name: 'E', message: 'e' } });
        assert.equal(await store.nextRunAt(), clock.now() + 100);
        await clock.advance(3000);
        await claim({ limit: 2 });
        assert.equal(await store.nextRunAt(), later.runAt);
      }));

    it('nextRunAt(after) leaves out the waiting tasks due at or before `after` (due ones a claim left, e.g. of a paused name)', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const held = await add({ name: 'held', runAt: clock.now() + 1000 });
        const next = await add({ runAt: clock.now() + 3000 });
        await add({ runAt: clock.now() + 5000 });
        assert.equal(await store.nextRunAt(clock.now()), held.runAt);
        await clock.advance(1000);
        // a claim at the held task's time that leaves it (its name is excluded, as a paused one is)
        assert.deepEqual(await claim({ limit: 5, exclude: ['held'] }), []);
        assert.equal(await store.nextRunAt(), held.runAt, 'without `after`: every waiting task');
        assert.equal(await store.nextRunAt(clock.now()), next.runAt, 'the held task is due: the next one after now');
        assert.equal(await store.nextRunAt(held.runAt - 1), held.runAt, '`after` is exclusive');
      }));
  });

  describe('purge', () => {
    it('deletes final tasks finished before the threshold, with their history and output', () =>
      withStore(makeStore, {}, async ({ store, add, task, claim, clock, settleOne, succeed }) => {
        const old = await add({ key: 'old' });
        const failed = await add();
        const [c1, c2] = await claim({ limit: 2 });
        await succeed(c1!);
        await settleOne({ type: 'failed', id: failed.id, owner: OWNER, attempt: c2!.attempts, at: clock.now(), error: { name: 'E', message: 'e' } });
        await store.settle([{ type: 'output', id: old.id, lines: [{ seq: 1, stream: 'stdout', text: 'x', at: 0 }] }]);
        const threshold = clock.now() + 1;
        await clock.advance(10);
        const recent = await add();
        const [c3] = await claim();
        await succeed(c3!);
        const waiting = await add();

        assert.equal(await store.purge({ finishedBefore: threshold, states: ['failed', 'queued'] }), 1);
        assert.equal(await store.get(failed.id), undefined);
        assert.equal(await store.purge({ finishedBefore: threshold }), 1);
        assert.equal(await store.get(old.id), undefined);
        assert.deepEqual(await store.history(old.id), []);
        assert.deepEqual(await store.output(old.id), []);
        assert.ok(await store.get(recent.id));
        assert.ok(await store.get(waiting.id));
        assert.equal(await store.purge({ finishedBefore: clock.now() + 10 ** 9 }), 1);
        assert.equal((await store.get(waiting.id))?.state, 'queued', 'a task that is not final is never purged');
        const again = await store.enqueue([task({ key: 'old' })]);
        assert.equal(again[0]!.created, true, 'a purged key may be used again');
        assert.equal((await store.counts(clock.now())).byState.succeeded, 0);
      }));
  });

  describe('schedules', () => {
    const nightly: ScheduleRecord = {
      id: 'nightly',
      task: 'report',
      cron: '0 3 * * *',
      timezone: 'Europe/Prague',
      input: { date: 'today' },
      overlap: 'skip',
      paused: false,
      createdAt: 1000,
    };
    const often: ScheduleRecord = { id: 'often', task: 'ping', everyMs: 60_000, input: null, overlap: 'allow', paused: true, lastSlot: 500, createdAt: 2000 };

    it('saves, reads, lists, updates and deletes schedules', () =>
      withStore(makeStore, {}, async ({ store }) => {
        await store.saveSchedule(often);
        await store.saveSchedule(nightly);
        assert.deepEqual(await store.getSchedule('nightly'), nightly);
        assert.deepEqual(await store.getSchedule('often'), often);
        assert.deepEqual(await store.listSchedules(), [nightly, often]);
        await store.saveSchedule({ ...nightly, cron: '0 4 * * *', paused: true });
        assert.deepEqual(await store.getSchedule('nightly'), { ...nightly, cron: '0 4 * * *', paused: true });
        assert.equal(await store.deleteSchedule('nightly'), true);
        assert.equal(await store.deleteSchedule('nightly'), false);
        assert.equal(await store.getSchedule('nightly'), undefined);
        assert.deepEqual(await store.listSchedules(), [often]);
      }));

    it('markScheduleSlot is a compare-and-set on the newest slot', () =>
      withStore(makeStore, {}, async ({ store }) => {
        await store.saveSchedule(nightly);
        assert.equal(await store.markScheduleSlot('nightly', 100), true);
        assert.equal(await store.markScheduleSlot('nightly', 100), false, 'a slot fires once');
        assert.equal(await store.markScheduleSlot('nightly', 99), false);
        assert.equal(await store.markScheduleSlot('nightly', 200), true);
        assert.equal((await store.getSchedule('nightly'))?.lastSlot, 200);
        assert.equal(await store.markScheduleSlot('missing', 1), false);
        const both = await Promise.all([store.markScheduleSlot('nightly', 300), store.markScheduleSlot('nightly', 300)]);
        assert.deepEqual(both.sort(), [false, true]);
        // saving the definition again (a restart reading its config) never moves the slot back
        await store.saveSchedule({ ...nightly });
        assert.equal((await store.getSchedule('nightly'))?.lastSlot, 300);
      }));
  });

  describe('meta', () => {
    it('gets, sets, overwrites and deletes values', () =>
      withStore(makeStore, {}, async ({ store }) => {
        assert.equal(await store.getMeta('paused'), undefined);
        await store.setMeta('paused', '["a"]');
        assert.equal(await store.getMeta('paused'), '["a"]');
        await store.setMeta('paused', '');
        assert.equal(await store.getMeta('paused'), '');
        await store.setMeta('paused', undefined);
        assert.equal(await store.getMeta('paused'), undefined);
      }));
  });

  describe('close', () => {
    it('is idempotent and later calls fail with TROUPE_ERR_CLOSED', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const t = await add();
        await store.close();
        await store.close();
        await assert.rejects(store.get(t.id), { code: 'TROUPE_ERR_CLOSED' });
        await assert.rejects(store.enqueue([]), { code: 'TROUPE_ERR_CLOSED' });
      }));
  });
}
