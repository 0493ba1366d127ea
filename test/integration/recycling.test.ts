// Worker recycling through the whole runtime: a leaking handler is recycled at its heap threshold and every task
// still succeeds; a handler module that cannot load fails once, not in a retry loop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { createRuntime } from '../../src/runtime.ts';

const fixture = (p: string) => new URL(`../fixtures/${p}`, import.meta.url);

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return isTroupeError(error) ? error.code : `not a TroupeError: ${String(error)}`;
  }
}

describe('worker recycling', { timeout: 60_000 }, () => {
  it('a leaking handler is recycled at maxRssMb and every task succeeds', async () => {
    await using rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      concurrency: 8,
      pool: { maxThreads: 1, recycle: { maxRssMb: 64 } },
      tasks: { leak: { handler: fixture('handlers/leak.ts') } },
    });
    const results = await Promise.all(Array.from({ length: 30 }, () => rt.run<{ threadId: number; heapMb: number }>('leak', { mb: 4 })));
    assert.equal(results.length, 30);
    assert.ok(rt.poolStats().recycled > 0, 'no thread was recycled');
    assert.ok(new Set(results.map((r) => r.threadId)).size >= 2, 'every task ran on one thread');
    const failed = (await rt.list({ state: 'failed' })).tasks;
    assert.equal(failed.length, 0);
  });

  it('a handler module that does not load fails once with HANDLER_LOAD, even with retry attempts 5', async () => {
    await using rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      pool: { maxThreads: 1, recycle: { maxTasks: 2 } },
      tasks: {
        broken: { handler: fixture('handlers/load-throws.ts'), retry: { attempts: 5, delay: 0 } },
        add: { handler: fixture('handlers/add.ts') },
      },
    });
    const h = rt.start('broken');
    assert.equal(await codeOf(h.result), ErrorCodes.HANDLER_LOAD);
    const view = await rt.get(h.id);
    assert.equal(view?.state, 'failed');
    assert.equal(view?.attempts, 1);
    assert.equal(view?.error?.code, ErrorCodes.HANDLER_LOAD);
    // The pool is fine afterwards.
    assert.equal(await rt.run('add', { a: 1, b: 2 }), 3);
  });
});
