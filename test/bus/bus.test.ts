import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bus } from '../../src/bus/bus.ts';
import { BROADCAST, type Inspection } from '../../src/bus/message.ts';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { BusProbe } from '../helpers/bus-probe.ts';

type TestMsg = { type: 'ping'; n: number } | { type: 'pong'; n: number } | { type: 'note'; text: string };

function makeBus(): { bus: Bus<TestMsg>; clock: ManualClock } {
  const clock = new ManualClock();
  return { bus: new Bus<TestMsg>(clock), clock };
}

describe('Bus.tell', () => {
  it('delivers to the registered target in order, with the sender', () => {
    const { bus } = makeBus();
    const got: Array<[number, string]> = [];
    bus.register('b', { deliver: (msg, from) => got.push([(msg as { n: number }).n, from]) });
    for (let n = 0; n < 5; n++) bus.tell('a', 'b', { type: 'ping', n });
    assert.deepEqual(got, [[0, 'a'], [1, 'a'], [2, 'a'], [3, 'a'], [4, 'a']]);
    assert.equal(bus.stats.delivered, 5);
    assert.equal(bus.stats.deadLetters, 0);
  });

  it('emits the inspection record before the target receives the message', () => {
    const { bus, clock } = makeBus();
    const order: string[] = [];
    bus.inspect((record) => order.push(`inspect:${record.msg.type}:${record.from}->${record.to}@${record.at}`));
    bus.register('b', { deliver: (msg) => order.push(`deliver:${msg.type}`) });
    bus.tell('a', 'b', { type: 'ping', n: 1 });
    assert.deepEqual(order, [`inspect:ping:a->b@${clock.now()}`, 'deliver:ping']);
  });

  it('counts a message to an unknown address as a dead letter and inspects it with dead: true', () => {
    const { bus } = makeBus();
    const records: Inspection<TestMsg>[] = [];
    bus.inspect((r) => records.push(r));
    bus.tell('a', 'nobody', { type: 'ping', n: 1 });
    assert.equal(bus.stats.deadLetters, 1);
    assert.equal(bus.stats.delivered, 0);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.dead, true);
    assert.equal(records[0]!.to, 'nobody');
  });

  it('does not mark delivered messages as dead', () => {
    const { bus } = makeBus();
    const records: Inspection<TestMsg>[] = [];
    bus.inspect((r) => records.push(r));
    bus.register('b', { deliver: () => {} });
    bus.tell('a', 'b', { type: 'ping', n: 1 });
    assert.equal('dead' in records[0]!, false);
  });

  it('keeps delivering when an inspector throws', () => {
    const { bus } = makeBus();
    const seen: string[] = [];
    bus.inspect(() => {
      throw new Error('inspector bug');
    });
    bus.inspect((r) => seen.push(`second:${r.msg.type}`));
    bus.register('b', { deliver: (msg) => seen.push(`deliver:${msg.type}`) });
    bus.tell('a', 'b', { type: 'ping', n: 1 });
    bus.publish('a', { type: 'note', text: 'x' });
    assert.deepEqual(seen, ['second:ping', 'deliver:ping', 'second:note']);
  });

  it('refuses a second registration of an address and frees it on unregister', () => {
    const { bus } = makeBus();
    const first = bus.register('b', { deliver: () => {} });
    assert.throws(() => bus.register('b', { deliver: () => {} }), { code: ErrorCodes.CONFLICT });
    assert.equal(bus.has('b'), true);
    first();
    assert.equal(bus.has('b'), false);
    bus.register('b', { deliver: () => {} });
    // A stale unregister of the first target must not remove the second one.
    first();
    assert.equal(bus.has('b'), true);
  });

  it('stops inspecting after the inspector unsubscribes', () => {
    const { bus } = makeBus();
    let n = 0;
    const off = bus.inspect(() => n++);
    bus.tell('a', 'x', { type: 'ping', n: 1 });
    off();
    bus.tell('a', 'x', { type: 'ping', n: 2 });
    assert.equal(n, 1);
    assert.equal(bus.stats.inspectors, 0);
  });
});

describe('Bus.route', () => {
  it('hands a message told to a routed address to the router in the sender\'s call, inspected, and back to the target once ended', () => {
    const { bus } = makeBus();
    const mailbox: number[] = [];
    const routed: Array<[number, string]> = [];
    const records: string[] = [];
    bus.inspect((r) => records.push(`${r.from}->${r.to}`));
    bus.register('router', { deliver: (msg) => mailbox.push((msg as { n: number }).n) });
    const end = bus.route('router', (msg, from) => routed.push([(msg as { n: number }).n, from]));
    bus.tell('a', 'router', { type: 'ping', n: 1 });
    assert.deepEqual(routed, [[1, 'a']]);
    assert.deepEqual(mailbox, []);
    assert.deepEqual(records, ['a->router']);
    end();
    bus.tell('a', 'router', { type: 'ping', n: 2 });
    assert.deepEqual(routed, [[1, 'a']]);
    assert.deepEqual(mailbox, [2]);
    assert.equal(bus.stats.delivered, 2);
  });

  it('refuses to route an address nobody registered', () => {
    const { bus } = makeBus();
    assert.throws(() => bus.route('nobody', () => {}), (e: { code?: string }) => e.code === ErrorCodes.UNKNOWN_ACTOR);
  });
});

describe('Bus.publish / subscribe', () => {
  it('delivers a fact to the subscribers of its type only', () => {
    const { bus } = makeBus();
    const pings: number[] = [];
    const notes: string[] = [];
    bus.subscribe('ping', (m) => pings.push(m.n));
    bus.subscribe('ping', (m) => pings.push(m.n * 10));
    bus.subscribe('note', (m) => notes.push(m.text));
    bus.publish('a', { type: 'ping', n: 2 });
    bus.publish('a', { type: 'pong', n: 3 });
    assert.deepEqual(pings, [2, 20]);
    assert.deepEqual(notes, []);
  });

  it('inspects published facts as addressed to BROADCAST, before the subscribers run', () => {
    const { bus } = makeBus();
    const order: string[] = [];
    bus.inspect((r) => order.push(`inspect:${r.to}`));
    bus.subscribe('ping', () => order.push('subscriber'));
    bus.publish('a', { type: 'ping', n: 1 });
    assert.deepEqual(order, [`inspect:${BROADCAST}`, 'subscriber']);
  });

  it('stops calling a listener after unsubscribe', () => {
    const { bus } = makeBus();
    let n = 0;
    const off = bus.subscribe('ping', () => n++);
    bus.publish('a', { type: 'ping', n: 1 });
    off();
    bus.publish('a', { type: 'ping', n: 2 });
    assert.equal(n, 1);
  });

  it('reports hasSubscribers per type, following subscribe and unsubscribe', () => {
    const { bus } = makeBus();
    assert.equal(bus.hasSubscribers('ping'), false);
    const off1 = bus.subscribe('ping', () => {});
    const off2 = bus.subscribe('ping', () => {});
    assert.equal(bus.hasSubscribers('ping'), true);
    assert.equal(bus.hasSubscribers('pong'), false);
    off1();
    assert.equal(bus.hasSubscribers('ping'), true);
    off2();
    assert.equal(bus.hasSubscribers('ping'), false);
  });
});

describe('BusProbe', () => {
  it('resolves next() with a record already seen, then with one that arrives later', async () => {
    const { bus } = makeBus();
    using probe = new BusProbe(bus);
    bus.publish('a', { type: 'ping', n: 1 });
    const first = await probe.next('ping');
    assert.equal(first.msg.n, 1);
    const pending = probe.next('ping');
    bus.publish('a', { type: 'pong', n: 9 });
    bus.publish('a', { type: 'ping', n: 2 });
    assert.equal((await pending).msg.n, 2);
    assert.equal(probe.count('ping'), 2);
    assert.equal(probe.count('pong'), 1);
    assert.equal(probe.records.length, 3);
  });

  it('ignores records before the mark and filters with where', async () => {
    const { bus } = makeBus();
    using probe = new BusProbe(bus);
    bus.publish('a', { type: 'ping', n: 1 });
    probe.mark();
    bus.publish('a', { type: 'ping', n: 2 });
    bus.publish('a', { type: 'ping', n: 3 });
    assert.equal((await probe.next('ping')).msg.n, 2);
    const odd = await probe.next('ping', { where: (r) => r.msg.n % 2 === 1 });
    assert.equal(odd.msg.n, 3);
  });

  it('rejects on its safety timeout naming what it saw, and on dispose', async () => {
    const { bus } = makeBus();
    const probe = new BusProbe(bus);
    bus.publish('a', { type: 'pong', n: 1 });
    // The probe's safety timer is unref'd (a forgotten probe must not hold a process open): something has to keep
    // the event loop alive until it fires, or the runner finds the loop empty and cancels the test.
    const hold = setInterval(() => {}, 1000);
    try {
      await assert.rejects(probe.next('ping', { timeout: 10 }), /no `ping` within 10 ms \(seen: pong\)/);
    } finally {
      clearInterval(hold);
    }
    const pending = probe.next('ping');
    probe.dispose();
    await assert.rejects(pending, /disposed/);
    assert.equal(bus.stats.inspectors, 0);
  });
});
