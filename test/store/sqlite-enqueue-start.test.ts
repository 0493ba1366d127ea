/**
 * The SQLite store's enqueueAndClaim (queries/enqueue-start.ts): the cases every store that starts tasks in its
 * insert shares (enqueue-start-cases.ts); the row a start writes is the row enqueue-then-claim leaves; a picked task
 * that is not inserted leaves its place to the claim right after. (The store contract checks the verb's meaning;
 * this file, the start in the insert.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { NOW, enqueueStartCases, newTask, openedStores, request } from './enqueue-start-cases.ts';

/** What a row holds besides its id and input: state, lease, history, and the room it keeps for its end. */
const ROW_SQL = `SELECT state, attempts, owner, lease_until, started_at, updated_at, created_at, run_at, progress,
  length(room) AS room, replace(history, ?, '<id>') AS history FROM tasks WHERE id = ?`;

describe('sqlite store: enqueue and start in the insert', () => {
  const store = openedStores((strategy) => {
    const file = tempDb('enqstart');
    return Object.assign(createSqliteStore(file, { strategy }), { file });
  });

  enqueueStartCases(store);

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

  it('a delayed task that came due holds the batch back as a queued one does', async () => {
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
    const later = newTask();
    const second = await s.enqueueAndClaim!([taken, later], request({ limit: 1, perName: { job: 1 } }));
    assert.deepEqual(second.results.map((r) => [r.id, r.created]), [[taken.id, false], [later.id, true]]);
    assert.deepEqual(second.claimed.map((t) => t.id), [later.id]);
    assert.deepEqual(second.claimed[0], await s.get(later.id));
    assert.deepEqual((await s.history(later.id)).map((h) => h.to), ['queued', 'running']);
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

  it('weighted-random enqueues and then claims', async () => {
    const w = await store('weighted-random');
    const one = newTask();
    const res = await w.enqueueAndClaim!([one], request());
    assert.deepEqual(res.results, [{ id: one.id, created: true, state: 'queued' }]);
    assert.deepEqual(res.claimed.map((t) => t.id), [one.id]);
    assert.deepEqual(res.claimed[0], await w.get(one.id));
  });
});
