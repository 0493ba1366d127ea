/**
 * The memory store keeps no history array for a task that lives the usual life (queued → running → succeeded in
 * one attempt): its record's times imply it. These paths run on the memory store and on a real SQLite file with
 * the same clock and tasks; the histories must be equal, field by field, whether they leave the usual life early,
 * late, or never.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createTaskId } from '../../src/ids.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import type { NewTask, TaskRecord, Transition } from '../../src/task.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-memory-history-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const OWNER = 'n1';
const boom = { name: 'Error', message: 'boom' };

interface Life {
  store: Store;
  clock: ManualClock;
  task: NewTask;
  /** Claims the task (it must be due) and returns its record. */
  claim(): Promise<TaskRecord>;
}

/** Each path: what happens to one task, with the clock moving between steps so every time differs. */
const PATHS: Record<string, (l: Life) => Promise<void>> = {
  'queued only': async () => {},
  'queued → running': async (l) => {
    await l.claim();
  },
  'the usual life': async (l) => {
    await l.clock.advance(3);
    const t = await l.claim();
    await l.clock.advance(5);
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), result: 1 }]);
  },
  'fails': async (l) => {
    const t = await l.claim();
    await l.clock.advance(2);
    await l.store.settle([{ type: 'failed', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), error: boom }]);
  },
  'times out': async (l) => {
    const t = await l.claim();
    await l.clock.advance(2);
    await l.store.settle([{ type: 'timed_out', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), error: boom }]);
  },
  'retries, then succeeds': async (l) => {
    let t = await l.claim();
    await l.clock.advance(2);
    await l.store.settle([{ type: 'retry', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), runAt: l.clock.now() + 10, error: boom, reason: 'retry in 10 ms' }]);
    await l.clock.advance(10);
    t = await l.claim();
    await l.clock.advance(2);
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: OWNER, attempt: 2, at: l.clock.now(), result: 2 }]);
  },
  'released, then succeeds': async (l) => {
    let t = await l.claim();
    await l.clock.advance(2);
    await l.store.settle([{ type: 'release', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), reason: 'shutdown' }]);
    await l.clock.advance(2);
    t = await l.claim();
    await l.clock.advance(2);
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), result: 3 }]);
  },
  'lease expires, then succeeds': async (l) => {
    await l.claim();
    await l.clock.advance(1001);
    await l.store.recoverExpired(l.clock.now());
    await l.clock.advance(1);
    const t = await l.claim();
    await l.clock.advance(1);
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: OWNER, attempt: 2, at: l.clock.now(), result: 4 }]);
  },
  'cancelled while queued': async (l) => {
    await l.clock.advance(2);
    await l.store.cancel(l.task.id, l.clock.now(), 'not needed');
  },
  'cancelled while running': async (l) => {
    await l.claim();
    await l.clock.advance(2);
    await l.store.cancel(l.task.id, l.clock.now());
  },
  'fails, retried by hand, then succeeds': async (l) => {
    let t = await l.claim();
    await l.store.settle([{ type: 'failed', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), error: boom }]);
    await l.clock.advance(2);
    await l.store.retry(l.task.id, l.clock.now());
    await l.clock.advance(2);
    t = await l.claim();
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), result: 5 }]);
  },
  'a settle that does not apply leaves the usual life intact': async (l) => {
    const t = await l.claim();
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: 'someone-else', attempt: 1, at: l.clock.now(), result: 0 }]);
    await l.clock.advance(1);
    await l.store.settle([{ type: 'succeeded', id: t.id, owner: OWNER, attempt: 1, at: l.clock.now(), result: 6 }]);
  },
};

const START = 1_767_225_600_000;

async function historyOf(kind: 'memory' | 'sqlite', name: string, delayed: boolean, id: string): Promise<Transition[]> {
  const clock = new ManualClock(START);
  const file = path.join(dir, `${name.replace(/\W+/g, '-')}-${delayed}.db`);
  const store = kind === 'memory' ? createMemoryStore({ clock }) : createSqliteStore(file, { clock });
  await store.open();
  try {
    const now = clock.now();
    const task: NewTask = { id, name: 'job', input: null, priority: 0, weight: 1, maxAttempts: 3, createdAt: now, runAt: delayed ? now + 7 : now };
    await store.enqueue([task]);
    if (delayed) await clock.advance(7);
    const claim = async (): Promise<TaskRecord> => {
      const [t] = await store.claim({ owner: OWNER, limit: 1, leaseMs: 1000, now: clock.now() });
      assert.ok(t, `${name}: the task was claimable`);
      return t;
    };
    await PATHS[name]!({ store, clock, task, claim });
    return await store.history(task.id);
  } finally {
    await store.close();
  }
}

describe('memory store history (implied transitions)', () => {
  for (const name of Object.keys(PATHS)) {
    for (const delayed of [false, true]) {
      it(`${name}${delayed ? ' (enqueued delayed)' : ''}: the same history as the SQLite store`, async () => {
        // One id for both stores (ids hold randomness; the histories name their task).
        const id = createTaskId(START);
        const memory = await historyOf('memory', name, delayed, id);
        const sqlite = await historyOf('sqlite', name, delayed, id);
        assert.ok(memory.length > 0);
        assert.deepEqual(memory, sqlite);
      });
    }
  }

  it('a copy handed out cannot change the stored history', async () => {
    const clock = new ManualClock(1_767_225_600_000);
    await using store = createMemoryStore({ clock });
    const t: NewTask = { id: createTaskId(clock.now()), name: 'job', input: null, priority: 0, weight: 1, maxAttempts: 1, createdAt: clock.now(), runAt: clock.now() };
    await store.enqueue([t]);
    (await store.history(t.id))[0]!.at = 0;
    assert.equal((await store.history(t.id))[0]!.at, t.createdAt);
  });
});
