/**
 * Worker recycling on real worker threads: a thread is replaced after `maxTasks` jobs or above `maxRssMb` of
 * heap, and no job fails for it. Waits are on results, never on time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createThreadPool, type HandlerJob, type ThreadPoolOptions } from '../../src/pool/thread-pool.ts';
import { RetireBoard, RetireCheck, recyclingOn } from '../../src/pool/recycle.ts';

const LEAK = new URL('../fixtures/handlers/leak.ts', import.meta.url).href;

interface LeakResult { threadId: number; calls: number; heapMb: number }

let seq = 0;
function job(input: unknown): HandlerJob {
  const never = new AbortController();
  return { id: `r-${++seq}`, name: 'leak', handler: LEAK, input, attempt: 1, signal: never.signal, hardSignal: never.signal };
}

function pool(options: Partial<ThreadPoolOptions>) {
  return createThreadPool({ minThreads: 0, maxThreads: 1, idleTimeoutMs: 30_000, maxQueue: 1000, ...options });
}

describe('recycle board and check', () => {
  test('recycling is on only with a positive limit', () => {
    assert.equal(recyclingOn(undefined), false);
    assert.equal(recyclingOn({}), false);
    assert.equal(recyclingOn({ maxTasks: 0 }), false);
    assert.equal(recyclingOn({ maxTasks: 3 }), true);
    assert.equal(recyclingOn({ maxRssMb: 64 }), true);
  });

  test('a thread asks to retire once over maxTasks, and the balancer then skips it', () => {
    const board = new RetireBoard({ maxTasks: 3 }, 2);
    const check = new RetireCheck(board.data, 7);
    check.took(2);
    check.afterRun();
    assert.equal(board.find(7), -1);
    check.took(1);
    check.afterRun();
    const cell = board.find(7);
    assert.notEqual(cell, -1);
    const balance = board.balancer();
    const a = { id: 7, currentUsage: 0 } as never;
    const b = { id: 8, currentUsage: 0 } as never;
    assert.equal(balance({} as never, [a, b]), b);
    assert.equal(balance({} as never, [a]), null);
    board.clear(cell);
    assert.equal(balance({} as never, [a, b]), a);
  });

  test('a thread whose heap is above maxRssMb asks to retire', () => {
    const board = new RetireBoard({ maxRssMb: 1 }, 1);
    const check = new RetireCheck(board.data, 9);
    check.afterRun();
    assert.notEqual(board.find(9), -1);
  });
});

describe('recycling threads', { timeout: 60_000 }, () => {
  test('maxTasks 5 on one thread: 20 jobs all succeed on at least 3 threads', async () => {
    const p = pool({ recycle: { maxTasks: 5 } });
    try {
      const results = (await Promise.all(Array.from({ length: 20 }, () => p.run(job({ mb: 0 }))))) as LeakResult[];
      assert.equal(results.length, 20);
      const threads = new Set(results.map((r) => r.threadId));
      assert.ok(threads.size >= 3, `jobs ran on ${threads.size} threads`);
      // A batch is capped at maxTasks, so no thread runs 2 × maxTasks jobs.
      for (const r of results) assert.ok(r.calls < 10, `a thread made ${r.calls} calls`);
      assert.ok(p.stats.recycled >= 2, `recycled ${p.stats.recycled}`);
      assert.equal(p.stats.completed, 20);
    } finally {
      await p.close();
    }
  });

  test('jobs sent one after another also move to a fresh thread after maxTasks', async () => {
    const p = pool({ recycle: { maxTasks: 2 } });
    try {
      const results: LeakResult[] = [];
      for (let i = 0; i < 6; i++) results.push((await p.run(job({ mb: 0 }))) as LeakResult);
      assert.deepEqual(results.map((r) => r.calls), [1, 2, 1, 2, 1, 2]);
      assert.equal(new Set(results.map((r) => r.threadId)).size, 3);
      assert.equal(p.stats.recycled, 3);
    } finally {
      await p.close();
    }
  });

  test('a leaking handler with maxRssMb 64: 30 jobs succeed, the thread is recycled, the heap stays bounded', async () => {
    const p = pool({ recycle: { maxRssMb: 64 } });
    try {
      const results = (await Promise.all(Array.from({ length: 30 }, () => p.run(job({ mb: 4 }))))) as LeakResult[];
      assert.equal(results.length, 30);
      assert.ok(p.stats.recycled > 0, 'no thread was recycled');
      // 30 × 4 MB kept on one thread would be 120 MB; a retiring thread ends its run, one batch (≤ 16 × 4 MB) past the line.
      const most = Math.max(...results.map((r) => r.heapMb));
      assert.ok(most < 64 + 16 * 4 + 16, `a thread's heap reached ${most} MB`);
      assert.ok(new Set(results.map((r) => r.threadId)).size >= 2);
    } finally {
      await p.close();
    }
  });

  test('with two threads and a deep queue, every job succeeds while threads are replaced', async () => {
    const p = pool({ maxThreads: 2, maxBatch: 4, recycle: { maxTasks: 3 } });
    try {
      const results = (await Promise.all(Array.from({ length: 24 }, () => p.run(job({ mb: 0 }))))) as LeakResult[];
      assert.equal(results.length, 24);
      for (const r of results) assert.ok(r.calls < 6, `a thread made ${r.calls} calls`);
      assert.ok(p.stats.recycled >= 4, `recycled ${p.stats.recycled}`);
    } finally {
      await p.close();
    }
    assert.equal(p.status, 'stopped');
  });

  test('a forced close while a thread retires settles every job and stops', async () => {
    const p = pool({ recycle: { maxTasks: 1 } });
    const first = p.run(job({ mb: 0 }));
    const rest = Array.from({ length: 3 }, () => p.run(job({ mb: 0 })).then(() => 'ok', (e: { code?: string }) => e.code));
    await first;
    await p.close({ force: true });
    assert.equal(p.status, 'stopped');
    for (const outcome of await Promise.all(rest)) assert.ok(outcome === 'ok' || outcome === 'TROUPE_ERR_CLOSED', String(outcome));
  });
});
