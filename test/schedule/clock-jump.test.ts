// Regression: the wall clock jumping forward (an NTP step, a VM resumed) on an idle node, past several slots of a
// periodic schedule. The next slot's task had been written ahead (stored `scheduled`, claimed as of its slot), and
// after the jump the node ran that task and a catch-up run for the latest missed slot: two runs where the catch-up
// rule (README, Schedules) says one, whatever the overlap policy. Now the task written ahead is that one run.
// A ManualClock stands for the wall clock: `clock.set` jumps it without firing anything, as an NTP step does, and
// the timers that the jump made due fire at the next `advance`. A backward jump is also tried on a clock whose timers
// count elapsed time, as the system clock's do (a slot's task was written ahead as soon as the timer for its lead
// time fired, the slot still far off by the clock). Run on each store (PostgreSQL when TROUPE_TEST_PG_URL is set).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock, type Clock, type TimerHandle } from '../../src/clock.ts';
import { PREPARE_LEAD_MS } from '../../actors/scheduler/scheduler.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { latch } from '../helpers/latch.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { PG_SKIP, schemaStoreUrl, trackSchemas } from '../helpers/pg.ts';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0, 500);
/** The schedules here are `every: '5s'`: SLOT is the first slot after T0. */
const SLOT = Date.UTC(2026, 0, 1, 0, 0, 5);
const EVERY = 5_000;
/**
 * Where the forward jumps land: past SLOT and the two slots after it, 2.5 s into the third (SLOT + 3 EVERY); less
 * than the default lease (30 s) past SLOT, so the lease of the task written ahead still holds.
 */
const JUMP_TO = SLOT + 3 * EVERY + 2_500;
const LATEST_MISSED = SLOT + 3 * EVERY;
const NEXT_AFTER_JUMP = SLOT + 4 * EVERY;

const schemas = trackSchemas('jump');
after(() => schemas.dropAll());

const STORES: Array<{ name: string; store: () => string; skip?: string }> = [
  { name: 'memory', store: () => 'memory' },
  { name: 'SQLite', store: () => `sqlite:${tempDb('clock-jump')}` },
  { name: 'PostgreSQL', store: () => schemaStoreUrl(schemas), ...(PG_SKIP ? { skip: PG_SKIP } : {}) },
];

async function withClockRuntime(store: CreateRuntimeOptions['store'], options: CreateRuntimeOptions, fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await createRuntime({ store, maintenance: false, ...options });
  try {
    await fn(rt);
  } finally {
    await rt.close({ timeout: 2000 });
  }
}

/**
 * A wall clock as the system's is: its timers count elapsed time (a ManualClock that only moves forward), while
 * `now()` is that time plus an offset that `jump` moves, as an NTP step does. Its precise timer (`setTimeoutAt`)
 * checks `now()` when it fires and waits on while the time has not come, as the system clock's does.
 */
class JumpingClock implements Clock {
  readonly #elapsed: ManualClock;
  #offset = 0;
  constructor(start: number) {
    this.#elapsed = new ManualClock(start);
  }
  now(): number {
    return this.#elapsed.now() + this.#offset;
  }
  jump(ms: number): void {
    this.#offset += ms;
  }
  advance(ms: number): Promise<void> {
    return this.#elapsed.advance(ms);
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#elapsed.setTimeout(fn, ms);
  }
  setTimeoutAt(fn: () => void, at: number): TimerHandle {
    const handle: { inner?: TimerHandle; unref: () => unknown } = { unref: () => handle };
    const arm = (): void => {
      handle.inner = this.#elapsed.setTimeout(() => (this.now() >= at ? fn() : arm()), at - this.now());
    };
    arm();
    return handle;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    const inner = (handle as { inner?: TimerHandle } | undefined)?.inner;
    this.#elapsed.clearTimeout(inner ?? handle);
  }
}

/** Waits while nudging the clock: timers armed after a jump for a time already passed fire at the next advance. */
function waitNudging(clock: { advance(ms: number): Promise<void> }, condition: () => unknown, label: string): Promise<unknown> {
  return waitFor(async () => {
    await clock.advance(0);
    return condition();
  }, { label, timeout: 5000 });
}

function schedulerInfo(rt: Runtime): Record<string, unknown> {
  return rt.tree().children?.find((c) => c.address === 'scheduler')?.info ?? {};
}

async function lastSlot(rt: Runtime, id: string): Promise<number | undefined> {
  return (await rt.schedules()).find((s) => s.id === id)?.lastSlot;
}

/**
 * After a forward jump to JUMP_TO: exactly one run, stored as one task, the schedule's slot recorded as the latest
 * missed one; nothing more up to the next slot's lead time; then the next slot runs on its slot as usual.
 */
async function assertOneRunThenTimetable(rt: Runtime, clock: ManualClock, runs: number[], key: string): Promise<void> {
  await waitNudging(clock, () => runs.length >= 1, 'the run after the jump');
  await waitNudging(clock, async () => (await lastSlot(rt, 'five')) === LATEST_MISSED, 'the latest missed slot recorded');
  await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length >= 1);
  await rt.flush();
  const { fired, skipped } = schedulerInfo(rt);
  assert.deepEqual({ fired, skipped }, { fired: 1, skipped: 0 }, 'the missed slots fired once, none skipped as overlapping');
  await clock.advanceTo(NEXT_AFTER_JUMP - PREPARE_LEAD_MS - 1);
  await rt.flush();
  assert.deepEqual(runs, [JUMP_TO], 'one run for the jump, not the task written ahead and a catch-up run');
  const tasks = (await rt.list({ scheduleId: 'five' })).tasks;
  assert.deepEqual(tasks.map((t) => [t.key, t.state]), [[key, 'succeeded']], 'one task stored, none left `scheduled`');
  // The task written ahead keeps its slot's times (claimed as of it); a catch-up enqueued after the jump is due then.
  // (Not the catch-up's startedAt: on PostgreSQL a poll's claim in flight across the jump may take it, as of before.)
  const ahead = key === `schedule:five:${SLOT}`;
  assert.equal(tasks[0]?.timings.runAt, ahead ? SLOT : JUMP_TO);
  if (ahead) assert.equal(tasks[0]?.timings.startedAt, SLOT);
  assert.equal(tasks[0]?.attempts, 1, 'run once, not recovered from an expired lease');
  await clock.advanceTo(NEXT_AFTER_JUMP);
  await waitNudging(clock, () => runs.length === 2, 'the next slot');
  assert.deepEqual(runs, [JUMP_TO, NEXT_AFTER_JUMP], 'the timetable goes on from the next slot');
  await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 2);
}

for (const { name, store, skip } of STORES) {
  describe(`a wall-clock jump past several slots, ${name} store`, skip ? { skip } : {}, () => {
    for (const overlap of ['skip', 'queue', 'allow'] as const) {
      it(`overlap ${overlap}: the slot's task written ahead is the one catch-up run`, async () => {
        const clock = new ManualClock(T0);
        const runs: number[] = [];
        await withClockRuntime(store(), { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
          await rt.schedule('tick', { every: '5s', id: 'five', overlap });
          await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
          await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'running' })).tasks.length === 1, { label: 'the task written ahead' });
          assert.deepEqual(runs, []);
          clock.set(JUMP_TO);
          await assertOneRunThenTimetable(rt, clock, runs, `schedule:five:${SLOT}`);
        });
      });
    }

    it('before the next slot was prepared: one catch-up run, keyed by the latest missed slot', async () => {
      const clock = new ManualClock(T0);
      const runs: number[] = [];
      await withClockRuntime(store(), { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
        await rt.schedule('tick', { every: '5s', id: 'five' });
        await clock.advance(0);
        assert.deepEqual((await rt.list({ scheduleId: 'five' })).tasks, [], 'nothing written yet');
        clock.set(JUMP_TO);
        await assertOneRunThenTimetable(rt, clock, runs, `schedule:five:${LATEST_MISSED}`);
      });
    });

    it('a jump within one period: the slot written ahead runs once, late, and the next slot on its time', async () => {
      const clock = new ManualClock(T0);
      const runs: number[] = [];
      await withClockRuntime(store(), { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
        await rt.schedule('tick', { every: '5s', id: 'five' });
        await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'running' })).tasks.length === 1, { label: 'the task written ahead' });
        clock.set(SLOT + 2_500);
        await waitNudging(clock, () => runs.length === 1, 'the late run');
        await waitNudging(clock, async () => (await lastSlot(rt, 'five')) === SLOT, 'the slot recorded');
        // Ended in the store before the next slot asks whether a run is active (overlap `skip`).
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 1);
        await clock.advanceTo(SLOT + EVERY);
        await waitNudging(clock, () => runs.length === 2, 'the next slot');
        await rt.flush();
        assert.deepEqual(runs, [SLOT + 2_500, SLOT + EVERY]);
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 2);
        assert.equal((await rt.list({ scheduleId: 'five' })).tasks.length, 2, 'one task per slot');
      });
    });

    it('a backward jump before the slot\'s lead time, on timers that count elapsed time: written ahead at the lead time, not before', async () => {
      const clock = new JumpingClock(T0);
      const BACK = 2 * EVERY;
      const runs: number[] = [];
      const rt = await createRuntime({ store: store(), maintenance: false, clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } });
      try {
        await rt.schedule('tick', { every: '5s', id: 'five' });
        await clock.advance(0);
        clock.jump(-BACK);
        // The timer armed for SLOT's lead time fires by elapsed time: the clock reads 10 s before that.
        await clock.advance(SLOT - PREPARE_LEAD_MS - T0);
        await rt.flush();
        assert.equal(clock.now(), SLOT - PREPARE_LEAD_MS - BACK);
        assert.deepEqual((await rt.list({ scheduleId: 'five' })).tasks, [], 'nothing written ahead while the slot is 10 s off');
        assert.equal(schedulerInfo(rt).fired, 0);
        await clock.advance(BACK);
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'running' })).tasks.length === 1, { label: 'the task written ahead at the lead time' });
        assert.deepEqual(runs, []);
        await clock.advance(PREPARE_LEAD_MS);
        await waitNudging(clock, () => runs.length === 1, 'the slot');
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 1);
        assert.deepEqual(runs, [SLOT]);
        const tasks = (await rt.list({ scheduleId: 'five' })).tasks;
        assert.deepEqual(tasks.map((t) => [t.key, t.timings.startedAt]), [[`schedule:five:${SLOT}`, SLOT]], 'one task, started on its slot');
      } finally {
        // Forced: a close's timeout runs on this clock, which nothing advances any more.
        await rt.close({ force: true });
      }
    });

    it('a backward jump: the task written ahead waits for its slot and runs once there; no fired slot runs again', async () => {
      const clock = new ManualClock(T0);
      const runs: number[] = [];
      await withClockRuntime(store(), { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
        await rt.schedule('tick', { every: '5s', id: 'five' });
        await clock.advanceTo(SLOT);
        await waitNudging(clock, () => runs.length === 1, 'the first slot');
        await waitFor(async () => (await lastSlot(rt, 'five')) === SLOT, { label: 'the first slot recorded' });
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 1);
        await clock.advanceTo(SLOT + EVERY - PREPARE_LEAD_MS);
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'running' })).tasks.length === 1, { label: 'the next task written ahead' });
        // Back by two and a half periods: the slots SLOT - EVERY and SLOT come round again on the clock.
        clock.set(SLOT - 1.5 * EVERY);
        await clock.advanceTo(SLOT + EVERY - 1);
        await rt.flush();
        assert.deepEqual(runs, [SLOT], 'nothing ran again, the task written ahead still waits for its slot');
        assert.equal((await rt.list({ scheduleId: 'five', state: 'running' })).tasks.length, 1);
        await clock.advance(1);
        await waitNudging(clock, () => runs.length === 2, 'the slot written ahead');
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 2);
        await clock.advanceTo(SLOT + 2 * EVERY);
        await waitNudging(clock, () => runs.length === 3, 'the slot after it');
        await waitFor(async () => (await rt.list({ scheduleId: 'five', state: 'succeeded' })).tasks.length === 3);
        assert.deepEqual(runs, [SLOT, SLOT + EVERY, SLOT + 2 * EVERY]);
        assert.equal((await rt.list({ scheduleId: 'five' })).tasks.length, 3, 'one task per slot');
      });
    });
  });
}

describe('a wall-clock jump while the slot\'s task is being written ahead', () => {
  it('the write that lands after the jump is the one catch-up run', async () => {
    const clock = new ManualClock(T0);
    const store = createMemoryStore();
    const enqueueAndClaim = store.enqueueAndClaim!.bind(store);
    let gate: ReturnType<typeof latch> | undefined;
    let held = 0;
    store.enqueueAndClaim = async (...args) => {
      if (gate) {
        held++;
        await gate.opened;
      }
      return enqueueAndClaim(...args);
    };
    const runs: number[] = [];
    await withClockRuntime(store, { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
      await rt.schedule('tick', { every: '5s', id: 'five', overlap: 'allow' });
      await clock.advance(0);
      gate = latch();
      await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
      await waitFor(() => held === 1, { label: 'the write ahead in flight' });
      clock.set(JUMP_TO);
      // The slot's timer fires after the jump, with the write still in flight.
      await clock.advance(0);
      await clock.advance(0);
      gate.open();
      gate = undefined;
      await assertOneRunThenTimetable(rt, clock, runs, `schedule:five:${SLOT}`);
    });
  });
});
