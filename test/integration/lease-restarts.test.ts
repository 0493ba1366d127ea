// Leases across the restart of an actor.
//
// - A tracker that crashed and was restarted by its supervisor knew nothing of the tasks the process still held:
//   it armed no heartbeat until the next start, and its own sweep took back a long task still running here after
//   its lease (the task ran twice at once).
//
// A ManualClock drives the leases (default lease 30 s: heartbeat 10 s, sweep 15 s). Each store is tried
// (PostgreSQL when TROUPE_TEST_PG_URL is set).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { Store } from '../../src/store/store.ts';
import { latch } from '../helpers/latch.ts';
import { advanceInSteps, recovered, waitNudging, watchLeases } from '../helpers/lease-clock.ts';
import { PG_SKIP, pgUrl, trackSchemas } from '../helpers/pg.ts';
import { tempDb } from '../helpers/temp-db.ts';

const T0 = Date.UTC(2026, 0, 1);
const LEASE = 30_000;
const STEP = 5_000;
/** Four leases. */
const SPAN = 4 * LEASE;
const NODE_ID = 'n1';

const schemas = trackSchemas('lease_restarts');
after(() => schemas.dropAll());

const STORES: Array<{ name: string; store: (clock: ManualClock) => Store; skip?: string }> = [
  { name: 'memory', store: (clock) => createMemoryStore({ clock }) },
  { name: 'SQLite', store: (clock) => createSqliteStore(tempDb('lease-restarts'), { clock }) },
  {
    name: 'PostgreSQL',
    store: (clock) => createPostgresStore(pgUrl(), { schema: schemas.next(), clock }),
    ...(PG_SKIP ? { skip: PG_SKIP } : {}),
  },
];

/** Crashes the actor at `address` with a message it cannot read, and waits for its supervisor to restart it. */
async function crash(rt: Runtime, address: 'tracker' | 'executor'): Promise<void> {
  const restarted = new Promise<void>((resolve) => {
    const off = rt.on('actor.restarted', (e) => {
      if (e.address !== address) return;
      off();
      resolve();
    });
  });
  const poison = (): never => {
    throw new Error('poison');
  };
  if (address === 'tracker') rt.bus.tell('test', 'tracker', { type: 'tracker.query', query: { kind: 'get', get id() { return poison(); } } as never, replyTo: 'nobody' });
  else rt.bus.tell('test', 'executor', { type: 'executor.paused', get names() { return poison(); }, groups: [] } as never);
  await restarted;
}

for (const { name, store: makeStore, skip } of STORES) {
  describe(`leases across restarts, ${name} store`, skip ? { skip } : {}, () => {
    it('a restarted tracker renews the leases of the tasks the process still runs', async () => {
      const clock = new ManualClock(T0);
      const { store, busy, swept } = watchLeases(makeStore(clock));
      const gate = latch();
      const runs: string[] = [];
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false,
        tasks: { work: { run: async (input: unknown) => { runs.push((input as { who: string }).who); await gate.opened; return 'done'; } } },
      });
      try {
        await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
        const id = await rt.enqueue('work', { who: 'long' });
        await waitNudging(clock, () => runs.length === 1, 'the task running');
        await crash(rt, 'tracker');
        await advanceInSteps(clock, busy, SPAN, STEP);

        const task = await store.get(id);
        assert.equal(task?.state, 'running', 'never taken back');
        assert.equal(task?.attempts, 1);
        assert.ok((task?.leaseUntil ?? 0) > clock.now(), `its lease (${task?.leaseUntil}) is alive at ${clock.now()}`);
        assert.equal(recovered(rt), 0, 'the restarted tracker took nothing back');
        gate.open();
        await waitNudging(clock, async () => (await store.get(id))?.state === 'succeeded', 'the task succeeded');
        assert.deepEqual(runs, ['long'], 'it ran once');
      } finally {
        gate.open();
        await rt.close({ timeout: 2000 });
      }
    });
  });
}
