import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ask } from '../../src/bus/ask.ts';
import { Bus } from '../../src/bus/bus.ts';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import type { ActorAddress } from '../../src/ids.ts';

type TestMsg =
  | { type: 'question'; q: number; replyTo: ActorAddress }
  | { type: 'answer'; a: number };

/** Messages are built by constructors, as the actors' messages.ts files do. */
const question = (q: number, replyTo: ActorAddress): TestMsg => ({ type: 'question', q, replyTo });
const answer = (a: number): TestMsg => ({ type: 'answer', a });

function setup(): { bus: Bus<TestMsg>; clock: ManualClock } {
  const clock = new ManualClock();
  return { bus: new Bus<TestMsg>(clock), clock };
}

/** An actor at `oracle` that answers `q * 2` to the reply address. */
function registerOracle(bus: Bus<TestMsg>): string[] {
  const replyAddresses: string[] = [];
  bus.register('oracle', {
    deliver: (msg) => {
      if (msg.type !== 'question') return;
      replyAddresses.push(msg.replyTo);
      bus.tell('oracle', msg.replyTo, answer(msg.q * 2));
    },
  });
  return replyAddresses;
}

describe('ask', () => {
  it('resolves with the reply and unregisters the temporary reply address', async () => {
    const { bus, clock } = setup();
    const replyAddresses = registerOracle(bus);
    const before = bus.stats.addresses;
    const reply = await ask(bus, 'me', 'oracle', (replyTo) => question(21, replyTo));
    assert.deepEqual(reply, { type: 'answer', a: 42 });
    assert.equal(replyAddresses.length, 1);
    assert.match(replyAddresses[0]!, /^me\/ask#\d+$/);
    assert.equal(bus.has(replyAddresses[0]!), false);
    assert.equal(bus.stats.addresses, before);
    assert.equal(clock.pending, 0, 'the timeout timer is cleared');
  });

  it('uses a fresh reply address per request', async () => {
    const { bus } = setup();
    const replyAddresses = registerOracle(bus);
    const [a, b] = await Promise.all([
      ask(bus, 'me', 'oracle', (replyTo) => question(1, replyTo)),
      ask(bus, 'me', 'oracle', (replyTo) => question(2, replyTo)),
    ]);
    assert.deepEqual([a, b], [{ type: 'answer', a: 2 }, { type: 'answer', a: 4 }]);
    assert.notEqual(replyAddresses[0], replyAddresses[1]);
  });

  it('rejects with TROUPE_ERR_ASK_TIMEOUT when the clock passes the timeout, not before', async () => {
    const { bus, clock } = setup();
    let replyTo: string | undefined;
    bus.register('silent', { deliver: (msg) => void (replyTo = (msg as { replyTo: string }).replyTo) });
    let settled = false;
    const pending = ask(bus, 'me', 'silent', (r) => question(1, r), { timeoutMs: 1000 });
    pending.then(() => (settled = true), () => (settled = true));
    await clock.advance(999);
    assert.equal(settled, false);
    assert.equal(bus.has(replyTo!), true);
    await clock.advance(1);
    await assert.rejects(pending, (error: unknown) => isTroupeError(error) && error.code === ErrorCodes.ASK_TIMEOUT);
    assert.equal(bus.has(replyTo!), false);
    // A late reply is a dead letter, not a crash.
    bus.tell('silent', replyTo!, answer(1));
    assert.equal(bus.stats.deadLetters, 1);
  });

  it('rejects with TROUPE_ERR_UNKNOWN_ACTOR when nobody lives at the address, leaving nothing behind', async () => {
    const { bus, clock } = setup();
    let built = false;
    await assert.rejects(
      ask(bus, 'me', 'ghost', (replyTo) => {
        built = true;
        return question(1, replyTo);
      }),
      { code: ErrorCodes.UNKNOWN_ACTOR },
    );
    assert.equal(built, false, 'the request is not built for nobody');
    assert.equal(bus.stats.addresses, 0);
    assert.equal(clock.pending, 0);
  });

  it('rejects with TROUPE_ERR_CANCELLED when the signal aborts while waiting', async () => {
    const { bus, clock } = setup();
    let replyTo: string | undefined;
    bus.register('silent', { deliver: (msg) => void (replyTo = (msg as { replyTo: string }).replyTo) });
    const controller = new AbortController();
    const pending = ask(bus, 'me', 'silent', (r) => question(1, r), { signal: controller.signal });
    const reason = new Error('user gave up');
    controller.abort(reason);
    await assert.rejects(pending, (error: unknown) => {
      assert.ok(isTroupeError(error));
      assert.equal(error.code, ErrorCodes.CANCELLED);
      assert.equal(error.cause, reason);
      return true;
    });
    assert.equal(bus.has(replyTo!), false);
    assert.equal(clock.pending, 0);
  });

  it('rejects at once with TROUPE_ERR_CANCELLED when the signal is already aborted', async () => {
    const { bus, clock } = setup();
    let told = 0;
    bus.register('oracle', { deliver: () => void told++ });
    await assert.rejects(
      ask(bus, 'me', 'oracle', (replyTo) => question(1, replyTo), { signal: AbortSignal.abort() }),
      { code: ErrorCodes.CANCELLED },
    );
    assert.equal(told, 0);
    assert.equal(bus.stats.addresses, 1);
    assert.equal(clock.pending, 0);
  });

  it('cleans up when building the request throws', async () => {
    const { bus, clock } = setup();
    bus.register('oracle', { deliver: () => {} });
    await assert.rejects(
      ask(bus, 'me', 'oracle', () => {
        throw new TypeError('bad request');
      }),
      TypeError,
    );
    assert.equal(bus.stats.addresses, 1, 'the reply address is released');
    assert.equal(clock.pending, 0, 'the timeout timer is cleared');
  });
});
