import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Mailbox, type MailboxHandler } from '../../src/actor/mailbox.ts';
import { flushMicrotasks } from '../../src/clock.ts';
import { waitFor } from '../helpers/wait-for.ts';

type Msg = { type: 'n'; n: number };
const m = (n: number): Msg => ({ type: 'n', n });

/** A handler that records what it gets; `receive` may be replaced per test. */
function recorder(receive?: (msg: Msg) => void | Promise<void>) {
  const got: number[] = [];
  const crashes: Array<{ error: unknown; msg: Msg }> = [];
  const handler: MailboxHandler<Msg> = {
    receive: (msg) => {
      got.push(msg.n);
      return receive?.(msg);
    },
    crash: (error, msg) => void crashes.push({ error, msg }),
  };
  return { handler, got, crashes };
}

function deferred(): { promise: Promise<void>; resolve(): void; reject(error: unknown): void } {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('Mailbox', () => {
  it('holds messages until started, then delivers them in order, asynchronously', async () => {
    const box = new Mailbox<Msg>();
    const { handler, got } = recorder();
    box.deliver(m(1), 'a');
    box.deliver(m(2), 'a');
    assert.equal(box.size, 2);
    box.start(handler);
    assert.deepEqual(got, [], 'delivery is not re-entrant: it happens on a microtask');
    box.deliver(m(3), 'a');
    await flushMicrotasks(1);
    assert.deepEqual(got, [1, 2, 3]);
    assert.deepEqual(box.stats, { queued: 0, processed: 3, dropped: 0 });
  });

  it('processes one message at a time: the next waits for an async receive to settle', async () => {
    const box = new Mailbox<Msg>();
    const gates = new Map<number, ReturnType<typeof deferred>>();
    let inFlight = 0;
    let maxInFlight = 0;
    const { handler, got } = recorder(async (msg) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const gate = deferred();
      gates.set(msg.n, gate);
      await gate.promise;
      inFlight--;
    });
    box.start(handler);
    for (let n = 1; n <= 3; n++) box.deliver(m(n), 'a');
    await waitFor(() => gates.has(1));
    await flushMicrotasks(1);
    assert.deepEqual(got, [1]);
    assert.equal(box.size, 2);
    gates.get(1)!.resolve();
    await waitFor(() => gates.has(2));
    assert.deepEqual(got, [1, 2]);
    gates.get(2)!.resolve();
    await waitFor(() => gates.has(3));
    gates.get(3)!.resolve();
    await waitFor(() => box.stats.processed === 3 && inFlight === 0);
    assert.equal(maxInFlight, 1);
  });

  it('pause keeps messages queued; start resumes; clear drops them and counts them', async () => {
    const box = new Mailbox<Msg>();
    const { handler, got } = recorder();
    box.start(handler);
    box.pause();
    box.deliver(m(1), 'a');
    box.deliver(m(2), 'a');
    await flushMicrotasks(1);
    assert.deepEqual(got, []);
    assert.equal(box.size, 2);
    box.start(handler);
    await flushMicrotasks(1);
    assert.deepEqual(got, [1, 2]);

    box.pause();
    box.deliver(m(3), 'a');
    box.deliver(m(4), 'a');
    assert.equal(box.clear(), 2);
    assert.equal(box.size, 0);
    box.start(handler);
    box.deliver(m(5), 'a');
    await flushMicrotasks(1);
    assert.deepEqual(got, [1, 2, 5]);
    assert.deepEqual(box.stats, { queued: 0, processed: 3, dropped: 2 });
  });

  it('a throwing receive pauses the mailbox, reports the crash with the message, and drops that message', async () => {
    const box = new Mailbox<Msg>();
    const boom = new Error('boom');
    const { handler, got, crashes } = recorder((msg) => {
      if (msg.n === 2) throw boom;
    });
    box.start(handler);
    for (let n = 1; n <= 4; n++) box.deliver(m(n), 'a');
    await flushMicrotasks(1);
    assert.deepEqual(got, [1, 2]);
    assert.equal(crashes.length, 1);
    assert.equal(crashes[0]!.error, boom);
    assert.deepEqual(crashes[0]!.msg, m(2));
    assert.equal(box.size, 2, 'later messages wait for the restart');
    assert.equal(box.stats.dropped, 1);

    const next = recorder();
    box.start(next.handler);
    await flushMicrotasks(1);
    assert.deepEqual(next.got, [3, 4]);
  });

  it('a rejected receive is a crash as well', async () => {
    const box = new Mailbox<Msg>();
    const { handler, got, crashes } = recorder(async (msg) => {
      if (msg.n === 1) throw new Error('async boom');
    });
    box.start(handler);
    box.deliver(m(1), 'a');
    box.deliver(m(2), 'a');
    await waitFor(() => crashes.length === 1);
    await flushMicrotasks(1);
    assert.deepEqual(got, [1]);
    assert.equal(box.size, 1);
  });

  it('a replaced handler does not block or pause its successor when its in-flight receive settles late', async () => {
    const box = new Mailbox<Msg>();
    const gate = deferred();
    const old = recorder(() => gate.promise);
    box.start(old.handler);
    box.deliver(m(1), 'a');
    await waitFor(() => old.got.length === 1);

    // The supervisor restarts the actor while message 1 is still being processed by the old instance.
    box.pause();
    const fresh = recorder();
    box.start(fresh.handler);
    box.deliver(m(2), 'a');
    await waitFor(() => fresh.got.length === 1);
    assert.deepEqual(fresh.got, [2], 'the new instance is not held up by the old one');

    gate.reject(new Error('old instance failed after it was replaced'));
    await flushMicrotasks(1);
    assert.equal(old.crashes.length, 0, 'the late failure of a replaced instance is not a crash');
    box.deliver(m(3), 'a');
    await waitFor(() => fresh.got.length === 2);
    assert.deepEqual(fresh.got, [2, 3]);
  });

  it('keeps order across a long burst (the queue compacts without losing messages)', async () => {
    const box = new Mailbox<Msg>();
    const { handler, got } = recorder();
    box.start(handler);
    const n = 5000;
    for (let i = 0; i < n; i++) box.deliver(m(i), 'a');
    await flushMicrotasks(1);
    assert.equal(got.length, n);
    assert.ok(got.every((v, i) => v === i));
  });
});
