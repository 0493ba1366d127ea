// Periodic firing on time: the scheduler prepares a slot's task a little ahead, then fires on the slot itself,
// never before it. On an idle node (the claim offer stands) the task is written ahead and held by the executor
// until the slot. A memory-store runtime driven by a ManualClock; real clock only for the precise timer itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, systemClock } from '../../src/clock.ts';
import { PREPARE_LEAD_MS } from '../../actors/scheduler/scheduler.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { latch } from '../helpers/latch.ts';
import { withRuntime } from '../helpers/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { ClaimRequest } from '../../src/store/store.ts';
import type { Runtime, TaskView } from '../../src/runtime.ts';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0, 500);
const SLOT = Date.UTC(2026, 0, 1, 0, 0, 10);

/** Schedule `ten` stores nothing before SLOT; at SLOT it enqueues its task (created then), which is returned. */
async function slotWritesItsTask(rt: Runtime, clock: ManualClock): Promise<TaskView> {
  await clock.advanceTo(SLOT - 1);
  assert.deepEqual((await rt.list({ scheduleId: 'ten' })).tasks, [], 'nothing is stored before the slot');
  await clock.advance(1);
  await waitFor(async () => (await rt.list({ scheduleId: 'ten' })).tasks.length === 1);
  const [task] = (await rt.list({ scheduleId: 'ten' })).tasks;
  assert.equal(task?.timings.createdAt, SLOT, 'created when it fired');
  return task!;
}

describe('periodic firing on time', () => {
  it('on an idle node: writes the slot\'s task ahead, claimed as of the slot, and starts it exactly on the slot, never before', async () => {
    const clock = new ManualClock(T0);
    const runs: number[] = [];
    await withRuntime({ clock, tasks: { tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
      await rt.schedule('tick', { every: '10s', id: 'ten' });
      await clock.advance(0);
      assert.equal(clock.nextAt, SLOT - PREPARE_LEAD_MS, 'the early arm, ahead of the slot');
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
      await waitFor(async () => (await rt.list({ scheduleId: 'ten' })).tasks.length === 1);
      assert.equal(clock.nextAt, SLOT, 'after preparing, the precise waits end on the slot');
      await clock.advanceTo(SLOT - 1);
      const [early] = (await rt.list({ scheduleId: 'ten' })).tasks;
      assert.equal(early?.key, `schedule:ten:${SLOT}`);
      assert.equal(early?.state, 'running', 'claimed with the offer, as of its slot');
      assert.equal(early?.timings.createdAt, SLOT - PREPARE_LEAD_MS, 'written when it was prepared');
      assert.equal(early?.timings.runAt, SLOT, 'due at its slot');
      assert.equal(early?.timings.startedAt, SLOT, 'started as of its slot');
      assert.deepEqual(runs, [], 'its code waits for the slot');
      await clock.advance(1);
      await waitFor(() => runs.length === 1);
      assert.deepEqual(runs, [SLOT]);
      await waitFor(async () => (await rt.get(early!.id))?.state === 'succeeded');
      await clock.advanceTo(SLOT + 10_000 - 1);
      assert.equal(runs.length, 1, 'the next slot does not fire early either');
      await clock.advance(1);
      await waitFor(() => runs.length === 2);
      assert.deepEqual(runs, [SLOT, SLOT + 10_000]);
    });
  });

  it('a resumed schedule does not catch up the slots that passed while it was paused: its next slot fires', async () => {
    const clock = new ManualClock(T0);
    const runs: number[] = [];
    await withRuntime({ clock, tasks: { tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
      await rt.schedule('tick', { every: '10s', id: 'ten' });
      await rt.pauseSchedule('ten');
      await clock.advanceTo(SLOT + 35_000);
      assert.deepEqual(runs, [], 'nothing fires while paused');
      await rt.resumeSchedule('ten');
      await clock.advance(0);
      await clock.advanceTo(SLOT + 40_000 - 1);
      assert.deepEqual(runs, [], 'the three slots passed during the pause are not caught up, not even the latest');
      assert.deepEqual((await rt.list({ scheduleId: 'ten' })).tasks.filter((t) => t.timings.runAt < SLOT + 40_000), []);
      await clock.advance(1);
      await waitFor(() => runs.length === 1);
      assert.deepEqual(runs, [SLOT + 40_000], 'the first slot after the resume fires on time');
    });
  });

  it('on a busy node (no free slot, no claim offer) nothing is stored before the slot: the slot writes its task', async () => {
    const clock = new ManualClock(T0);
    const gate = latch();
    const runs: number[] = [];
    await withRuntime({ clock, concurrency: 1, tasks: { block: { run: async () => await gate.opened }, tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
      const blocker = await rt.enqueue('block', null);
      await waitFor(async () => (await rt.get(blocker))?.state === 'running');
      await rt.schedule('tick', { every: '10s', id: 'ten' });
      const task = await slotWritesItsTask(rt, clock);
      assert.equal(task.state, 'queued', 'it waits for the slot the blocker holds');
      gate.open();
      await waitFor(() => runs.length === 1);
      assert.deepEqual(runs, [SLOT]);
    });
  });

  it('a claim still in flight at the slot: nothing is written ahead, the slot enqueues its task at its time, and it runs once', async () => {
    const clock = new ManualClock(T0);
    const store = createMemoryStore();
    const claim = store.claim.bind(store);
    let gate: ReturnType<typeof latch> | undefined;
    let held = 0;
    store.claim = async (request: ClaimRequest) => {
      if (gate) {
        held++;
        await gate.opened;
      }
      return claim(request);
    };
    const runs: number[] = [];
    await withRuntime({ clock, store, tasks: { tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
      await rt.schedule('tick', { every: '10s', id: 'ten' });
      await clock.advance(0);
      gate = latch();
      // A registration wakes the scheduler: its claim withdraws the offer and hangs until the gate opens.
      rt.register('other', { run: () => null });
      await waitFor(() => held === 1);
      await slotWritesItsTask(rt, clock);
      assert.deepEqual(runs, []);
      gate.open();
      gate = undefined;
      await waitFor(() => runs.length === 1);
      await rt.flush();
      assert.deepEqual(runs, [SLOT]);
      assert.equal((await rt.list({ scheduleId: 'ten' })).tasks.length, 1);
    });
  });

  for (const failing of ['overlap question', 'write'] as const) {
    it(`the ${failing} ahead of the slot fails: nothing is written ahead, the slot enqueues its task at its time, and it runs once`, async () => {
      const clock = new ManualClock(T0);
      const store = createMemoryStore();
      let armed = false;
      let failed = 0;
      const fail = (): never => {
        armed = false;
        failed++;
        throw new Error(`the ${failing} failed`);
      };
      const list = store.list.bind(store);
      const enqueueAndClaim = store.enqueueAndClaim!.bind(store);
      store.list = async (query) => (armed && failing === 'overlap question' ? fail() : list(query));
      store.enqueueAndClaim = async (...args) => (armed && failing === 'write' ? fail() : enqueueAndClaim(...args));
      const runs: number[] = [];
      await withRuntime({ clock, store, tasks: { tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
        await rt.schedule('tick', { every: '10s', id: 'ten' });
        await clock.advance(0);
        armed = true;
        await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
        await waitFor(() => failed === 1, { label: `the ${failing} failed` });
        await slotWritesItsTask(rt, clock);
        await waitFor(() => runs.length === 1);
        await rt.flush();
        assert.deepEqual(runs, [SLOT]);
        assert.equal((await rt.list({ scheduleId: 'ten' })).tasks.length, 1);
      });
    });
  }

  it('several schedules due on the same slot (cron and every) all fire on it, each once', async () => {
    const clock = new ManualClock(T0);
    const runs: Array<[string, number]> = [];
    await withRuntime({ clock, tasks: { tick: { run: (i: { by: string }) => runs.push([i.by, clock.now()]) } } }, async (rt) => {
      await rt.schedule('tick', { cron: '*/10 * * * * *', id: 'cron' }, { by: 'cron' });
      await rt.schedule('tick', { cron: '*/10 * * * * *', timezone: 'Europe/Berlin', id: 'berlin' }, { by: 'berlin' });
      await rt.schedule('tick', { every: '10s', id: 'every' }, { by: 'every' });
      await clock.advanceTo(SLOT - 1);
      assert.deepEqual(runs, []);
      await clock.advance(1);
      await waitFor(() => runs.length === 3);
      assert.deepEqual(runs.sort(), [['berlin', SLOT], ['cron', SLOT], ['every', SLOT]]);
      // Up to the next slot's preparing: its tasks are written ahead then.
      await clock.advanceTo(SLOT + 10_000 - PREPARE_LEAD_MS - 1);
      await rt.flush();
      assert.equal(runs.length, 3);
      for (const id of ['cron', 'berlin', 'every']) assert.equal((await rt.list({ scheduleId: id })).tasks.length, 1, id);
      await clock.advanceTo(SLOT + 10_000);
      await waitFor(() => runs.length === 6);
      for (const id of ['cron', 'berlin', 'every']) assert.equal((await rt.list({ scheduleId: id })).tasks.length, 2, id);
    });
  });

  it('a slot whose lead time has already begun is prepared at once and still fires on the slot', async () => {
    const clock = new ManualClock(SLOT - 4);
    const runs: number[] = [];
    await withRuntime({ clock, tasks: { tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
      await rt.schedule('tick', { every: '10s', id: 'ten' });
      await clock.advance(0);
      assert.equal(clock.nextAt, SLOT);
      await clock.advanceTo(SLOT - 1);
      assert.deepEqual(runs, []);
      await clock.advance(1);
      await waitFor(() => runs.length === 1);
      assert.deepEqual(runs, [SLOT]);
    });
  });

  it('overlap skip: a run that ends between the prepared answer and the slot does not cost the slot', async () => {
    const clock = new ManualClock(T0);
    const gates = [latch(), latch()];
    let started = 0;
    await withRuntime({ clock, tasks: { slow: { run: async () => await gates[started++]!.opened } } }, async (rt) => {
      await rt.schedule('slow', { every: '10s', id: 'slow', overlap: 'skip' });
      await clock.advanceTo(SLOT);
      await waitFor(() => started === 1);
      // Prepared while the first run is still running: the schedule looks busy ahead of the next slot.
      await clock.advanceTo(SLOT + 10_000 - PREPARE_LEAD_MS);
      gates[0]!.open();
      await waitFor(async () => (await rt.list({ scheduleId: 'slow', state: 'succeeded' })).tasks.length === 1);
      await clock.advanceTo(SLOT + 10_000);
      await waitFor(() => started === 2);
      gates[1]!.open();
    });
  });

  it('overlap skip: a slot that comes while a run is active is skipped, and nothing is written ahead for it', async () => {
    const clock = new ManualClock(T0);
    const gate = latch();
    let started = 0;
    await withRuntime({ clock, tasks: { slow: { run: async () => { started++; await gate.opened; } } } }, async (rt) => {
      await rt.schedule('slow', { every: '10s', id: 'slow', overlap: 'skip' });
      await clock.advanceTo(SLOT);
      await waitFor(() => started === 1);
      await clock.advanceTo(SLOT + 10_000 - 1);
      await rt.flush();
      assert.equal((await rt.list({ scheduleId: 'slow' })).tasks.length, 1, 'the run is active: nothing written ahead');
      await clock.advance(1);
      await rt.flush();
      assert.equal((await rt.list({ scheduleId: 'slow' })).tasks.length, 1, 'the slot was skipped');
      gate.open();
      await waitFor(async () => (await rt.list({ scheduleId: 'slow', state: 'succeeded' })).tasks.length === 1);
      await clock.advanceTo(SLOT + 20_000);
      await waitFor(() => started === 2);
    });
  });

  it('overlap skip: a trigger between the prepared answer and the slot makes the slot skip', async () => {
    const clock = new ManualClock(T0);
    const gate = latch();
    let started = 0;
    await withRuntime({ clock, tasks: { slow: { run: async () => { started++; await gate.opened; } } } }, async (rt) => {
      await rt.schedule('slow', { every: '10s', id: 'slow', overlap: 'skip' });
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
      // The node was idle when the slot was prepared: its task is written ahead, then the trigger comes.
      await waitFor(async () => (await rt.list({ scheduleId: 'slow' })).tasks.length === 1);
      const manual = await rt.triggerSchedule('slow');
      try {
        await waitFor(() => started === 1);
        await clock.advanceTo(SLOT);
        await rt.flush();
        const tasks = (await rt.list({ scheduleId: 'slow' })).tasks;
        assert.deepEqual(tasks.filter((t) => t.state !== 'cancelled').map((t) => t.id), [manual], 'the slot was skipped: the triggered run is active');
        assert.deepEqual(tasks.filter((t) => t.state === 'cancelled').map((t) => t.key), [`schedule:slow:${SLOT}`], 'the task written ahead is cancelled');
        assert.equal(started, 1);
      } finally {
        gate.open();
      }
      await waitFor(async () => (await rt.get(manual))?.state === 'succeeded');
    });
  });

  it('overlap skip: a triggered run that ended before the slot does not skip it: the slot runs under a key of its own', async () => {
    const clock = new ManualClock(T0);
    const starts: number[] = [];
    await withRuntime({ clock, tasks: { quick: { run: () => starts.push(clock.now()) } } }, async (rt) => {
      await rt.schedule('quick', { every: '10s', id: 'quick', overlap: 'skip' });
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
      await waitFor(async () => (await rt.list({ scheduleId: 'quick' })).tasks.length === 1);
      const manual = await rt.triggerSchedule('quick');
      await waitFor(async () => (await rt.get(manual))?.state === 'succeeded');
      await waitFor(async () => (await rt.list({ scheduleId: 'quick', state: 'cancelled' })).tasks.length === 1);
      await clock.advanceTo(SLOT);
      await waitFor(() => starts.length === 2);
      assert.deepEqual(starts, [SLOT - PREPARE_LEAD_MS, SLOT], 'the triggered run at once, then the slot on its slot');
      const tasks = (await rt.list({ scheduleId: 'quick' })).tasks;
      const byKey = new Map(tasks.map((t) => [t.key, t.state]));
      assert.equal(byKey.get(`schedule:quick:${SLOT}`), 'cancelled', 'the task written ahead keeps the slot\'s key, cancelled');
      await waitFor(async () => (await rt.list({ scheduleId: 'quick', state: 'succeeded' })).tasks.length === 2);
      const slotTask = (await rt.list({ scheduleId: 'quick' })).tasks.find((t) => t.key === `schedule:quick:${SLOT}:after-trigger`);
      assert.equal(slotTask?.state, 'succeeded', 'the slot ran under a key of its own');
      await clock.advanceTo(SLOT + 10_000);
      await waitFor(() => starts.length === 3);
      assert.equal(starts[2], SLOT + 10_000, 'the next slot as usual');
    });
  });

  it('overlap queue: a trigger between the write ahead and the slot leaves the slot\'s task: both run, the slot\'s on its slot', async () => {
    const clock = new ManualClock(T0);
    const gate = latch();
    const starts: Array<[unknown, number]> = [];
    await withRuntime({ clock, tasks: { slow: { run: async (input: unknown) => { starts.push([input, clock.now()]); await gate.opened; } } } }, async (rt) => {
      await rt.schedule('slow', { every: '10s', id: 'slow', overlap: 'queue' }, 'slot');
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
      await waitFor(async () => (await rt.list({ scheduleId: 'slow' })).tasks.length === 1);
      const manual = await rt.triggerSchedule('slow');
      try {
        await waitFor(() => starts.length === 1);
        await clock.advanceTo(SLOT);
        await waitFor(() => starts.length === 2);
        assert.deepEqual(starts.map(([, at]) => at), [SLOT - PREPARE_LEAD_MS, SLOT], 'the triggered run at once, the slot\'s task on its slot');
        const tasks = (await rt.list({ scheduleId: 'slow' })).tasks;
        assert.deepEqual(tasks.map((t) => t.state).sort(), ['running', 'running']);
        assert.ok(tasks.some((t) => t.id === manual) && tasks.some((t) => t.key === `schedule:slow:${SLOT}`));
      } finally {
        gate.open();
      }
      await waitFor(async () => (await rt.list({ scheduleId: 'slow', state: 'succeeded' })).tasks.length === 2);
    });
  });

  it('a schedule replaced before its slot is prepared fires the new definition', async () => {
    const clock = new ManualClock(T0);
    const inputs: unknown[] = [];
    await withRuntime({ clock, tasks: { echo: { run: (i: unknown) => inputs.push(i) } } }, async (rt) => {
      await rt.schedule('echo', { every: '10s', id: 'e' }, { v: 1 });
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS - 1);
      await rt.schedule('echo', { every: '10s', id: 'e' }, { v: 2 });
      await clock.advanceTo(SLOT);
      await waitFor(() => inputs.length === 1);
      assert.deepEqual(inputs, [{ v: 2 }]);
    });
  });

  it('a schedule replaced after its slot\'s task was written ahead runs that task once; the next slot has the new definition', async () => {
    const clock = new ManualClock(T0);
    const inputs: unknown[] = [];
    await withRuntime({ clock, tasks: { echo: { run: (i: unknown) => inputs.push(i) } } }, async (rt) => {
      await rt.schedule('echo', { every: '10s', id: 'e' }, { v: 1 });
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
      await waitFor(async () => (await rt.list({ scheduleId: 'e' })).tasks.length === 1);
      await rt.schedule('echo', { every: '10s', id: 'e' }, { v: 2 });
      await clock.advanceTo(SLOT);
      await waitFor(() => inputs.length === 1);
      await clock.advanceTo(SLOT + 10_000);
      await waitFor(() => inputs.length === 2);
      assert.deepEqual(inputs, [{ v: 1 }, { v: 2 }]);
      assert.equal((await rt.list({ scheduleId: 'e' })).tasks.length, 2, 'one task per slot');
    });
  });

  for (const how of ['paused', 'removed', 'cancelled'] as const) {
    it(`a slot's task written ahead, then its schedule ${how === 'cancelled' ? 'left as it is and the task' : how}: the task is cancelled and never starts`, async () => {
      const clock = new ManualClock(T0);
      const runs: number[] = [];
      await withRuntime({ clock, tasks: { tick: { run: () => runs.push(clock.now()) } } }, async (rt) => {
        await rt.schedule('tick', { every: '10s', id: 'ten' });
        await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
        await waitFor(async () => (await rt.list({ scheduleId: 'ten' })).tasks.length === 1);
        const [early] = (await rt.list({ scheduleId: 'ten' })).tasks;
        if (how === 'paused') await rt.pauseSchedule('ten');
        else if (how === 'removed') await rt.unschedule('ten');
        else assert.equal(await rt.cancel(early!.id), true);
        await waitFor(async () => (await rt.get(early!.id))?.state === 'cancelled');
        await clock.advanceTo(SLOT + 1);
        await rt.flush();
        assert.deepEqual(runs, []);
        assert.equal((await rt.list({ scheduleId: 'ten' })).tasks.length, 1, 'the slot wrote nothing more');
        if (how !== 'cancelled') return;
        // The slot is spent, and the schedule is not: the next slot runs.
        await clock.advanceTo(SLOT + 10_000);
        await waitFor(() => runs.length === 1);
        assert.deepEqual(runs, [SLOT + 10_000]);
      });
    });
  }
});

describe('systemClock.setTimeoutAt', () => {
  it('never calls back before Date.now() reads the due time', async () => {
    for (const ahead of [0, 2, 7]) {
      const at = Date.now() + ahead;
      const seen = await new Promise<number>((resolve) => systemClock.setTimeoutAt!(() => resolve(Date.now()), at));
      assert.ok(seen >= at, `fired at ${seen}, due ${at}`);
    }
  });

  it('is cancelled by clearTimeout', async () => {
    let fired = false;
    const handle = systemClock.setTimeoutAt!(() => (fired = true), Date.now() + 5);
    systemClock.clearTimeout(handle);
    // A later precise timer fires; the cancelled one, due before it, must not have.
    await new Promise<void>((resolve) => systemClock.setTimeoutAt!(resolve, Date.now() + 10));
    assert.equal(fired, false);
  });
});

describe('ManualClock.setTimeoutAt', () => {
  it('fires on its due time when advanced there, not before', async () => {
    const clock = new ManualClock(1000);
    const fired: number[] = [];
    clock.setTimeoutAt(() => fired.push(clock.now()), 1010);
    await clock.advanceTo(1009);
    assert.deepEqual(fired, []);
    await clock.advance(1);
    assert.deepEqual(fired, [1010]);
  });
});
