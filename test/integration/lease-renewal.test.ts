// Which leases a node renews: the tasks its process holds, named by id, and those whose outcome it is still writing.
//
// Regression: the heartbeat and the sweep's renewal extended every `running` task of the node id. A process
// restarted with the node id of one that crashed (a stable `nodeId`: a pod name that survives a container restart)
// so renewed the leases of the tasks its predecessor held as its own, for as long as it ran anything: they stayed
// `running` forever. Now the crashed process's task comes back at the end of its lease (one attempt added) and
// runs, while the new process's own long task keeps its lease and runs once. A ManualClock drives the leases; a
// timer armed for a time already passed fires at the next `advance`, so waits nudge the clock. Each store is tried
// (PostgreSQL when TROUPE_TEST_PG_URL is set).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createTaskId } from '../../src/ids.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { SettleOp, Store } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import { latch } from '../helpers/latch.ts';
import { advanceInSteps, recovered, waitNudging, watchLeases } from '../helpers/lease-clock.ts';
import { PG_SKIP, pgUrl, trackSchemas } from '../helpers/pg.ts';
import { tempDb } from '../helpers/temp-db.ts';

const T0 = Date.UTC(2026, 0, 1);
/** The default lease; its heartbeat is every 10 s and the recovery sweep every 15 s. */
const LEASE = 30_000;
const STEP = 5_000;
/** How far the clock is moved in the tests: four leases. */
const SPAN = 4 * LEASE;
const NODE_ID = 'n1';

/** A runtime named NODE_ID on `store`, with one task, `work`, that hands `fn` the input's `who`. */
function nodeRuntime(store: Store, clock: ManualClock, fn: (who: string) => unknown): Promise<Runtime> {
  return createRuntime({
    store,
    clock,
    nodeId: NODE_ID,
    concurrency: 4,
    maintenance: false,
    tasks: { work: { run: (input: unknown) => fn((input as { who: string }).who) } },
  });
}

const schemas = trackSchemas('lease_renewal');
after(() => schemas.dropAll());

/**
 * Handles on one store, one per process: `handle()` gives a new connection to the same SQLite file or PostgreSQL
 * schema each time, or the one memory store (`shared`: closing a handle closes them all).
 */
interface SharedStore {
  handle(): Store;
  shared: boolean;
}

const STORES: Array<{ name: string; store: (clock: ManualClock) => SharedStore; skip?: string }> = [
  {
    name: 'memory',
    store: (clock) => {
      const store = createMemoryStore({ clock });
      return { handle: () => store, shared: true };
    },
  },
  {
    name: 'SQLite',
    store: (clock) => {
      const file = tempDb('lease-renewal');
      return { handle: () => createSqliteStore(file, { clock }), shared: false };
    },
  },
  {
    name: 'PostgreSQL',
    store: (clock) => {
      const schema = schemas.next();
      return { handle: () => createPostgresStore(pgUrl(), { schema, clock }), shared: false };
    },
    ...(PG_SKIP ? { skip: PG_SKIP } : {}),
  },
];

function newTask(clock: ManualClock, input: unknown): NewTask {
  const now = clock.now();
  return { id: createTaskId(now), name: 'work', input, priority: 0, weight: 1, maxAttempts: 1, createdAt: now, runAt: now };
}

for (const { name, store: sharedStore, skip } of STORES) {
  describe(`lease renewal, ${name} store`, skip ? { skip } : {}, () => {
    it('a process restarted with the node id of a crashed one gets the crashed one\'s task back after its lease, and keeps its own', async () => {
      const clock = new ManualClock(T0);
      const { handle, shared } = sharedStore(clock);
      // The crashed process: it claimed a task as `n1`, then died without a word.
      const first = handle();
      await first.open();
      const orphan = newTask(clock, { who: 'orphan' });
      await first.enqueue([orphan]);
      const [claimed] = await first.claim({ owner: NODE_ID, limit: 1, leaseMs: LEASE, now: clock.now() });
      assert.equal(claimed?.id, orphan.id);
      if (!shared) await first.close();

      const { store, busy, swept } = watchLeases(handle());
      const gate = latch();
      const runs: string[] = [];
      const rt = await nodeRuntime(store, clock, async (who) => {
        runs.push(who);
        if (who === 'own') await gate.opened;
        return who;
      });
      try {
        await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
        // The restarted process is busy with a long task of its own the whole time.
        const own = await rt.enqueue('work', { who: 'own' });
        await waitNudging(clock, () => runs.includes('own'), 'the own task running');
        await advanceInSteps(clock, busy, SPAN, STEP);
        await waitNudging(clock, async () => (await store.get(orphan.id))?.state === 'succeeded', 'the crashed process\'s task recovered and run');

        const back = await store.get(orphan.id);
        assert.equal(back?.attempts, 2, 'claimed twice: by the crashed process, then once more');
        assert.equal(back?.maxAttempts, 2, 'the first lost run adds an attempt');
        assert.equal(back?.result, 'orphan');
        const history = await store.history(orphan.id);
        assert.ok(history.some((h) => h.reason === 'lease expired (one attempt added)'), JSON.stringify(history));
        assert.equal(recovered(rt), 1, 'one task recovered');

        // The own task ran on through four leases: its lease renewed, never taken back.
        const mine = await store.get(own);
        assert.equal(mine?.state, 'running');
        assert.equal(mine?.attempts, 1);
        assert.ok((mine?.leaseUntil ?? 0) > clock.now(), `the own task's lease (${mine?.leaseUntil}) is alive at ${clock.now()}`);
        gate.open();
        await waitNudging(clock, async () => (await store.get(own))?.state === 'succeeded', 'the own task succeeded');
        await rt.flush();
        assert.equal((await store.get(own))?.attempts, 1, 'one attempt');
        assert.deepEqual(runs, ['own', 'orphan'], 'each task ran once');
      } finally {
        gate.open();
        await rt.close({ timeout: 2000 });
      }
    });

    it('tasks whose outcome is still being written keep their leases until it is written', async () => {
      const clock = new ManualClock(T0);
      const second = sharedStore(clock).handle();
      // Every outcome write waits for the gate: the first task's is in flight, the second's queued behind it.
      const gate = latch();
      let settles = 0;
      const { store, busy, swept } = watchLeases(second, {
        settle: async (ops: readonly SettleOp[]) => {
          settles++;
          await gate.opened;
          return second.settle(ops);
        },
      });
      const runs: string[] = [];
      const rt = await nodeRuntime(store, clock, (who) => void runs.push(who));
      try {
        await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
        const a = await rt.enqueue('work', { who: 'a' });
        await waitNudging(clock, () => settles === 1, 'the first outcome being written');
        const b = await rt.enqueue('work', { who: 'b' });
        await waitNudging(clock, () => runs.length === 2, 'the second task run');
        await advanceInSteps(clock, busy, SPAN, STEP);
        assert.equal(settles, 1, 'the first write still waits');
        assert.equal(recovered(rt), 0, 'nothing taken back while its outcome waits');
        for (const id of [a, b]) {
          const task = await store.get(id);
          assert.equal(task?.state, 'running');
          assert.ok((task?.leaseUntil ?? 0) > clock.now(), `the lease of ${id} (${task?.leaseUntil}) is alive at ${clock.now()}`);
        }
        gate.open();
        await rt.flush();
        for (const id of [a, b]) {
          const task = await store.get(id);
          assert.equal(task?.state, 'succeeded');
          assert.equal(task?.attempts, 1);
        }
        assert.deepEqual(runs, ['a', 'b'], 'each task ran once');
      } finally {
        gate.open();
        await rt.close({ timeout: 2000 });
      }
    });
  });
}
