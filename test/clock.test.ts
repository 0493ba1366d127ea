import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flushMicrotasks, ManualClock, systemClock } from '../src/clock.ts';

describe('ManualClock', () => {
  it('starts at the given time (2026-01-01 UTC by default) and moves only when told', async () => {
    assert.equal(new ManualClock().now(), Date.UTC(2026, 0, 1));
    const clock = new ManualClock(1000);
    assert.equal(clock.now(), 1000);
    await clock.advance(250);
    assert.equal(clock.now(), 1250);
    await clock.advanceTo(1000);
    assert.equal(clock.now(), 1250, 'advanceTo never goes backwards');
  });

  it('fires due timers in due order, ties in creation order, each seeing its own due time', async () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    const at = (label: string) => () => fired.push(`${label}@${clock.now()}`);
    clock.setTimeout(at('c'), 30);
    clock.setTimeout(at('a'), 10);
    clock.setTimeout(at('b1'), 20);
    clock.setTimeout(at('b2'), 20);
    clock.setTimeout(at('late'), 100);
    assert.equal(clock.pending, 5);
    assert.equal(clock.nextAt, 10);
    await clock.advance(30);
    assert.deepEqual(fired, ['a@10', 'b1@20', 'b2@20', 'c@30']);
    assert.equal(clock.now(), 30);
    assert.equal(clock.pending, 1);
    assert.equal(clock.nextAt, 100);
  });

  it('fires a timer that is exactly due, and not one a millisecond later', async () => {
    const clock = new ManualClock(0);
    let fired = 0;
    clock.setTimeout(() => fired++, 100);
    await clock.advance(99);
    assert.equal(fired, 0);
    await clock.advance(1);
    assert.equal(fired, 1);
  });

  it('fires timers armed during advance when they fall due inside it, also from promise callbacks', async () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => {
      fired.push(clock.now());
      clock.setTimeout(() => fired.push(clock.now()), 10);
      void Promise.resolve().then(() => clock.setTimeout(() => fired.push(clock.now()), 15));
    }, 10);
    await clock.advance(100);
    assert.deepEqual(fired, [10, 20, 25]);
  });

  it('a timer armed for the past or with a negative delay fires at the next advance', async () => {
    const clock = new ManualClock(0);
    let fired = 0;
    clock.setTimeout(() => fired++, -5);
    await clock.advance(0);
    assert.equal(fired, 1);
    assert.equal(clock.now(), 0);
  });

  it('clearTimeout cancels, also a timer cleared by an earlier timer in the same advance', async () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    const a = clock.setTimeout(() => fired.push('a'), 10);
    clock.clearTimeout(a);
    let c: ReturnType<ManualClock['setTimeout']> | undefined;
    clock.setTimeout(() => {
      fired.push('b');
      clock.clearTimeout(c);
    }, 20);
    c = clock.setTimeout(() => fired.push('c'), 30);
    clock.clearTimeout(undefined);
    assert.equal(clock.pending, 2);
    await clock.advance(100);
    assert.deepEqual(fired, ['b']);
    assert.equal(clock.pending, 0);
    assert.equal(clock.nextAt, undefined);
  });

  it('set() jumps without firing anything', async () => {
    const clock = new ManualClock(0);
    let fired = 0;
    clock.setTimeout(() => fired++, 10);
    clock.set(1000);
    assert.equal(fired, 0);
    await clock.advance(0);
    assert.equal(fired, 1, 'the overdue timer fires at the next advance');
  });

  it('timer handles have a harmless unref', () => {
    const clock = new ManualClock(0);
    const handle = clock.setTimeout(() => {}, 10);
    assert.doesNotThrow(() => handle.unref?.());
  });
});

describe('systemClock', () => {
  it('reads Date.now and arms real timers that can be cleared', async () => {
    const before = Date.now();
    const now = systemClock.now();
    assert.ok(now >= before && now <= Date.now());
    let fired = false;
    const cleared = systemClock.setTimeout(() => (fired = true), 0);
    systemClock.clearTimeout(cleared);
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1));
    await flushMicrotasks();
    assert.equal(fired, false);
    assert.doesNotThrow(() => systemClock.clearTimeout(undefined));
    assert.equal(Object.isFrozen(systemClock), true);
  });
});
