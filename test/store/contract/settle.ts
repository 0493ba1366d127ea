/** Contract: settle outcomes and their guards, retries and releases, cancel, retry of dead letters, history, output. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SerializedError } from '../../../src/errors.ts';
import type { OutputLine } from '../../../src/task.ts';
import { ids, OWNER, withStore, type MakeStore } from './context.ts';

const boom: SerializedError = { name: 'Error', message: 'boom', code: 'E_BOOM', details: { exitCode: 3 } };

export function settleContract(makeStore: MakeStore): void {
  describe('settle', () => {
    it('records each outcome with its fields', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const [a, b, c] = [await add(), await add(), await add()];
        await claim();
        const at = clock.now();
        assert.ok(await settleOne({ type: 'succeeded', id: a.id, owner: OWNER, attempt: 1, at, result: { digest: 'abc', list: [1] } }));
        assert.ok(await settleOne({ type: 'failed', id: b.id, owner: OWNER, attempt: 1, at, error: boom }));
        assert.ok(await settleOne({ type: 'timed_out', id: c.id, owner: OWNER, attempt: 1, at, error: { name: 'TroupeError', message: 't', code: 'TROUPE_ERR_TIMEOUT' } }));
        const ra = await store.get(a.id);
        assert.deepEqual([ra?.state, ra?.result, ra?.finishedAt, ra?.leaseUntil, ra?.error], ['succeeded', { digest: 'abc', list: [1] }, at, undefined, undefined]);
        const rb = await store.get(b.id);
        assert.deepEqual([rb?.state, rb?.error, rb?.finishedAt], ['failed', boom, at]);
        assert.equal((await store.get(c.id))?.state, 'timed_out');
        assert.equal((await store.get(c.id))?.error?.code, 'TROUPE_ERR_TIMEOUT');
        assert.deepEqual((await store.history(b.id)).at(-1), { taskId: b.id, from: 'running', to: 'failed', at, attempt: 1, error: boom });
      }));

    it('refuses a late result after cancel, a wrong owner and a wrong attempt', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const a = await add({ maxAttempts: 5 });
        const b = await add({ maxAttempts: 5 });
        await claim({ leaseMs: 100 });
        const at = clock.now();
        assert.equal((await store.cancel(a.id, at, 'by user')).cancelled, true);
        assert.equal(await settleOne({ type: 'succeeded', id: a.id, owner: OWNER, attempt: 1, at, result: 1 }), false);
        assert.equal((await store.get(a.id))?.state, 'cancelled');
        assert.equal((await store.get(a.id))?.result, undefined);

        assert.equal(await settleOne({ type: 'succeeded', id: b.id, owner: 'someone-else', attempt: 1, at, result: 1 }), false);
        // the lease runs out and another node takes the task over: the first node's result must not land
        await clock.advance(101);
        await store.recoverExpired(clock.now());
        const [taken] = await claim({ owner: 'node-b' });
        assert.equal(taken?.attempts, 2);
        assert.equal(await settleOne({ type: 'succeeded', id: b.id, owner: OWNER, attempt: 1, at, result: 1 }), false);
        assert.equal(await settleOne({ type: 'succeeded', id: b.id, owner: 'node-b', attempt: 1, at, result: 1 }), false);
        assert.equal(await settleOne({ type: 'succeeded', id: b.id, owner: 'node-b', attempt: 2, at, result: 2 }), true);
        assert.equal(await settleOne({ type: 'failed', id: b.id, owner: 'node-b', attempt: 2, at, error: boom }), false);
        assert.equal((await store.get(b.id))?.result, 2);
        assert.equal(await settleOne({ type: 'succeeded', id: '0'.repeat(28), owner: OWNER, attempt: 1, at, result: 1 }), false);
      }));

    it('applies many ops in one call and says which applied', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const [a, b, c] = [await add(), await add(), await add()];
        await claim();
        const at = clock.now();
        const applied = await store.settle([
          { type: 'progress', id: a.id, at, progress: { fraction: 0.5, done: 5, total: 10 } },
          { type: 'output', id: a.id, lines: [{ seq: 1, stream: 'stdout', text: 'hello', at }] },
          { type: 'succeeded', id: a.id, owner: OWNER, attempt: 1, at, result: 'A' },
          { type: 'succeeded', id: a.id, owner: OWNER, attempt: 1, at, result: 'again' },
          { type: 'failed', id: b.id, owner: OWNER, attempt: 1, at, error: boom },
          { type: 'progress', id: b.id, at, progress: { fraction: 1 } },
          { type: 'retry', id: c.id, owner: OWNER, attempt: 1, at, runAt: at + 100, error: boom, reason: 'retry in 100 ms' },
        ]);
        assert.deepEqual(applied, [true, true, true, false, true, false, true]);
        const ra = await store.get(a.id);
        assert.deepEqual([ra?.state, ra?.result, ra?.progress], ['succeeded', 'A', { fraction: 0.5, done: 5, total: 10 }]);
        assert.deepEqual(await store.output(a.id), [{ seq: 1, stream: 'stdout', text: 'hello', at }]);
        assert.equal((await store.get(b.id))?.progress, undefined);
        assert.equal((await store.get(c.id))?.state, 'retrying');
        assert.deepEqual(await store.settle([]), []);
      }));

    it('a run of successes in one call: each guarded on its own, a repeated task applied once, in order', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const tasks = [];
        for (let i = 0; i < 70; i++) tasks.push(await add());
        const claimed = await claim({ limit: 100 });
        assert.equal(claimed.length, 70);
        const at = clock.now();
        const ops = tasks.map((t, i) => ({ type: 'succeeded' as const, id: t.id, owner: OWNER, attempt: 1, at, result: { i } as { i: number | string } }));
        ops[3] = { ...ops[3]!, owner: 'someone-else' };
        ops[5] = { ...ops[5]!, attempt: 2 };
        // the same task again in the run: the first one wins, the repeat sees a finished task
        ops.splice(8, 0, { ...ops[7]!, result: { i: 'again' } });
        const applied = await store.settle(ops);
        assert.equal(applied.length, 71);
        assert.deepEqual(
          applied.map((ok, i) => (ok ? null : i)).filter((i) => i !== null),
          [3, 5, 8],
        );
        assert.deepEqual((await store.get(tasks[7]!.id))?.result, { i: 7 });
        assert.equal((await store.get(tasks[3]!.id))?.state, 'running');
        assert.equal((await store.get(tasks[5]!.id))?.state, 'running');
        const last = await store.get(tasks[69]!.id);
        assert.deepEqual([last?.state, last?.result, last?.finishedAt, last?.leaseUntil], ['succeeded', { i: 69 }, at, undefined]);
        assert.deepEqual((await store.history(tasks[69]!.id)).at(-1), { taskId: tasks[69]!.id, from: 'running', to: 'succeeded', at, attempt: 1 });
        const counts = await store.counts(at);
        assert.equal(counts.byState.succeeded, 68);
        assert.equal(counts.byState.running, 2);
      }));

    it('a retry waits for its backoff, then is claimable again with the next attempt', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const t = await add();
        await claim();
        const at = clock.now();
        assert.ok(await settleOne({ type: 'retry', id: t.id, owner: OWNER, attempt: 1, at, runAt: at + 2000, error: boom, reason: 'retry in 2000 ms' }));
        const r = await store.get(t.id);
        assert.deepEqual([r?.state, r?.runAt, r?.error, r?.owner, r?.leaseUntil, r?.attempts], ['retrying', at + 2000, boom, undefined, undefined, 1]);
        assert.equal(await store.nextRunAt(), at + 2000);
        await clock.advance(1999);
        assert.deepEqual(await claim(), []);
        await clock.advance(1);
        const [again] = await claim({ owner: 'node-b' });
        assert.equal(again?.id, t.id);
        assert.equal(again?.attempts, 2);
        const h = await store.history(t.id);
        assert.deepEqual(h.slice(2).map((x) => [x.from, x.to, x.attempt]), [
          ['running', 'retrying', 1],
          ['retrying', 'queued', 1],
          ['queued', 'running', 2],
        ]);
        assert.equal(h[2]!.reason, 'retry in 2000 ms');
        assert.deepEqual(h[2]!.error, boom);
      }));

    it('a release gives the task back without counting the attempt', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const t = await add();
        await add();
        const [c] = await claim({ limit: 1 });
        assert.ok(await settleOne({ type: 'release', id: t.id, owner: OWNER, attempt: c!.attempts, at: clock.now(), reason: 'shutdown' }));
        const r = await store.get(t.id);
        assert.deepEqual([r?.state, r?.attempts, r?.owner, r?.leaseUntil], ['queued', 0, undefined, undefined]);
        assert.equal((await store.history(t.id)).at(-1)?.reason, 'shutdown');
        const [again] = await claim({ limit: 1 });
        assert.equal(again?.id, t.id, 'a released task keeps its place in line');
        assert.equal(again?.attempts, 1);
      }));

    it('a release with its own run_at still ahead puts the task back `scheduled`, due then, and no claim takes it before', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const t = await add();
        const [c] = await claim({ limit: 1 });
        const runAt = clock.now() + 20;
        assert.ok(await settleOne({ type: 'release', id: t.id, owner: OWNER, attempt: c!.attempts, at: clock.now(), reason: 'shutdown', runAt }));
        const r = await store.get(t.id);
        assert.deepEqual([r?.state, r?.runAt, r?.attempts, r?.owner, r?.leaseUntil], ['scheduled', runAt, 0, undefined, undefined]);
        assert.deepEqual((await store.history(t.id)).at(-1), { taskId: t.id, from: 'running', to: 'scheduled', at: clock.now(), attempt: 1, reason: 'shutdown' });
        assert.equal(await store.nextRunAt(), runAt, 'a node arms its wake for it');
        assert.deepEqual(await claim(), [], 'not due before its time');
        await clock.advance(20);
        const [again] = await claim();
        assert.deepEqual([again?.id, again?.attempts], [t.id, 1]);
        assert.deepEqual((await store.history(t.id)).slice(-2).map((h) => [h.from, h.to, h.reason]), [['scheduled', 'queued', 'due'], ['queued', 'running', undefined]]);
      }));
  });

  describe('cancel', () => {
    it('cancels a queued task, which is then never claimed', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const t = await add();
        const delayed = await add({ runAt: clock.now() + 10 });
        assert.deepEqual(await store.cancel(t.id, clock.now(), 'not needed'), { previous: 'queued', cancelled: true, name: t.name });
        assert.deepEqual(await store.cancel(delayed.id, clock.now()), { previous: 'scheduled', cancelled: true, name: delayed.name });
        const r = await store.get(t.id);
        assert.deepEqual([r?.state, r?.finishedAt, r?.error?.code], ['cancelled', clock.now(), 'TROUPE_ERR_CANCELLED']);
        assert.deepEqual((await store.history(t.id)).at(-1), { taskId: t.id, from: 'queued', to: 'cancelled', at: clock.now(), attempt: 0, reason: 'not needed' });
        await clock.advance(100);
        assert.deepEqual(await claim(), []);
        assert.equal(await store.nextRunAt(), undefined);
      }));

    it('cancels a running task and names its owner', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const t = await add();
        await claim({ owner: 'node-z' });
        assert.deepEqual(await store.cancel(t.id, clock.now()), { previous: 'running', cancelled: true, owner: 'node-z', name: t.name });
        assert.equal((await store.get(t.id))?.leaseUntil, undefined);
        assert.equal(await store.heartbeat('node-z', clock.now() + 1000), 0);
        assert.deepEqual(await store.recoverExpired(clock.now() + 10 ** 9), []);
      }));

    it('leaves a final task as it is, and reports a missing one', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, succeed }) => {
        const t = await add();
        const [c] = await claim();
        await succeed(c!);
        const before = await store.get(t.id);
        assert.deepEqual(await store.cancel(t.id, clock.now() + 5), { previous: 'succeeded', cancelled: false, name: t.name });
        assert.deepEqual(await store.get(t.id), before);
        assert.deepEqual(await store.cancel('0'.repeat(28), clock.now()), { previous: undefined, cancelled: false });
      }));
  });

  describe('retry of a dead letter', () => {
    it('puts a failed task back with a fresh attempt budget', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne, succeed }) => {
        const t = await add({ maxAttempts: 1 });
        await claim();
        assert.ok(await settleOne({ type: 'failed', id: t.id, owner: OWNER, attempt: 1, at: clock.now(), error: boom }));
        await clock.advance(10);
        const back = await store.retry(t.id, clock.now());
        assert.deepEqual(
          [back?.state, back?.attempts, back?.runAt, back?.finishedAt, back?.error, back?.owner],
          ['queued', 0, clock.now(), undefined, undefined, undefined],
        );
        assert.deepEqual(await store.get(t.id), back);
        assert.deepEqual((await store.history(t.id)).at(-1)?.to, 'queued');
        const [again] = await claim();
        assert.equal(again?.attempts, 1);
        assert.ok(await succeed(again!));
        assert.equal(await store.retry(t.id, clock.now()), undefined, 'a succeeded task is not a dead letter');
        assert.equal(await store.retry('0'.repeat(28), clock.now()), undefined);
      }));

    it('puts back cancelled and timed-out tasks, never queued or running ones', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne }) => {
        const a = await add();
        const b = await add();
        const q = await add();
        await claim({ limit: 2 });
        await store.cancel(a.id, clock.now());
        await settleOne({ type: 'timed_out', id: b.id, owner: OWNER, attempt: 1, at: clock.now(), error: boom });
        assert.equal((await store.retry(a.id, clock.now()))?.state, 'queued');
        assert.equal((await store.retry(b.id, clock.now()))?.state, 'queued');
        assert.equal(await store.retry(q.id, clock.now()), undefined);
        const [r] = await claim({ limit: 1 });
        assert.equal(await store.retry(r!.id, clock.now()), undefined);
        assert.equal((await store.get(r!.id))?.state, 'running');
      }));

    it('a delayed task cancelled and put back leaves the other delayed tasks due at their time', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        // The memory store's delayed queue read the retried task's new runAt through its stale item: a task
        // delayed 300 ms afterwards was queued behind one delayed 10 minutes.
        const t0 = clock.now();
        const x = await add({ runAt: t0 + 600_000 });
        const s = await add({ runAt: t0 + 1_200_000 });
        await store.cancel(s.id, clock.now());
        assert.equal((await store.retry(s.id, clock.now()))?.state, 'queued');
        const y = await add({ runAt: clock.now() + 300 });
        assert.deepEqual(ids(await claim()), [s.id]);
        assert.equal(await store.nextRunAt(), y.runAt);
        await clock.advanceTo(y.runAt);
        assert.deepEqual(ids(await claim()), [y.id]);
        assert.equal(await store.nextRunAt(), x.runAt);
      }));
  });

  describe('history', () => {
    it('has one entry per transition, in order, chained from → to', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock, settleOne, succeed }) => {
        const t = await add({ runAt: clock.now() + 5, maxAttempts: 3 });
        await clock.advance(10);
        await claim({ leaseMs: 10 });
        await clock.advance(11);
        await store.recoverExpired(clock.now());
        await claim();
        await settleOne({ type: 'retry', id: t.id, owner: OWNER, attempt: 2, at: clock.now(), runAt: clock.now(), error: boom });
        const [c] = await claim();
        await succeed(c!);
        const h = await store.history(t.id);
        assert.deepEqual(h.map((x) => [x.from, x.to, x.attempt]), [
          [null, 'scheduled', 0],
          ['scheduled', 'queued', 0],
          ['queued', 'running', 1],
          ['running', 'queued', 1],
          ['queued', 'running', 2],
          ['running', 'retrying', 2],
          ['retrying', 'queued', 2],
          ['queued', 'running', 3],
          ['running', 'succeeded', 3],
        ]);
        for (let i = 1; i < h.length; i++) {
          assert.equal(h[i]!.from, h[i - 1]!.to);
          assert.ok(h[i]!.at >= h[i - 1]!.at);
          assert.equal(h[i]!.taskId, t.id);
        }
        assert.deepEqual(await store.history('0'.repeat(28)), []);
      }));
  });

  describe('output', () => {
    const line = (seq: number, at = 0): OutputLine => ({ seq, stream: seq % 2 ? 'stdout' : 'stderr', text: `line ${seq}`, at });

    it('appends lines and reads them after a seq, oldest first, with a limit', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const t = await add();
        await store.settle([{ type: 'output', id: t.id, lines: [line(1), line(2)] }]);
        await store.settle([{ type: 'output', id: t.id, lines: [line(3), line(4), line(5)] }]);
        assert.deepEqual(await store.output(t.id), [1, 2, 3, 4, 5].map((s) => line(s)));
        assert.deepEqual(await store.output(t.id, 3), [line(4), line(5)]);
        assert.deepEqual(await store.output(t.id, 0, 2), [line(1), line(2)]);
        assert.deepEqual(await store.output(t.id, 5), []);
        assert.deepEqual(await store.settle([{ type: 'output', id: '0'.repeat(28), lines: [line(1)] }]), [false]);
        assert.deepEqual(await store.output('0'.repeat(28)), []);
      }));

    it('ignores lines whose seq was already stored', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const t = await add();
        await store.settle([{ type: 'output', id: t.id, lines: [line(1), line(2)] }]);
        await store.settle([{ type: 'output', id: t.id, lines: [line(2), line(3)] }]);
        assert.deepEqual((await store.output(t.id)).map((l) => l.seq), [1, 2, 3]);
      }));

    it('keeps the newest maxOutputLines lines behind one marker line', () =>
      withStore(makeStore, { maxOutputLines: 4 }, async ({ store, add }) => {
        const t = await add();
        await store.settle([{ type: 'output', id: t.id, lines: [1, 2, 3].map((s) => line(s, s * 10)) }]);
        assert.equal((await store.output(t.id)).length, 3);
        await store.settle([{ type: 'output', id: t.id, lines: [4, 5, 6].map((s) => line(s, s * 10)) }]);
        let out = await store.output(t.id);
        assert.deepEqual(out.map((l) => [l.seq, l.stream]), [[2, 'marker'], [3, 'stdout'], [4, 'stderr'], [5, 'stdout'], [6, 'stderr']]);
        assert.match(out[0]!.text, /\b2\b/);
        for (let s = 7; s <= 10; s++) await store.settle([{ type: 'output', id: t.id, lines: [line(s, s * 10)] }]);
        out = await store.output(t.id);
        assert.deepEqual(out.map((l) => [l.seq, l.stream]), [[6, 'marker'], [7, 'stdout'], [8, 'stderr'], [9, 'stdout'], [10, 'stderr']]);
        assert.match(out[0]!.text, /\b6\b/);
        assert.deepEqual((await store.output(t.id, 6)).map((l) => l.seq), [7, 8, 9, 10]);
        assert.deepEqual((await store.output(t.id, 5)).map((l) => l.seq), [6, 7, 8, 9, 10]);
      }));

    it('keeps every line of long runs (one stream, one time, consecutive seqs) exactly, in seq order', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const t = await add();
        const texts = ['', 'é"\\/\b\f\r\t', '\u2028\u2029', '😀 ünïcödé', '[1, 2]', '{"a":1}', 'null', ' \u007f\u0001 ', '\uFFFD', 'x'.repeat(3000)];
        const lines: OutputLine[] = [];
        // one long run (longer than a stored row holds), then the stream changes, then the time, then a seq gap
        for (let i = 0; i < 5000; i++) lines.push({ seq: 100 + i, stream: 'stdout', text: texts[i % texts.length]! + i, at: 7 });
        for (let i = 0; i < 20; i++) lines.push({ seq: 5100 + i, stream: 'stderr', text: `err ${i}`, at: 7 });
        for (let i = 0; i < 20; i++) lines.push({ seq: 5120 + i, stream: 'stderr', text: `later ${i}`, at: 8 });
        for (let i = 0; i < 20; i++) lines.push({ seq: 6000 + 2 * i, stream: 'stdout', text: `gap ${i}`, at: 9 });
        // interleaved streams, as a process writing both pipes at once
        for (let i = 0; i < 40; i++) lines.push({ seq: 7000 + i, stream: i % 3 ? 'stdout' : 'stderr', text: `mixed ${i}`, at: 10 });
        await store.settle([{ type: 'output', id: t.id, lines: lines.slice(0, 2500) }]);
        await store.settle([{ type: 'output', id: t.id, lines: lines.slice(2490) }]); // the first 10 again: ignored
        assert.deepEqual(await store.output(t.id), lines);
        assert.deepEqual(await store.output(t.id, 2599, 3), lines.slice(2500, 2503));
        assert.deepEqual(await store.output(t.id, 5119, 2), lines.slice(5020, 5022));
      }));

    it('drops the oldest lines of a long run behind the marker', () =>
      withStore(makeStore, { maxOutputLines: 100 }, async ({ store, add }) => {
        const t = await add();
        const lines = Array.from({ length: 1000 }, (_, i): OutputLine => ({ seq: 10 + i, stream: 'stdout', text: `l${i}`, at: 5 }));
        await store.settle([{ type: 'output', id: t.id, lines: lines.slice(0, 600) }]);
        await store.settle([{ type: 'output', id: t.id, lines: lines.slice(600) }]);
        const out = await store.output(t.id);
        assert.deepEqual(out.map((l) => [l.seq, l.stream]).slice(0, 2), [[909, 'marker'], [910, 'stdout']]);
        assert.match(out[0]!.text, /\b900\b/);
        assert.deepEqual(out.slice(1), lines.slice(900));
      }));
  });
}
