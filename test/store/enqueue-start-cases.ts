/**
 * The start in the insert of `Store.enqueueAndClaim`, as the SQL stores do it (start-plan.ts): the batch's own due
 * tasks start in claim order, within the claim's limit, names and caps, when nothing of those names was due before;
 * otherwise the batch is enqueued and then claimed. A started task reads back as the claim would have left it.
 * Shared by test/store/sqlite-enqueue-start.test.ts and test/store/postgres-enqueue-start.test.ts.
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { createTaskId } from '../../src/ids.ts';
import type { ClaimRequest, Store, Strategy } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';

export const NOW = Date.UTC(2026, 11, 6, 12);
let seq = 0;

export function newTask(fields: Partial<NewTask> = {}): NewTask {
  return { id: createTaskId(NOW + seq++), name: 'job', input: { n: seq, nested: { b: 1, a: [2] } }, priority: 0, weight: 1, maxAttempts: 3, createdAt: NOW, runAt: NOW, ...fields };
}

export function request(fields: Partial<ClaimRequest> = {}): ClaimRequest {
  return { owner: 'node-a', limit: 8, leaseMs: 30_000, now: NOW + 5, names: ['job', 'other'], ...fields };
}

/** Why: a test file's fresh stores, made by `make` and opened; all closed after the file's tests. */
export function openedStores<S extends Store>(make: (strategy: Strategy) => S): (strategy?: Strategy) => Promise<S> {
  const open: S[] = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close()));
  });
  return async (strategy = 'priority') => {
    const s = make(strategy);
    open.push(s);
    await s.open();
    return s;
  };
}

/** Why: one set of cases for every store that starts tasks in its insert; `store` opens a fresh, empty one. */
export function enqueueStartCases(store: (strategy: Strategy) => Promise<Store>): void {
    it('starts the batch\'s due tasks in claim order up to the limit; each reads back as the claim left it', async () => {
      const s = await store('priority');
      const batch = [newTask({ priority: 1 }), newTask({ priority: 5 }), newTask({ runAt: NOW + 60_000 }), newTask({ priority: 5, options: { timeoutMs: 900 } }), newTask()];
      const { results, claimed } = await s.enqueueAndClaim!(batch, request({ limit: 3 }));
      assert.deepEqual(results, [
        { id: batch[0]!.id, created: true, state: 'queued' },
        { id: batch[1]!.id, created: true, state: 'queued' },
        { id: batch[2]!.id, created: true, state: 'scheduled' },
        { id: batch[3]!.id, created: true, state: 'queued' },
        { id: batch[4]!.id, created: true, state: 'queued' },
      ]);
      // priority first, then time and id: the two of priority 5 in their id order, then the one of priority 1
      assert.deepEqual(claimed.map((t) => t.id), [batch[1]!.id, batch[3]!.id, batch[0]!.id]);
      for (const t of claimed) {
        assert.deepEqual(t, await s.get(t.id));
        assert.equal(t.state, 'running');
        assert.equal(t.owner, 'node-a');
        assert.equal(t.leaseUntil, NOW + 5 + 30_000);
        assert.equal(t.startedAt, NOW + 5);
        assert.equal(t.attempts, 1);
        assert.deepEqual((await s.history(t.id)).map((h) => [h.from, h.to, h.at, h.attempt]), [
          [null, 'queued', NOW, 0],
          ['queued', 'running', NOW + 5, 1],
        ]);
      }
      assert.equal((await s.get(batch[4]!.id))?.state, 'queued');
      assert.equal((await s.get(batch[2]!.id))?.state, 'scheduled');
      // the one left queued is the claim's next; a started one is not claimed again
      assert.deepEqual((await s.claim(request({ limit: 10 }))).map((t) => t.id), [batch[4]!.id]);
      const counts = await s.counts(NOW + 5);
      assert.equal(counts.byState.running, 4);
      assert.equal(counts.byState.scheduled, 1);
    });

    it('keeps to the claim\'s names, exclusions and per-name caps', async () => {
      const s = await store('fifo');
      const batch = [
        newTask({ name: 'job' }),
        newTask({ name: 'job' }),
        newTask({ name: 'job' }),
        newTask({ name: 'other' }),
        newTask({ name: 'paused' }),
        newTask({ name: 'elsewhere' }),
      ];
      const { claimed } = await s.enqueueAndClaim!(batch, request({ names: ['job', 'other', 'paused'], exclude: ['paused'], perName: { job: 2 } }));
      assert.deepEqual(claimed.map((t) => t.id), [batch[0]!.id, batch[1]!.id, batch[3]!.id]);
      const left = await s.list({ state: ['queued'] });
      assert.deepEqual(left.tasks.map((t) => t.id).sort(), [batch[2]!.id, batch[4]!.id, batch[5]!.id].sort());
    });

    it('while a task of the claim\'s names was due before, the batch is enqueued and then claimed: the older one first', async () => {
      const s = await store('fifo');
      const old = newTask({ name: 'other' });
      await s.enqueue([old]);
      const batch = [newTask(), newTask()];
      const { results, claimed } = await s.enqueueAndClaim!(batch, request({ limit: 2 }));
      assert.deepEqual(results.map((r) => [r.created, r.state]), [[true, 'queued'], [true, 'queued']]);
      assert.deepEqual(claimed.map((t) => t.id), [old.id, batch[0]!.id]);
      for (const t of claimed) assert.deepEqual(t, await s.get(t.id));
      assert.equal((await s.get(batch[1]!.id))?.state, 'queued');
      // a due task of a name outside the claim does not hold the batch back
      const s2 = await store('fifo');
      const elsewhere = newTask({ name: 'elsewhere' });
      await s2.enqueue([elsewhere]);
      const started = newTask();
      assert.deepEqual((await s2.enqueueAndClaim!([started], request())).claimed.map((t) => t.id), [started.id]);
      assert.equal((await s2.get(elsewhere.id))?.state, 'queued');
    });

    it('a task whose id or key is taken is neither created nor started', async () => {
      const s = await store('priority');
      const first = newTask({ key: 'order-1' });
      await s.enqueue([first]);
      assert.deepEqual((await s.claim(request({ limit: 1 }))).map((t) => t.id), [first.id]);
      const again = newTask({ key: 'order-1' });
      const fresh = newTask();
      const { results, claimed } = await s.enqueueAndClaim!([again, fresh, { ...fresh, input: 'repeat' }], request());
      assert.deepEqual(results, [
        { id: first.id, created: false, state: 'running' },
        { id: fresh.id, created: true, state: 'queued' },
        // the repeat finds the stored task, which its first copy started
        { id: fresh.id, created: false, state: 'running' },
      ]);
      assert.deepEqual(claimed.map((t) => t.id), [fresh.id]);
      assert.equal(await s.get(again.id), undefined);
      assert.deepEqual((await s.get(fresh.id))?.input, fresh.input);
    });

    it('lifo starts the newest of the batch first', async () => {
      const s = await store('lifo');
      const batch = [newTask(), newTask(), newTask()];
      const { claimed } = await s.enqueueAndClaim!(batch, request({ limit: 2 }));
      assert.deepEqual(claimed.map((t) => t.id), [batch[2]!.id, batch[1]!.id]);
    });
}
