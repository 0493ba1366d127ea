import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bus } from '../../src/bus/bus.ts';
import { Requester } from '../../src/bus/requester.ts';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';

type Msg = { type: 'echo.ask'; n: number; replyTo: string } | { type: 'echo.reply'; n: number };

function setup() {
  const clock = new ManualClock();
  const bus = new Bus<Msg>(clock);
  const seen: string[] = [];
  bus.register('echo', {
    deliver: (msg, from) => {
      seen.push(from);
      if (msg.type === 'echo.ask' && msg.n >= 0) bus.tell('echo', msg.replyTo, { type: 'echo.reply', n: msg.n * 2 });
    },
  });
  const requester = new Requester<Msg, Extract<Msg, { type: 'echo.reply' }>>(bus, 'client/req', { sweepMs: 100 });
  return { clock, bus, requester, seen };
}

describe('Requester', () => {
  it('routes each reply to its own request through one registered address', async () => {
    const { requester, bus, seen } = setup();
    const replies = await Promise.all([1, 2, 3].map((n) => requester.request('client', 'echo', (replyTo) => ({ type: 'echo.ask', n, replyTo }))));
    assert.deepEqual(replies.map((r) => r.n), [2, 4, 6]);
    assert.deepEqual(seen, ['client', 'client', 'client']);
    assert.equal(requester.size, 0);
    assert.equal(bus.stats.deadLetters, 0);
    requester.close();
  });

  it('rejects with ASK_TIMEOUT once the deadline passes (one sweep late at most)', async () => {
    const { requester, clock } = setup();
    const pending = requester.request('client', 'echo', (replyTo) => ({ type: 'echo.ask', n: -1, replyTo }), 150);
    const outcome = pending.then(() => 'resolved', (e: unknown) => (isTroupeError(e) ? e.code : 'other'));
    await clock.advance(100);
    assert.equal(requester.size, 1);
    await clock.advance(100);
    assert.equal(await outcome, ErrorCodes.ASK_TIMEOUT);
    assert.equal(requester.size, 0);
    requester.close();
  });

  it('close rejects what is pending with CLOSED, frees the address, and refuses new requests', async () => {
    const { requester, bus } = setup();
    const pending = requester.request('client', 'echo', (replyTo) => ({ type: 'echo.ask', n: -1, replyTo })).catch((e: unknown) => (isTroupeError(e) ? e.code : 'other'));
    requester.close();
    assert.equal(await pending, ErrorCodes.CLOSED);
    assert.equal(bus.has('client/req'), false);
    await assert.rejects(requester.request('client', 'echo', (replyTo) => ({ type: 'echo.ask', n: 1, replyTo })), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.CLOSED);
  });

  it('send: one receiver for many requests, each outcome with its own context', async () => {
    const { requester, clock } = setup();
    const got: string[] = [];
    const receiver = {
      onReply: (reply: { n: number }, context: string) => got.push(`${context}:${reply.n}`),
      onError: (error: unknown, context: string) => got.push(`${context}:${isTroupeError(error) ? error.code : 'other'}`),
    };
    const build = (replyTo: string, context: string): Msg => ({ type: 'echo.ask', n: context === 'lost' ? -1 : context.length, replyTo });
    for (const context of ['a', 'bb', 'lost', 'ccc']) requester.send('client', 'echo', build, receiver, context, 150);
    assert.deepEqual(got, ['a:2', 'bb:4', 'ccc:6'], 'replies are read as they arrive, without a microtask hop');
    assert.equal(requester.size, 1);
    await clock.advance(200);
    assert.deepEqual(got.at(-1), `lost:${ErrorCodes.ASK_TIMEOUT}`);
    requester.send('client', 'echo', () => { throw new Error('bad build'); }, receiver, 'bad');
    assert.equal(got.at(-1), 'bad:other');
    requester.send('client', 'echo', build, receiver, 'lost');
    requester.close();
    assert.equal(got.at(-1), `lost:${ErrorCodes.CLOSED}`);
    requester.send('client', 'echo', build, receiver, 'late');
    assert.equal(got.at(-1), `late:${ErrorCodes.CLOSED}`);
    assert.equal(requester.size, 0);
  });

  it('a build function that throws rejects that request only', async () => {
    const { requester } = setup();
    await assert.rejects(requester.request('client', 'echo', () => { throw new Error('bad build'); }), /bad build/);
    assert.equal(requester.size, 0);
    requester.close();
  });
});
