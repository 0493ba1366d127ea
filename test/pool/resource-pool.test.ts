/**
 * The user-resource pool, rule by rule, on a ManualClock: min warm, max bound, FIFO waiters, LIFO lending,
 * idle eviction, validation on borrow, create failures, acquire timeout and abort, discard, drain and close.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock, flushMicrotasks } from '../../src/clock.ts';
import { ErrorCodes, type TroupeError } from '../../src/errors.ts';
import { createResourcePool, type ResourcePool, type ResourcePoolOptions } from '../../src/pool/resource-pool.ts';

interface Res {
  id: number;
}

/** A factory that records what it made and destroyed; `failNext` makes the next create throw. */
function factory() {
  let next = 0;
  const made: Res[] = [];
  const destroyed: number[] = [];
  const state = { failNext: false };
  return {
    made,
    destroyed,
    state,
    create: async (): Promise<Res> => {
      if (state.failNext) {
        state.failNext = false;
        throw Object.assign(new Error('cannot connect'), { code: 'ECONNREFUSED' });
      }
      const r = { id: ++next };
      made.push(r);
      return r;
    },
    destroy: async (r: Res) => {
      destroyed.push(r.id);
    },
  };
}

function pool(options: Partial<ResourcePoolOptions<Res>> & { max: number }, f = factory(), clock = new ManualClock()) {
  const p = createResourcePool<Res>({ create: f.create, destroy: f.destroy, clock, ...options });
  return { p, f, clock };
}

async function rejectionOf(promise: Promise<unknown>): Promise<TroupeError> {
  try {
    await promise;
  } catch (error) {
    return error as TroupeError;
  }
  return assert.fail('expected a rejection');
}

/** Records the order in which acquires resolve. */
function track<T>(promise: Promise<T>, order: string[], label: string): Promise<T> {
  return promise.then((value) => {
    order.push(label);
    return value;
  });
}

describe('resource pool options', () => {
  const create = () => ({ id: 0 });
  const cases: [string, Record<string, unknown>][] = [
    ['max 0', { create, max: 0 }],
    ['max 1.5', { create, max: 1.5 }],
    ['max missing', { create }],
    ['min negative', { create, max: 2, min: -1 }],
    ['min above max', { create, max: 2, min: 3 }],
    ['create missing', { max: 1 }],
    ['validate not a function', { create, max: 1, validate: true }],
    ['idleMs not a duration', { create, max: 1, idleMs: 'soon' }],
    ['acquireTimeoutMs 0', { create, max: 1, acquireTimeoutMs: 0 }],
    ['clock without now()', { create, max: 1, clock: {} }],
    ['unknown option', { create, max: 1, maxSize: 3 }],
    ['__proto__ key', { ...JSON.parse('{"__proto__": {"max": 1}}'), create, max: 1 }],
  ];
  for (const [label, options] of cases) {
    test(`${label} is INVALID_OPTION`, () => {
      assert.throws(() => createResourcePool(options as unknown as ResourcePoolOptions<Res>), { code: ErrorCodes.INVALID_OPTION });
    });
  }

  test('durations may be strings', async () => {
    const { p } = pool({ max: 1, idleMs: '5s', acquireTimeoutMs: '1m' });
    await p.close();
  });
});

describe('resource pool', () => {
  test('min resources are made at start and kept warm', async () => {
    const { p, f } = pool({ min: 2, max: 4 });
    await flushMicrotasks();
    assert.equal(p.size, 2);
    assert.equal(p.available, 2);
    assert.equal(f.made.length, 2);
    assert.equal(p.status, 'idle');
    await p.close();
  });

  test('a failed warm-up is reported and tried again later, backing off', async () => {
    const reported: unknown[] = [];
    const f = factory();
    f.state.failNext = true;
    const { p, clock } = pool({ min: 1, max: 2, onError: (e) => reported.push(e) }, f);
    await flushMicrotasks();
    assert.equal(reported.length, 1);
    assert.equal(p.size, 0);
    f.state.failNext = true;
    await clock.advance(1000);
    assert.equal(reported.length, 2, 'tried again after 1 s, failed again');
    await clock.advance(1999);
    assert.equal(p.size, 0, 'the next try waits 2 s');
    await clock.advance(1);
    assert.equal(p.size, 1);
    assert.equal(p.available, 1);
    await p.close();
  });

  test('max is never exceeded; a waiter gets the next released resource', async () => {
    const { p, f } = pool({ max: 2 });
    const a = await p.acquire();
    const b = await p.acquire();
    const c = p.acquire();
    await flushMicrotasks();
    assert.equal(p.size, 2);
    assert.equal(p.pending, 1);
    assert.equal(p.status, 'running');
    p.release(a);
    assert.equal(await c, a);
    assert.equal(f.made.length, 2);
    p.release(a);
    p.release(b);
    await p.close();
  });

  test('waiters are served first come, first served', async () => {
    const { p } = pool({ max: 1 });
    const first = await p.acquire();
    const order: string[] = [];
    const waiting = ['b', 'c', 'd'].map((label) => track(p.acquire(), order, label));
    let held = first;
    for (let i = 0; i < 3; i++) {
      p.release(held);
      held = await waiting[i]!;
    }
    assert.deepEqual(order, ['b', 'c', 'd']);
    p.release(held);
    await p.close();
  });

  test('the most recently released idle resource is lent first', async () => {
    const { p } = pool({ max: 3 });
    const [a, b] = [await p.acquire(), await p.acquire()];
    p.release(a);
    p.release(b);
    assert.equal(await p.acquire(), b);
    await p.close({ force: true });
  });

  test('idle resources above min are destroyed after idleMs, oldest first', async () => {
    const { p, f, clock } = pool({ min: 1, max: 3, idleMs: 1000 });
    const held = [await p.acquire(), await p.acquire(), await p.acquire()];
    for (const r of held) {
      p.release(r);
      await clock.advance(10);
    }
    assert.equal(p.size, 3);
    await clock.advance(1000 - 30 - 1);
    assert.equal(p.size, 3, 'nothing is due yet');
    await clock.advance(1);
    assert.deepEqual(f.destroyed, [held[0]!.id]);
    await clock.advance(10);
    assert.deepEqual(f.destroyed, [held[0]!.id, held[1]!.id]);
    await clock.advance(10_000);
    assert.equal(p.size, 1, 'down to min, not below');
    assert.equal(p.available, 1);
    await p.close();
    assert.deepEqual(f.destroyed.sort(), [1, 2, 3]);
  });

  test('a resource borrowed again is no longer idle and is not evicted', async () => {
    const { p, f, clock } = pool({ max: 2, idleMs: 100 });
    const r = await p.acquire();
    p.release(r);
    await clock.advance(50);
    const again = await p.acquire();
    await clock.advance(500);
    assert.deepEqual(f.destroyed, []);
    p.release(again);
    await clock.advance(100);
    assert.deepEqual(f.destroyed, [r.id]);
    await p.close();
  });

  test('validation on borrow: an invalid resource is destroyed and replaced', async () => {
    const bad = new Set<number>();
    const { p, f } = pool({ max: 2, validate: (r) => !bad.has(r.id) });
    const first = await p.acquire();
    p.release(first);
    bad.add(first.id);
    const second = await p.acquire();
    assert.notEqual(second.id, first.id);
    assert.deepEqual(f.destroyed, [first.id]);
    p.release(second);
    assert.equal(await p.acquire(), second, 'a valid resource is lent again');
    await p.close({ force: true });
  });

  test('a validate() that throws counts as invalid and is reported', async () => {
    const reported: unknown[] = [];
    const { p, f } = pool({ max: 1, validate: () => {
      throw new Error('probe failed');
    }, onError: (e) => reported.push(e) });
    const first = await p.acquire();
    p.release(first);
    const second = await p.acquire();
    assert.notEqual(second, first);
    assert.deepEqual(f.destroyed, [first.id]);
    assert.equal(reported.length, 1);
    await p.close({ force: true });
  });

  test('a create() that throws rejects that acquirer and frees the slot', async () => {
    const { p, f } = pool({ max: 1 });
    f.state.failNext = true;
    const error = await rejectionOf(p.acquire());
    assert.equal((error as unknown as { code: string }).code, 'ECONNREFUSED');
    assert.equal(p.size, 0);
    const r = await p.acquire();
    assert.equal(r.id, 1);
    p.release(r);
    await p.close();
  });

  test('acquire gives up after acquireTimeoutMs with POOL_EXHAUSTED', async () => {
    const { p, clock } = pool({ max: 1, acquireTimeoutMs: 500 });
    const held = await p.acquire();
    const waiting = rejectionOf(p.acquire());
    await clock.advance(499);
    assert.equal(p.pending, 1);
    await clock.advance(1);
    assert.equal((await waiting).code, ErrorCodes.POOL_EXHAUSTED);
    assert.equal(p.pending, 0);
    p.release(held);
    assert.equal(p.available, 1, 'the released resource goes idle, not to the timed-out waiter');
    await p.close();
  });

  test('an aborted acquire rejects with the signal reason and leaves the line', async () => {
    const { p } = pool({ max: 1 });
    const held = await p.acquire();
    const controller = new AbortController();
    const waiting = rejectionOf(p.acquire({ signal: controller.signal }));
    const next = p.acquire();
    controller.abort(Object.assign(new Error('stop'), { code: ErrorCodes.CANCELLED }));
    assert.equal((await waiting).code, ErrorCodes.CANCELLED);
    p.release(held);
    assert.equal(await next, held);
    const already = new AbortController();
    already.abort(Object.assign(new Error('early'), { code: ErrorCodes.CANCELLED }));
    assert.equal((await rejectionOf(p.acquire({ signal: already.signal }))).code, ErrorCodes.CANCELLED);
    p.release(held);
    await p.close();
  });

  test('use() releases the resource after fn, also when fn throws', async () => {
    const { p } = pool({ max: 1 });
    assert.equal(await p.use((r) => r.id * 10), 10);
    assert.equal(p.borrowed, 0);
    await assert.rejects(p.use(() => {
      throw new Error('inside use');
    }), /inside use/);
    assert.equal(p.borrowed, 0);
    assert.equal(p.available, 1);
    await p.close();
  });

  test('release of a resource not borrowed is a CONFLICT', async () => {
    const { p } = pool({ max: 1 });
    const r = await p.acquire();
    p.release(r);
    assert.throws(() => p.release(r), { code: ErrorCodes.CONFLICT });
    assert.throws(() => p.release({ id: 99 }), { code: ErrorCodes.CONFLICT });
    await p.close();
  });

  test('discard destroys a broken resource and min is made again', async () => {
    const { p, f } = pool({ min: 1, max: 1 });
    const r = await p.acquire();
    p.discard(r);
    await flushMicrotasks();
    assert.deepEqual(f.destroyed, [r.id]);
    assert.equal(p.available, 1);
    assert.notEqual(await p.acquire(), r);
    await p.close({ force: true });
  });

  test('drain resolves once everything is released', async () => {
    const { p } = pool({ max: 2 });
    const a = await p.acquire();
    let drained = false;
    const draining = p.drain().then(() => (drained = true));
    await flushMicrotasks();
    assert.equal(drained, false);
    p.release(a);
    await draining;
    await p.close();
  });

  test('close rejects waiters with CLOSED, destroys idle ones at once and borrowed ones on release; idempotent', async () => {
    const { p, f } = pool({ min: 3, max: 3 });
    const [a, b] = [await p.acquire(), await p.acquire()];
    await flushMicrotasks();
    const idle = f.made.find((r) => r !== a && r !== b)!;
    const closing = p.close();
    assert.equal(p.close(), closing);
    assert.equal(p.status, 'stopping');
    assert.equal((await rejectionOf(p.acquire())).code, ErrorCodes.CLOSED);
    await flushMicrotasks();
    assert.deepEqual(f.destroyed, [idle.id], 'the idle one goes at once');
    p.release(b);
    await flushMicrotasks();
    assert.deepEqual(f.destroyed, [idle.id, b.id], 'a borrowed one goes when released');
    p.release(a);
    await closing;
    assert.equal(p.status, 'stopped');
    assert.equal(f.destroyed.length, 3);
  });

  test('close rejects waiting acquirers with CLOSED', async () => {
    const { p } = pool({ max: 1 });
    const held = await p.acquire();
    const waiter = rejectionOf(p.acquire());
    const closing = p.close();
    assert.equal((await waiter).code, ErrorCodes.CLOSED);
    p.release(held);
    await closing;
  });

  test('close({ force }) destroys borrowed resources at once; their later release is ignored', async () => {
    const { p, f } = pool({ max: 1 });
    const a = await p.acquire();
    await p.close({ force: true });
    assert.deepEqual(f.destroyed, [a.id]);
    p.release(a);
    assert.equal(p.status, 'stopped');
  });

  test('a resource still being made when the pool closes is destroyed when it arrives', async () => {
    let finish!: (r: Res) => void;
    const destroyed: number[] = [];
    const p: ResourcePool<Res> = createResourcePool<Res>({
      create: () => new Promise<Res>((resolve) => (finish = resolve)),
      destroy: (r) => void destroyed.push(r.id),
      max: 1,
      clock: new ManualClock(),
    });
    const waiting = rejectionOf(p.acquire());
    await flushMicrotasks();
    assert.equal(p.size, 1);
    const closing = p.close();
    assert.equal((await waiting).code, ErrorCodes.CLOSED);
    finish({ id: 7 });
    await closing;
    assert.deepEqual(destroyed, [7]);
  });

  test('await using closes the pool', async () => {
    const f = factory();
    {
      await using p = createResourcePool<Res>({ create: f.create, destroy: f.destroy, min: 1, max: 1, clock: new ManualClock() });
      await p.use(() => undefined);
    }
    assert.deepEqual(f.destroyed, [1]);
  });
});
