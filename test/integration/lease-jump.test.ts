// Regression: the wall clock jumping forward by more than the lease (an NTP step, a VM resumed) while this node runs
// a task. After the jump the node's own leases look expired to it: whichever of its heartbeat and its lease recovery
// came first decided, and a recovery first put the task it was still running back in the queue, so it ran twice
// (seen on PostgreSQL: a 37.5 s jump, attempts 2). Now a recovery sweep renews this node's own leases first, and
// the task runs once. A ManualClock stands for the wall clock (`clock.set` jumps it without firing anything; the
// timers the jump made due fire at the next `advance`). Both orders of the two timers are tried, on each store
// (PostgreSQL when TROUPE_TEST_PG_URL is set).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { PREPARE_LEAD_MS } from '../../actors/scheduler/scheduler.ts';
import { createRuntime } from '../../src/runtime.ts';
import type { Store } from '../../src/store/store.ts';
import { latch } from '../helpers/latch.ts';
import { overrideStore } from '../helpers/store-override.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { clockedStores } from '../helpers/lease-clock.ts';

const T0 = Date.UTC(2026, 0, 1);
/** The default lease; its heartbeat is every 10 s and the recovery sweep every 15 s. */
const LEASE = 30_000;
const JUMP = 2 * LEASE;

const STORES = clockedStores('lease-jump');

/**
 * The order of the two timers after the jump: the heartbeat is armed when the task starts (due 10 s later), the
 * recovery sweep runs at start-up and every 15 s. A task started at T0 meets its heartbeat first (due at 10 s, the
 * sweep at 15 s); one started at T0 + 6 s meets the sweep first (due at 15 s, its heartbeat at 16 s).
 */
const ORDERS = [
  { name: 'the heartbeat due first', startAfter: 0 },
  { name: 'the recovery sweep due first', startAfter: 6_000 },
];

/** Waits while nudging the clock: timers armed for a time the jump passed fire at the next advance. */
function waitNudging(clock: ManualClock, condition: () => unknown, label: string): Promise<unknown> {
  return waitFor(async () => {
    await clock.advance(0);
    return condition();
  }, { label, timeout: 5000 });
}

/** Wraps `inner`, counting the recovery sweeps that ended (all, and those made as of `jumpTo` or later). */
function countSweeps(inner: Store, jumpTo: number): { store: Store; swept: () => number; sweptAfterJump: () => number } {
  let swept = 0;
  let sweptAfterJump = 0;
  const store = overrideStore(inner, {
    recoverExpired: async (now: number) => {
      const recovered = await inner.recoverExpired(now);
      swept++;
      if (now >= jumpTo) sweptAfterJump++;
      return recovered;
    },
  });
  return { store, swept: () => swept, sweptAfterJump: () => sweptAfterJump };
}

for (const { name, store, skip } of STORES) {
  describe(`a forward wall-clock jump longer than the lease, ${name} store`, skip ? { skip } : {}, () => {
    for (const order of ORDERS) {
      it(`${order.name}: the running task runs once and keeps its attempt`, async () => {
        const clock = new ManualClock(T0);
        const { store: wrapped, swept, sweptAfterJump } = countSweeps(store(clock), T0 + JUMP);
        const gate = latch();
        let runs = 0;
        const rt = await createRuntime({
          store: wrapped,
          clock,
          maintenance: false,
          tasks: {
            hold: {
              run: async () => {
                runs++;
                await gate.opened;
                return 'done';
              },
            },
          },
        });
        try {
          // The sweep at start-up (the next is armed when it ends), then the time the task starts at.
          await waitNudging(clock, () => swept() === 1, 'the sweep at start-up');
          await clock.advance(order.startAfter);
          const id = await rt.enqueue('hold', {});
          await waitNudging(clock, () => runs === 1, 'the task running');
          clock.set(clock.now() + JUMP);
          await waitNudging(clock, () => sweptAfterJump() > 0, 'a recovery sweep after the jump');
          // What a sweep put back would be claimed again now (on a wake-up or the next poll).
          await clock.advance(0);
          await rt.flush();
          assert.equal(runs, 1, 'the task was not started again while it ran');
          gate.open();
          await waitFor(async () => (await rt.get(id))?.state === 'succeeded', { label: 'the task succeeded', timeout: 5000 });
          await rt.flush();
          const task = await rt.get(id);
          assert.equal(runs, 1, 'one run');
          assert.equal(task?.attempts, 1, 'one attempt: the lease was not taken back');
          assert.equal(task?.result, 'done');
          assert.equal(rt.tree().children?.find((c) => c.address === 'tracker')?.info?.recovered, 0, 'nothing recovered');
        } finally {
          gate.open();
          await rt.close({ timeout: 2000 });
        }
      });
    }
  });
}

/**
 * A schedule slot's task written ahead waits in the executor for its slot, claimed and leased as of the slot. A jump
 * past the slot and its lease makes due both the executor's timer for the slot and the next recovery sweep; here
 * the sweep is due first (10 ms before the slot), and it took back the task the executor was about to start.
 */
const SLOT = Date.UTC(2026, 0, 1, 0, 1, 0);
/** The sweep at start-up, then the next one 15 s later: 10 ms before SLOT, after the task was written ahead. */
const SLOT_T0 = SLOT - 15_010;
/** Past SLOT's lease, 5 s into a later slot: the task written ahead is the one catch-up run. */
const SLOT_JUMP_TO = SLOT + JUMP + 5_000;

for (const { name, store, skip } of STORES) {
  describe(`a forward wall-clock jump longer than the lease past a slot written ahead, ${name} store`, skip ? { skip } : {}, () => {
    it('the task waiting for its slot keeps its lease and runs once', async () => {
      const clock = new ManualClock(SLOT_T0);
      const { store: wrapped, swept, sweptAfterJump } = countSweeps(store(clock), SLOT_JUMP_TO);
      const runs: number[] = [];
      const rt = await createRuntime({ store: wrapped, clock, maintenance: false, tasks: { tick: { run: () => void runs.push(clock.now()) } } });
      try {
        await rt.schedule('tick', { every: '1m', id: 'minute' });
        await waitNudging(clock, () => swept() === 1, 'the sweep at start-up');
        await clock.advanceTo(SLOT - PREPARE_LEAD_MS);
        await waitFor(async () => (await rt.list({ scheduleId: 'minute', state: 'running' })).tasks.length === 1, { label: 'the task written ahead' });
        assert.equal(swept(), 1, 'the next sweep is still to come');
        clock.set(SLOT_JUMP_TO);
        await waitNudging(clock, () => sweptAfterJump() > 0 && runs.length > 0, 'a sweep and the run after the jump');
        await waitNudging(clock, async () => (await rt.list({ scheduleId: 'minute', state: 'succeeded' })).tasks.length >= 1, 'the run stored');
        await clock.advance(0);
        await rt.flush();
        assert.deepEqual(runs, [SLOT_JUMP_TO], 'one run');
        const tasks = (await rt.list({ scheduleId: 'minute' })).tasks;
        assert.deepEqual(tasks.map((t) => [t.key, t.state, t.attempts]), [[`schedule:minute:${SLOT}`, 'succeeded', 1]], 'the task written ahead, run once');
        assert.equal(rt.tree().children?.find((c) => c.address === 'tracker')?.info?.recovered, 0, 'nothing recovered');
      } finally {
        await rt.close({ timeout: 2000 });
      }
    });
  });
}
