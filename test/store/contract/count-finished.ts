/** Contract: countFinished counts final tasks by the time they ended, per final state, both window ends included. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskId } from '../../../src/ids.ts';
import type { SettleOp } from '../../../src/store/store.ts';
import { OWNER, withStore, type MakeStore } from './context.ts';

const ERROR = { name: 'Error', message: 'boom' };
const ZERO = { succeeded: 0, failed: 0, timed_out: 0, cancelled: 0 };

export function countFinishedContract(makeStore: MakeStore): void {
  describe('countFinished', () => {
    it('counts final tasks finished inside the window, its ends included, by state; nothing else', () =>
      withStore(makeStore, {}, async ({ store, clock, add, claim, settleOne }) => {
        assert.ok(store.countFinished, 'the built-in stores have countFinished()');
        const countFinished = store.countFinished.bind(store);
        const from = clock.now() + 10_000;
        const to = from + 60_000;
        assert.deepEqual(await countFinished(from, to), ZERO, 'an empty store');

        /** Enqueues a task of its own name, claims it and applies `op` to it at `at`. */
        const end = async (name: string, type: 'succeeded' | 'failed' | 'timed_out' | 'retry', at: number): Promise<TaskId> => {
          const t = await add({ name });
          const [c] = await claim({ names: [name], limit: 1 });
          assert.equal(c?.id, t.id);
          const base = { id: t.id, owner: OWNER, attempt: c.attempts, at };
          const op: SettleOp =
            type === 'succeeded'
              ? { ...base, type, result: 1 }
              : type === 'retry'
                ? { ...base, type, error: ERROR, runAt: to + 3_600_000 }
                : { ...base, type, error: ERROR };
          assert.equal(await settleOne(op), true);
          return t.id;
        };

        await end('at-start', 'succeeded', from);
        await end('at-end', 'failed', to);
        await end('inside', 'timed_out', from + 30_000);
        const cancelled = await add({ name: 'cancelled' });
        assert.equal((await store.cancel(cancelled.id, to, 'test')).cancelled, true);
        await end('just-before', 'succeeded', from - 1);
        await end('just-after', 'succeeded', to + 1);
        // Not final: waiting, running, waiting for a retry, and a dead letter put back by retry().
        await add({ name: 'queued' });
        await add({ name: 'running' });
        await claim({ names: ['running'], limit: 1 });
        await end('retrying', 'retry', from + 20_000);
        const revived = await end('revived', 'failed', from + 40_000);
        assert.equal((await store.retry(revived, from + 50_000))?.state, 'queued');

        assert.deepEqual(await countFinished(from, to), { succeeded: 1, failed: 1, timed_out: 1, cancelled: 1 });
        assert.deepEqual(await countFinished(from, from), { ...ZERO, succeeded: 1 }, 'a window of one instant');
        assert.deepEqual(await countFinished(to, to), { ...ZERO, failed: 1, cancelled: 1 });
        assert.deepEqual(await countFinished(from - 1, to + 1), { succeeded: 3, failed: 1, timed_out: 1, cancelled: 1 });
        assert.deepEqual(await countFinished(from + 1, to - 1), { ...ZERO, timed_out: 1 });
        assert.deepEqual(await countFinished(to + 2, to + 3_600_000), ZERO, 'after every end');
        assert.deepEqual(await countFinished(0, from - 2), ZERO, 'before every end');
      }));
  });
}
