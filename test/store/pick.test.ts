import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Heap, compareByPriority, compareByTime, compareByTimeDesc, pickWeightClass, resolveStoreOptions } from '../../src/store/pick.ts';

describe('pick', () => {
  it('pickWeightClass maps [0, 1) onto classes in proportion to weight × count', () => {
    const classes = [{ weight: 1, count: 2 }, { weight: 2, count: 0 }, { weight: 3, count: 1 }];
    // total 5: [0, 0.4) → class 0, [0.4, 1) → class 2; the empty class is never chosen
    assert.equal(pickWeightClass(classes, 0), 0);
    assert.equal(pickWeightClass(classes, 0.399), 0);
    assert.equal(pickWeightClass(classes, 0.4), 2);
    assert.equal(pickWeightClass(classes, 0.999999), 2);
    assert.equal(pickWeightClass([], 0.5), -1);
    assert.equal(pickWeightClass([{ weight: 1, count: 0 }], 0.5), -1);
    assert.equal(pickWeightClass([{ weight: 0, count: 5 }, { weight: -1, count: 5 }, { weight: 2, count: 1 }], 0), 2);
  });

  it('orders by time, reverse time and priority, ties broken by id', () => {
    const a = { id: 'a', runAt: 1, priority: 0 };
    const b = { id: 'b', runAt: 1, priority: 5 };
    const c = { id: 'c', runAt: 0, priority: 0 };
    assert.deepEqual([a, b, c].sort(compareByTime).map((x) => x.id), ['c', 'a', 'b']);
    assert.deepEqual([a, b, c].sort(compareByTimeDesc).map((x) => x.id), ['b', 'a', 'c']);
    assert.deepEqual([a, b, c].sort(compareByPriority).map((x) => x.id), ['b', 'c', 'a']);
  });

  it('Heap pops in comparator order and filters', () => {
    const heap = new Heap<number>((x, y) => x - y);
    const values = Array.from({ length: 200 }, (_, i) => (i * 7919) % 211);
    for (const v of values) heap.push(v);
    heap.filter((v) => v % 2 === 0);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop()!);
    assert.deepEqual(out, values.filter((v) => v % 2 === 0).sort((x, y) => x - y));
    assert.equal(heap.pop(), undefined);
  });

  it('Heap pops in comparator order whatever the order of pushes and pops (in-order pushes take the lane)', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const shape of ['ascending', 'descending', 'random', 'mostly ascending'] as const) {
      const heap = new Heap<number>((x, y) => x - y);
      const model: number[] = [];
      let next = 0;
      for (let step = 0; step < 3000; step++) {
        if (rand() < 0.6) {
          const v = shape === 'ascending' ? next++ : shape === 'descending' ? 10_000 - next++ : shape === 'random' ? Math.floor(rand() * 500) : next++ - (rand() < 0.1 ? 50 : 0);
          heap.push(v);
          model.push(v);
        } else {
          model.sort((x, y) => x - y);
          assert.equal(heap.peek(), model[0], `${shape}: peek at step ${step}`);
          assert.equal(heap.pop(), model.shift(), `${shape}: pop at step ${step}`);
        }
        assert.equal(heap.size, model.length);
      }
      assert.deepEqual([...heap.values()].sort((x, y) => x - y), [...model].sort((x, y) => x - y), `${shape}: values`);
      heap.filter((v) => v % 3 !== 0);
      const out: number[] = [];
      while (heap.size > 0) out.push(heap.pop()!);
      assert.deepEqual(out, model.filter((v) => v % 3 !== 0).sort((x, y) => x - y), `${shape}: after filter`);
      assert.equal(heap.pop(), undefined);
      assert.equal(heap.peek(), undefined);
    }
  });

  it('Heap keeps order across the lane compacting itself (more than 1024 popped from a long lane)', () => {
    const heap = new Heap<number>((x, y) => x - y);
    for (let i = 0; i < 5000; i++) heap.push(i);
    for (let i = 0; i < 3000; i++) assert.equal(heap.pop(), i);
    heap.push(-1); // out of order: the binary heap
    heap.push(10_000); // in order: the lane
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop()!);
    assert.deepEqual(out, [-1, ...Array.from({ length: 2000 }, (_, i) => 3000 + i), 10_000]);
    // emptied, then filled again in its old slots
    for (const v of [5, 6, 7]) heap.push(v);
    assert.deepEqual([heap.pop(), heap.pop(), heap.pop(), heap.pop()], [5, 6, 7, undefined]);
    for (const v of [2, 1, 3]) heap.push(v);
    assert.equal(heap.size, 3);
    assert.deepEqual([...heap.values()].sort(), [1, 2, 3]);
    assert.deepEqual([heap.pop(), heap.pop(), heap.pop()], [1, 2, 3]);
  });

  it('resolveStoreOptions applies defaults and rejects bad values by code', () => {
    const r = resolveStoreOptions();
    assert.deepEqual([r.strategy, r.maxOutputLines, r.random], ['fifo', 10_000, Math.random]);
    for (const bad of [{ strategy: 'random' }, { maxOutputLines: 1.5 }, { maxOutputLines: 0 }, { random: 1 }]) {
      assert.throws(() => resolveStoreOptions(bad as never), { code: 'TROUPE_ERR_INVALID_OPTION' });
    }
  });
});
