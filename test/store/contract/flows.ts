/** Contract (issue 8): flows — a parent waits for its children, then sees their outcomes; failure policies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SerializedError } from '../../../src/errors.ts';
import type { StoreChange } from '../../../src/store/store.ts';
import { FLOW_WAITING_RUN_AT, type FlowPolicy, type NewTask, type TaskRecord } from '../../../src/task.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { OWNER, ids, withStore, type ContractContext, type MakeStore } from './context.ts';

const boom: SerializedError = { name: 'Error', message: 'boom' };

/** A parent with `n` children, as a batch (parent first). */
function flowBatch(ctx: ContractContext, n: number, policy: FlowPolicy, parent: Partial<NewTask> = {}): { parent: NewTask; children: NewTask[] } {
  const p = ctx.task({ name: 'parent', flow: { pending: n, policy }, ...parent });
  const children = Array.from({ length: n }, (_, i) => ctx.task({ name: `child-${i}`, input: i, parentId: p.id }));
  return { parent: p, children };
}

function byId(tasks: readonly TaskRecord[], id: string): TaskRecord {
  const t = tasks.find((x) => x.id === id);
  assert.ok(t, `task ${id} not claimed`);
  return t;
}

export function flowsContract(makeStore: MakeStore): void {
  describe('flows', () => {
    it('the parent waits for its children, becomes due with the last one, and is claimed with their results', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim, succeed } = ctx;
        const changes: StoreChange[] = [];
        store.onChange?.((c) => changes.push(c));
        const { parent, children } = flowBatch(ctx, 2, 'fail');
        const res = await store.enqueue([parent, ...children]);
        assert.deepEqual(res.map((r) => [r.created, r.state]), [[true, 'scheduled'], [true, 'queued'], [true, 'queued']]);
        const p0 = await store.get(parent.id);
        assert.deepEqual([p0?.runAt, p0?.flow], [FLOW_WAITING_RUN_AT, { pending: 2, policy: 'fail' }]);
        assert.equal((await store.get(children[0]!.id))?.parentId, parent.id);
        assert.equal(await store.nextRunAt(), undefined);
        assert.deepEqual(ids((await store.list({ parentId: parent.id })).tasks), [children[1]!.id, children[0]!.id]);

        const running = await claim();
        assert.deepEqual(ids(running), ids(children));
        await clock.advance(10);
        assert.ok(await succeed(byId(running, children[1]!.id), 'second'));
        assert.deepEqual((await store.get(parent.id))?.flow, { pending: 1, policy: 'fail' });
        assert.deepEqual(await claim(), []);
        await clock.advance(10);
        const at = clock.now();
        assert.ok(await succeed(byId(running, children[0]!.id), 'first'));
        const p1 = await store.get(parent.id);
        assert.deepEqual([p1?.state, p1?.runAt, p1?.flow?.pending], ['queued', at, 0]);
        assert.deepEqual((await store.history(parent.id)).at(-1), { taskId: parent.id, from: 'scheduled', to: 'queued', at, attempt: 0, reason: 'children done' });
        // PostgreSQL reports flow changes through NOTIFY, after the commit
        await waitFor(() => changes.length > 0, { label: 'flow.released reported' });
        assert.deepEqual(changes, [{ type: 'flow.released', id: parent.id, name: 'parent', at }]);

        const [claimed] = await claim();
        assert.equal(claimed?.id, parent.id);
        assert.deepEqual(claimed?.children, [
          { id: children[0]!.id, name: 'child-0', state: 'succeeded', result: 'first' },
          { id: children[1]!.id, name: 'child-1', state: 'succeeded', result: 'second' },
        ]);
        assert.equal((await store.counts(clock.now())).byState.running, 1);
      }));

    it("policy 'fail': a failed child fails the parent at once; later children only count it down", () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim, settleOne, succeed } = ctx;
        const changes: StoreChange[] = [];
        store.onChange?.((c) => changes.push(c));
        const { parent, children } = flowBatch(ctx, 2, 'fail');
        await store.enqueue([parent, ...children]);
        const running = await claim();
        const at = clock.now();
        assert.ok(await settleOne({ type: 'failed', id: children[0]!.id, owner: OWNER, attempt: 1, at, error: boom }));
        const p = await store.get(parent.id);
        assert.equal(p?.state, 'failed');
        assert.equal(p?.finishedAt, at);
        assert.equal(p?.error?.code, 'TROUPE_ERR_TASK_FAILED');
        assert.deepEqual(p?.error?.details, { child: children[0]!.id, state: 'failed' });
        assert.equal((await store.history(parent.id)).at(-1)?.reason, 'child failed');
        await waitFor(() => changes.length > 0, { label: 'flow.failed reported' });
        assert.deepEqual(changes.map((c) => [c.type, 'id' in c ? c.id : undefined]), [['flow.failed', parent.id]]);
        assert.deepEqual(changes[0]!.type === 'flow.failed' && changes[0].error, p?.error);
        assert.deepEqual((await store.get(parent.id))?.flow, { pending: 1, policy: 'fail' });
        assert.ok(await succeed(byId(running, children[1]!.id)));
        const after = await store.get(parent.id);
        assert.deepEqual([after?.state, after?.flow], ['failed', { pending: 0, policy: 'fail' }], 'still failed; the count stays true');
        assert.deepEqual(await claim(), []);
        assert.equal((await store.counts(clock.now())).byState.failed, 2);
      }));

    it("policy 'continue' shows failed children; 'ignore' leaves them out", () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim, settleOne, succeed } = ctx;
        const flows = { continue: flowBatch(ctx, 2, 'continue'), ignore: flowBatch(ctx, 2, 'ignore') };
        await store.enqueue([flows.continue.parent, ...flows.continue.children, flows.ignore.parent, ...flows.ignore.children]);
        const running = await claim();
        assert.equal(running.length, 4);
        const at = clock.now();
        for (const f of Object.values(flows)) {
          assert.ok(await settleOne({ type: 'timed_out', id: f.children[0]!.id, owner: OWNER, attempt: 1, at, error: boom }));
          assert.equal((await store.get(f.parent.id))?.state, 'scheduled');
          assert.ok(await succeed(byId(running, f.children[1]!.id), 'ok'));
        }
        const parents = await claim();
        assert.deepEqual(byId(parents, flows.continue.parent.id).children, [
          { id: flows.continue.children[0]!.id, name: 'child-0', state: 'timed_out', error: boom },
          { id: flows.continue.children[1]!.id, name: 'child-1', state: 'succeeded', result: 'ok' },
        ]);
        assert.deepEqual(byId(parents, flows.ignore.parent.id).children, [
          { id: flows.ignore.children[1]!.id, name: 'child-1', state: 'succeeded', result: 'ok' },
        ]);
      }));

    it('a cancelled child and a child whose lease expired with no attempts left count as failed', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim } = ctx;
        const a = flowBatch(ctx, 2, 'continue');
        const b = flowBatch(ctx, 1, 'fail');
        b.children[0]!.maxAttempts = 1;
        await store.enqueue([a.parent, ...a.children, b.parent, ...b.children]);
        assert.equal((await store.cancel(a.children[0]!.id, clock.now(), 'by user')).cancelled, true);
        assert.deepEqual((await store.get(a.parent.id))?.flow, { pending: 1, policy: 'continue' });
        await claim({ leaseMs: 100 });
        assert.equal((await store.cancel(a.children[1]!.id, clock.now())).cancelled, true);
        assert.equal((await store.get(a.parent.id))?.state, 'queued');
        // The first lost run adds an attempt; the second, with none left, fails the child.
        await clock.advance(101);
        await store.recoverExpired(clock.now());
        assert.equal((await store.get(b.children[0]!.id))?.state, 'queued');
        await claim({ leaseMs: 100 });
        await clock.advance(101);
        await store.recoverExpired(clock.now());
        assert.equal((await store.get(b.children[0]!.id))?.state, 'failed');
        assert.deepEqual((await store.get(b.parent.id))?.error?.details, { child: b.children[0]!.id, state: 'failed' });
      }));

    it('nested flows cascade: a parent failed by its child fails its own parent in the same call', () =>
      withStore(makeStore, {}, async ({ store, task, clock, claim, settleOne }) => {
        const root = task({ name: 'root', flow: { pending: 2, policy: 'fail' } });
        const mid = task({ name: 'mid', parentId: root.id, flow: { pending: 1, policy: 'fail' } });
        const leaf = task({ name: 'leaf', parentId: mid.id });
        const sibling = task({ name: 'sibling', parentId: root.id });
        await store.enqueue([root, mid, leaf, sibling]);
        assert.equal((await store.get(mid.id))?.state, 'scheduled');
        const running = await claim();
        assert.deepEqual(ids(running), [leaf.id, sibling.id]);
        assert.ok(await settleOne({ type: 'failed', id: leaf.id, owner: OWNER, attempt: 1, at: clock.now(), error: boom }));
        assert.equal((await store.get(mid.id))?.state, 'failed');
        const r = await store.get(root.id);
        assert.equal(r?.state, 'failed');
        assert.deepEqual(r?.error?.details, { child: mid.id, state: 'failed' });
      }));

    it('cancelling a parent cancels its descendants that are not final, parents first; no parent counts them', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, task, clock, claim, succeed } = ctx;
        const changes: StoreChange[] = [];
        store.onChange?.((c) => changes.push(c));
        const root = task({ name: 'root', flow: { pending: 3, policy: 'continue' } });
        const running = task({ name: 'running', parentId: root.id });
        const done = task({ name: 'done', parentId: root.id });
        const mid = task({ name: 'mid', parentId: root.id, flow: { pending: 1, policy: 'continue' } });
        const later = task({ name: 'later', parentId: mid.id, runAt: clock.now() + 60_000 });
        await store.enqueue([root, running, done, mid, later]);
        const claimed = await claim();
        assert.deepEqual(ids(claimed).sort(), [running.id, done.id].sort());
        assert.ok(await succeed(byId(claimed, done.id), 'kept'));
        await clock.advance(5);
        const at = clock.now();
        const result = await store.cancel(root.id, at, 'by user');
        assert.deepEqual(result, {
          previous: 'scheduled', cancelled: true, name: root.name,
          children: [
            { id: running.id, name: 'running', previous: 'running', owner: OWNER },
            { id: mid.id, name: 'mid', previous: 'scheduled' },
            { id: later.id, name: 'later', previous: 'scheduled' },
          ],
        });
        const reason = `flow ${root.id} cancelled`;
        for (const t of [running, mid, later]) {
          const rec = await store.get(t.id);
          assert.deepEqual([rec?.state, rec?.finishedAt], ['cancelled', at], t.name);
          assert.match(rec?.error?.message ?? '', new RegExp(reason), t.name);
          assert.deepEqual((await store.history(t.id)).at(-1)?.reason, reason, t.name);
        }
        assert.equal((await store.get(root.id))?.error?.message.includes('by user'), true);
        assert.equal((await store.get(done.id))?.state, 'succeeded', 'a final child is left as it was');
        assert.deepEqual((await store.get(root.id))?.flow, { pending: 0, policy: 'continue' }, 'the cancelled parents count their children down');
        assert.deepEqual((await store.get(mid.id))?.flow, { pending: 0, policy: 'continue' });
        assert.equal(await succeed(byId(claimed, running.id)), false, "the cancelled child's late result is refused");
        await clock.advance(120_000);
        assert.deepEqual(await claim(), []);
        // A change made after the cancel, reported after any the cancel made (PostgreSQL's come through NOTIFY).
        const marker = flowBatch(ctx, 1, 'fail');
        await store.enqueue([marker.parent, ...marker.children]);
        const [child] = await claim();
        assert.ok(await succeed(child!));
        await waitFor(() => changes.length > 0, { label: 'the marker flow released' });
        assert.deepEqual(changes.map((c) => [c.type, 'id' in c ? c.id : undefined]), [['flow.released', marker.parent.id]], 'no parent released or failed by the cancel');
      }));

    it('cancelling a parent that is already final still cancels its children that run on', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim, settleOne } = ctx;
        const { parent, children } = flowBatch(ctx, 2, 'fail');
        await store.enqueue([parent, ...children]);
        await claim();
        assert.ok(await settleOne({ type: 'failed', id: children[0]!.id, owner: OWNER, attempt: 1, at: clock.now(), error: boom }));
        assert.equal((await store.get(parent.id))?.state, 'failed');
        const result = await store.cancel(parent.id, clock.now());
        assert.deepEqual(result, { previous: 'failed', cancelled: false, name: parent.name, children: [{ id: children[1]!.id, name: 'child-1', previous: 'running', owner: OWNER }] });
        assert.equal((await store.get(children[1]!.id))?.state, 'cancelled');
        assert.deepEqual([(await store.get(parent.id))?.state, (await store.get(parent.id))?.flow?.pending], ['failed', 0]);
        assert.deepEqual(await store.cancel(parent.id, clock.now()), { previous: 'failed', cancelled: false, name: parent.name }, 'nothing left to cancel');
      }));

    it('purge keeps the finished children of a parent that has not ended, and takes them once it has', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim, succeed } = ctx;
        const { parent, children } = flowBatch(ctx, 2, 'fail');
        children[1]!.runAt = clock.now() + 60_000;
        const plain = ctx.task({ name: 'plain' });
        await store.enqueue([parent, ...children, plain]);
        const claimed = await claim();
        assert.deepEqual(ids(claimed).sort(), [children[0]!.id, plain.id].sort());
        for (const t of claimed) assert.ok(await succeed(t, t.name));
        await clock.advance(10);
        assert.equal(await store.purge({ finishedBefore: clock.now() }), 1, 'the plain task only');
        assert.equal(await store.get(plain.id), undefined);
        assert.equal((await store.get(children[0]!.id))?.result, 'child-0');
        await clock.advance(60_000);
        const [late] = await claim();
        assert.ok(await succeed(late!, 'late'));
        const [p] = await claim();
        assert.deepEqual(p?.children?.map((c) => c.result), ['child-0', 'late'], 'the parent sees the purged-around child');
        assert.ok(await succeed(p!));
        await clock.advance(10);
        assert.equal(await store.purge({ finishedBefore: clock.now() }), 3, 'the parent and both children');
      }));

    it('a child retried by hand while its parent waits is waited for again', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store, clock, claim, succeed } = ctx;
        const { parent, children } = flowBatch(ctx, 2, 'continue');
        await store.enqueue([parent, ...children]);
        assert.equal((await store.cancel(children[1]!.id, clock.now())).cancelled, true);
        assert.equal((await store.get(parent.id))?.flow?.pending, 1);
        assert.equal((await store.retry(children[1]!.id, clock.now()))?.state, 'queued');
        assert.deepEqual((await store.get(parent.id))?.flow, { pending: 2, policy: 'continue' }, 'pending again');
        const running = await claim();
        assert.deepEqual(ids(running).sort(), ids(children).sort());
        assert.ok(await succeed(byId(running, children[0]!.id), 'a'));
        assert.equal((await store.get(parent.id))?.state, 'scheduled', 'still waiting for the retried child');
        assert.ok(await succeed(byId(running, children[1]!.id), 'b'));
        const [p] = await claim();
        assert.equal(p?.id, parent.id);
        assert.deepEqual(p?.children?.map((c) => [c.state, c.result]), [['succeeded', 'a'], ['succeeded', 'b']]);
      }));

    it('a parent whose key matched an existing task creates none of its children', () =>
      withStore(makeStore, {}, async (ctx) => {
        const { store } = ctx;
        const first = flowBatch(ctx, 2, 'fail', { key: 'order-42' });
        await store.enqueue([first.parent, ...first.children]);
        const again = flowBatch(ctx, 2, 'fail', { key: 'order-42' });
        const res = await store.enqueue([again.parent, ...again.children, ctx.task({ name: 'unrelated' })]);
        const same = { id: first.parent.id, created: false, state: 'scheduled' };
        assert.deepEqual(res.slice(0, 3), [same, same, same]);
        assert.equal(res[3]?.created, true);
        for (const c of again.children) assert.equal(await store.get(c.id), undefined);
        assert.equal((await store.list({ parentId: first.parent.id })).tasks.length, 2);
      }));
  });
}
