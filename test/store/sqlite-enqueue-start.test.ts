/**
 * The SQLite store's enqueueAndClaim (queries/enqueue-start.ts): when nothing of the claim's names was due before,
 * the batch's own due tasks are inserted `running`, in claim order, within the claim's limit, names and caps; the
 * row a start writes is the row enqueue-then-claim leaves. Otherwise the batch is enqueued and then claimed.
 * (The store contract checks the verb's meaning; this file, the start in the insert.)
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTaskId } from '../../src/ids.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { ClaimRequest, Store, Strategy } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import { tempDb } from '../helpers/temp-db.ts';

const NOW = Date.UTC(2026, 11, 7, 1);
let seq = 0;

function newTask(fields: Partial<NewTask> = {}): NewTask {
  return { id: createTaskId(NOW + seq++), name: 'job', input: { n: seq, nested: { b: 1, a: [2] } }, priority: 0, weight: 1, maxAttempts: 3, createdAt: NOW, runAt: NOW, ...fields };
}

function request(fields: Partial<ClaimRequest> = {}): ClaimRequest {
  return { owner: 'node-a', limit: 8, leaseMs: 30_000, now: NOW + 5, names: ['job', 'other'], ...fields };
}

/** What a row holds besides its id and input: state, lease, history, and the room it keeps for its end. */
const ROW_SQL = `SELECT state, attempts, owner, lease_until, started_at, updated_at, created_at, run_at, progress,
  length(room) AS room, replace(history, ?, '<id>') AS history FROM tasks WHERE id = ?`;

describe('sqlite store: enqueue and start in the insert', () => {
  const open: Array<Store & AsyncDisposable> = [];
  const store = async (strategy: Strategy = 'priority', file = tempDb('enqstart')): Promise<Store & AsyncDisposable & { file: string }> => {
    const s = Object.assign(createSqliteStore(file, { strategy }), { file });
    open.push(s);
    await s.open();
    return s;
  };
  after(async () => {
    await Promise.all(open.map((s) => s.close()));
  });

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
    // the one left queued is the claim's next; a started one is not claimed again
    assert.deepEqual((await s.claim(request({ limit: 10 }))).map((t) => t.id), [batch[4]!.id]);
    const counts = await s.counts(NOW + 5);
    assert.equal(counts.byState.running, 4);
    assert.equal(counts.byState.scheduled, 1);
    assert.equal(counts.byState.queued, 0);
  });

  it('writes the row enqueue-then-claim writes, and it ends the same way', async () => {
    const started = await store('fifo');
    const claimedAfter = await store('fifo');
    const t = newTask();
    assert.deepEqual((await started.enqueueAndClaim!([t], request())).claimed.map((r) => r.id), [t.id]);
    await claimedAfter.enqueue([t]);
    assert.deepEqual((await claimedAfter.claim(request())).map((r) => r.id), [t.id]);
    const rows = async (s: { file: string }) => {
      const db = new Database(s.file, { readonly: true });
      try {
        return db.prepare(ROW_SQL).get(t.id, t.id);
      } finally {
        db.close();
      }
    };
    assert.deepEqual(await rows(started), await rows(claimedAfter));
    for (const s of [started, claimedAfter]) {
      assert.deepEqual(await s.settle([{ type: 'succeeded', id: t.id, owner: 'node-a', attempt: 1, at: NOW + 9, result: { ok: 1 } }]), [true]);
    }
    assert.deepEqual(await rows(started), await rows(claimedAfter));
    assert.deepEqual(await started.get(t.id), await claimedAfter.get(t.id));
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
    // a delayed task that came due counts as due; a due task of a name outside the claim does not
    const s2 = await store('priority');
    const due = newTask({ runAt: NOW + 2 });
    await s2.enqueue([due, newTask({ name: 'elsewhere' })]);
    const fresh = newTask({ priority: 9 });
    assert.deepEqual((await s2.enqueueAndClaim!([fresh], request({ limit: 1 }))).claimed.map((t) => t.id), [fresh.id], 'more urgent: first either way');
    const s3 = await store('fifo');
    await s3.enqueue([due]);
    const later = newTask({ createdAt: NOW + 3, runAt: NOW + 3 });
    assert.deepEqual((await s3.enqueueAndClaim!([later], request({ limit: 1 }))).claimed.map((t) => t.id), [due.id]);
    assert.deepEqual((await s3.history(due.id)).map((h) => h.to), ['scheduled', 'queued', 'running']);
    const s4 = await store('fifo');
    const elsewhere = newTask({ name: 'elsewhere' });
    await s4.enqueue([elsewhere]);
    const started = newTask();
    assert.deepEqual((await s4.enqueueAndClaim!([started], request())).claimed.map((t) => t.id), [started.id]);
    assert.equal((await s4.get(elsewhere.id))?.state, 'queued');
  });

  it('a task whose id or key is taken is neither created nor started; the claim takes the next one instead', async () => {
    const s = await store('fifo');
    const first = newTask({ key: 'order-1' });
    await s.enqueue([first]);
    assert.deepEqual((await s.claim(request({ limit: 1 }))).map((t) => t.id), [first.id]);
    const again = newTask({ key: 'order-1' });
    const fresh = newTask();
    const next = newTask();
    const { results, claimed } = await s.enqueueAndClaim!([again, fresh, { ...fresh, input: 'repeat' }, next], request({ limit: 1, perName: { job: 1 } }));
    // `again` comes first in claim order and is picked; its key is taken, so the claim after the insert takes `fresh`
    assert.deepEqual(results, [
      { id: first.id, created: false, state: 'running' },
      { id: fresh.id, created: true, state: 'queued' },
      // the repeat finds the stored task as the enqueue left it, before the claim
      { id: fresh.id, created: false, state: 'queued' },
      { id: next.id, created: true, state: 'queued' },
    ]);
    assert.deepEqual(claimed.map((t) => t.id), [fresh.id]);
    assert.deepEqual(claimed[0], await s.get(fresh.id));
    assert.equal(await s.get(again.id), undefined);
    assert.deepEqual((await s.get(fresh.id))?.input, fresh.input);
    assert.equal((await s.get(next.id))?.state, 'queued');
    // a picked task that was there already: the limit it leaves goes to the claim, which takes the next in order
    const taken = newTask();
    await s.enqueue([taken]);
    await s.claim(request({ limit: 10 }));
    const after = newTask();
    const second = await s.enqueueAndClaim!([taken, after], request({ limit: 1, perName: { job: 1 } }));
    assert.deepEqual(second.results.map((r) => [r.id, r.created]), [[taken.id, false], [after.id, true]]);
    assert.deepEqual(second.claimed.map((t) => t.id), [after.id]);
    assert.deepEqual(second.claimed[0], await s.get(after.id));
    assert.deepEqual((await s.history(after.id)).map((h) => h.to), ['queued', 'running']);
  });

  it('a child whose flow parent matched an existing key is not created, so not started', async () => {
    const s = await store('fifo');
    const parent = newTask({ key: 'flow-1', flow: { pending: 1, policy: 'fail' } });
    const child = newTask({ parentId: parent.id });
    await s.enqueue([parent, child]);
    const parentAgain = newTask({ key: 'flow-1', flow: { pending: 1, policy: 'fail' } });
    const childAgain = newTask({ parentId: parentAgain.id });
    const { results, claimed } = await s.enqueueAndClaim!([parentAgain, childAgain], request());
    assert.deepEqual(results.map((r) => [r.id, r.created]), [[parent.id, false], [parent.id, false]]);
    assert.deepEqual(claimed.map((t) => t.id), [child.id], 'the claim takes the first flow\'s child');
    assert.equal(await s.get(childAgain.id), undefined);
  });

  it('lifo starts the newest of the batch first; weighted-random enqueues and then claims', async () => {
    const s = await store('lifo');
    const batch = [newTask(), newTask(), newTask()];
    const { claimed } = await s.enqueueAndClaim!(batch, request({ limit: 2 }));
    assert.deepEqual(claimed.map((t) => t.id), [batch[2]!.id, batch[1]!.id]);
    const w = await store('weighted-random');
    const one = newTask();
    const res = await w.enqueueAndClaim!([one], request());
    assert.deepEqual(res.results, [{ id: one.id, created: true, state: 'queued' }]);
    assert.deepEqual(res.claimed.map((t) => t.id), [one.id]);
    assert.deepEqual(res.claimed[0], await w.get(one.id));
  });
});
