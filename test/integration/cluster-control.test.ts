/**
 * Control state shared live between nodes of one store: schedules and paused names and groups. A change made on
 * one node applies on the others without a restart: on PostgreSQL at once (NOTIFY), on a SQLite file shared by
 * several processes at the next control check (every second), on a memory store shared in one process at once.
 * Two runtimes per store, one ManualClock for both; waits end on states, timeouts are only a safety net. A pause
 * the store refuses is reported: the promise `rt.pause` returns rejects, and the scheduler logs it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError, TroupeError } from '../../src/errors.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { Store } from '../../src/store/store.ts';
import { latch } from '../helpers/latch.ts';
import { PG_SKIP, schemaStoreUrl, trackSchemas } from '../helpers/pg.ts';
import { overrideStore } from '../helpers/store-override.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const schemas = trackSchemas('ctl');
after(() => schemas.dropAll());

/** Half a second before a whole second: `every: '1s'` slots fall on whole seconds. */
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0, 500);
const SLOT1 = T0 + 500;
const WAIT = { timeout: 20_000 };

interface Backend {
  name: string;
  skip?: string | undefined;
  /** One shared store for a test: each call gives a node's `store` option. */
  shared(): () => string | Store;
}

const backends: Backend[] = [
  {
    name: 'memory store shared in one process',
    shared() {
      const store = createMemoryStore();
      // Each runtime closes its store: the shared one is closed by nobody but the test's end.
      return () => overrideStore(store, { close: async () => {} });
    },
  },
  {
    name: 'SQLite file shared by two runtimes',
    shared() {
      const file = `sqlite:${tempDb('cluster-control')}`;
      return () => file;
    },
  },
  {
    name: 'PostgreSQL schema shared by two runtimes',
    skip: PG_SKIP,
    shared() {
      const url = schemaStoreUrl(schemas);
      return () => url;
    },
  },
];

/** Two nodes on one store and one clock, closed after the test. */
function cluster(backend: Backend, clock: ManualClock) {
  const storeOf = backend.shared();
  const open: Runtime[] = [];
  return {
    async node(nodeId: string, options: CreateRuntimeOptions): Promise<Runtime> {
      const rt = await createRuntime({ store: storeOf(), clock, nodeId, maintenance: false, ...options });
      open.push(rt);
      return rt;
    },
    async close(): Promise<void> {
      for (const rt of open.splice(0).reverse()) await rt.close({ timeout: 2000 });
    },
  };
}

/**
 * Waits for a condition while the clock moves on by `step` between checks: a node of a SQLite file reads control
 * changes made elsewhere at its next check (every second of the clock), so time has to pass for it.
 */
function driveUntil<T>(clock: ManualClock, condition: () => Promise<T> | T, label: string, step = 100): Promise<T> {
  return waitFor<T>(
    async () => {
      const value = await condition();
      if (value) return value;
      await clock.advance(step);
      return undefined;
    },
    { ...WAIT, label },
  );
}

/** The slots of schedule `id` that produced a task, from its tasks' keys (`state`: only those tasks in it). */
async function firedSlots(rt: Runtime, id: string, state?: 'succeeded'): Promise<number[]> {
  const { tasks } = await rt.list({ scheduleId: id, limit: 1000, ...(state ? { state } : {}) });
  return tasks.map((t) => Number(t.key?.split(':')[2])).sort((a, b) => a - b);
}

/**
 * Moves the clock to `slot` and waits until that slot's task of schedule `id` has succeeded (so that the next
 * slot does not find it running and skip, overlap `skip`). The clock stays on the slot meanwhile, firing what comes
 * due on it: a node whose store answers over the network arms its next slot once the previous firing is written,
 * possibly after the clock already reached it.
 */
async function fireSlot(rt: Runtime, clock: ManualClock, id: string, slot: number): Promise<void> {
  await clock.advanceTo(slot);
  await driveUntil(clock, async () => (await firedSlots(rt, id, 'succeeded')).includes(slot), `slot ${slot} of ${id}`, 0);
}

/** The paused names stored (the JSON array under the meta key `paused-names`). */
async function storedPaused(rt: Runtime, key = 'paused-names'): Promise<string[]> {
  const text = await rt.store.getMeta(key);
  return text === undefined ? [] : (JSON.parse(text) as string[]).sort();
}

const inline = { run: () => 'ok' };

for (const backend of backends) {
  describe(`control state shared live: ${backend.name}`, backend.skip ? { skip: backend.skip } : {}, () => {
    for (const change of ['paused', 'removed'] as const) {
      it(`a schedule ${change} on node B fires no further slot from node A`, async () => {
        const clock = new ManualClock(T0);
        const c = cluster(backend, clock);
        try {
          const tasks = { tick: inline, other: inline };
          const a = await c.node('a', { tasks });
          const b = await c.node('b', { tasks });
          await a.schedule('tick', { every: '1s', id: 'tick' });
          // A second schedule on the same slots: its tasks say how far the nodes have fired.
          await a.schedule('other', { every: '1s', id: 'other' });
          await fireSlot(a, clock, 'tick', SLOT1);
          await fireSlot(a, clock, 'other', SLOT1);
          if (change === 'paused') await b.pauseSchedule('tick');
          else assert.equal(await b.unschedule('tick'), true);
          await fireSlot(a, clock, 'other', SLOT1 + 1000);
          await fireSlot(a, clock, 'other', SLOT1 + 2000);
          assert.deepEqual(await firedSlots(a, 'tick'), [SLOT1], `no slot of tick after it was ${change} on B`);
        } finally {
          await c.close();
        }
      });
    }

    it('a schedule added on node B is fired by node A once B has closed', async () => {
      const clock = new ManualClock(T0);
      const c = cluster(backend, clock);
      try {
        const a = await c.node('a', { tasks: { late: inline } });
        const b = await c.node('b', { tasks: { late: inline } });
        await b.schedule('late', { every: '1s', id: 'late' });
        await b.close();
        const task = await driveUntil(clock, async () => (await a.list({ scheduleId: 'late', state: 'succeeded' })).tasks[0], 'A runs a slot of the schedule B added');
        assert.equal(task?.owner, 'a');
      } finally {
        await c.close();
      }
    });

    for (const hold of ['name', 'group'] as const) {
      it(`a ${hold} paused on node A is not claimed by node B without a restart, and drains once resumed on A`, async () => {
        const clock = new ManualClock(T0);
        const c = cluster(backend, clock);
        const gate = latch();
        try {
          // A is kept busy (one slot, held by `block`, and no claims ahead of a free slot): only B may claim `x`.
          const a = await c.node('a', { concurrency: 1, prefetch: 0, tasks: { block: { run: async () => await gate.opened }, x: inline, y: inline } });
          const b = await c.node('b', { concurrency: 1, tasks: { x: inline, y: inline } });
          const blocker = await a.enqueue('block');
          await waitFor(async () => (await a.get(blocker))?.state === 'running', WAIT);
          if (hold === 'name') await a.pause('x');
          else await a.pauseGroup('g');
          await driveUntil(clock, () => (hold === 'name' ? b.pausedNames() : b.pausedGroups()).length === 1, `B hears of the ${hold} paused on A`);
          // FIFO with one slot: B would take `x` first if it claimed it.
          const held = await b.enqueue('x', null, hold === 'group' ? { group: 'g' } : {});
          const other = await b.enqueue('y', null, hold === 'group' ? { group: 'h' } : {});
          await waitFor(async () => (await b.get(other))?.state === 'succeeded', { ...WAIT, label: 'B runs the task that is not held' });
          // A claim of B's already on its way when it heard of the pause may have taken it: B gives it back unstarted
          // (as on one node), so it is queued again with its attempt not counted.
          await waitFor(async () => (await b.get(held))?.state === 'queued', { ...WAIT, label: `B holds no task of the paused ${hold}` });
          assert.equal((await b.get(held))?.attempts, 0, 'never run');
          if (hold === 'name') await a.resume('x');
          else await a.resumeGroup('g');
          await driveUntil(clock, async () => (await b.get(held))?.state === 'succeeded', 'B runs it once resumed on A');
          assert.equal((await b.get(held))?.owner, 'b');
        } finally {
          gate.open();
          await c.close();
        }
      });
    }

    it('names paused at the same time on two nodes are both stored, and both nodes hold both', async () => {
      const clock = new ManualClock(T0);
      const c = cluster(backend, clock);
      try {
        const tasks = { x: inline, y: inline };
        const a = await c.node('a', { tasks });
        const b = await c.node('b', { tasks });
        await Promise.all([a.pause('x'), b.pause('y')]);
        await waitFor(async () => (await storedPaused(a)).length === 2, { ...WAIT, label: 'both pauses stored' });
        assert.deepEqual(await storedPaused(a), ['x', 'y']);
        await driveUntil(clock, () => a.pausedNames().length === 2 && b.pausedNames().length === 2, 'both nodes hold both');
        assert.deepEqual([a.pausedNames().sort(), b.pausedNames().sort()], [['x', 'y'], ['x', 'y']]);
        await Promise.all([a.resume('y'), b.resume('x')]);
        await waitFor(async () => (await storedPaused(a)).length === 0, { ...WAIT, label: 'both resumes stored' });
        await driveUntil(clock, () => a.pausedNames().length === 0 && b.pausedNames().length === 0, 'both nodes hold none');
      } finally {
        await c.close();
      }
    });
  });
}

describe('a pause the store refuses', () => {
  it('rejects the promise rt.pause returns and is logged; not awaiting it hurts nothing; the pause holds on this node', async () => {
    const errors: Array<[string, unknown]> = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (message: string, fields?: unknown) => errors.push([message, fields]) };
    const inner = createMemoryStore();
    const refusing = overrideStore(inner, {
      editMetaSet: async () => {
        throw new TroupeError(ErrorCodes.STORE_UNAVAILABLE, 'the store is down');
      },
    });
    const rt = await createRuntime({ store: refusing, maintenance: false, logger, tasks: { x: inline, y: inline } });
    try {
      await assert.rejects(rt.pause('x'), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.STORE_UNAVAILABLE);
      assert.deepEqual(rt.pausedNames(), ['x'], 'held here until the next read of the control state');
      assert.equal(errors.length, 1);
      assert.match(errors[0]![0], /not stored/);
      // The former `void` call style: no unhandled rejection (the test runner would fail the file on one).
      void rt.pauseGroup('g');
      await waitFor(() => errors.length === 2, { label: 'the second failure logged' });
      assert.deepEqual(rt.pausedGroups(), ['g']);
    } finally {
      await rt.close();
    }
  });
});

describe('a node that has not heard of a change yet', () => {
  it('runs no further slot of a schedule paused elsewhere: it reads the schedule again as it prepares the slot', async () => {
    const clock = new ManualClock(T0);
    const inner = createMemoryStore();
    // A hears of no change (as a PostgreSQL node whose notification is late): only its read ahead of a slot tells it.
    const deaf = overrideStore(inner, { onChange: () => () => {}, close: async () => {} });
    const tasks = { tick: inline, other: inline };
    const a = await createRuntime({ store: deaf, clock, nodeId: 'a', maintenance: false, tasks });
    const b = await createRuntime({ store: overrideStore(inner, { close: async () => {} }), clock, nodeId: 'b', maintenance: false, tasks });
    try {
      await a.schedule('tick', { every: '1s', id: 'tick' });
      await a.schedule('other', { every: '1s', id: 'other' });
      await fireSlot(a, clock, 'tick', SLOT1);
      await fireSlot(a, clock, 'other', SLOT1);
      await b.pauseSchedule('tick');
      await fireSlot(a, clock, 'other', SLOT1 + 1000);
      await fireSlot(a, clock, 'other', SLOT1 + 2000);
      assert.deepEqual(await firedSlots(a, 'tick'), [SLOT1], 'no task for a slot of tick after it was paused on B, not even one written ahead');
    } finally {
      await b.close();
      await a.close();
    }
  });
});
