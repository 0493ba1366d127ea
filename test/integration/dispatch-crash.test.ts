// A dispatch (claimed tasks handed to the executor) that crashes the executor.
//
// - The tasks of such a dispatch that the executor had not taken in stayed claimed and leased to this node, known to
//   no executor: they came back only when their lease ended, their attempt counted. The restarted executor now gives
//   them back at once (DispatchIntake): they run again at once, their attempt not counted.
// - A task that crashes every executor it is dispatched to is given up at the second crash: left to its lease (named
//   in no renewal, though its run was never ended), it comes back when that ends and is dead-lettered once its
//   attempts are used up. A run the crashed executor still ends keeps its lease meanwhile, across a restart of the
//   tracker too.
//
// The crash is a claimed record whose `options` throws when read: the executor reads it when it starts the run, after
// telling the tracker the run started. A ManualClock drives the leases (default lease 30 s). Each store is tried
// (PostgreSQL when TROUPE_TEST_PG_URL is set); the durable ones go through the prefetch buffer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes } from '../../src/errors.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import type { ClaimRequest, Store } from '../../src/store/store.ts';
import type { TaskRecord } from '../../src/task.ts';
import { latch } from '../helpers/latch.ts';
import { advanceInSteps, clockedStores, crashActor, recovered, waitNudging, watchLeases } from '../helpers/lease-clock.ts';

const T0 = Date.UTC(2026, 0, 1);
const LEASE = 30_000;
const STEP = 5_000;
const NODE_ID = 'n1';

const STORES = clockedStores('dispatch-crash');

/** A copy of `task` whose `options` throws when read (not enumerable: a spread or a log line does not read it). */
function poisoned(task: TaskRecord): TaskRecord {
  const copy = { ...task };
  Object.defineProperty(copy, 'options', {
    get(): never {
      throw new Error('poison record');
    },
    enumerable: false,
  });
  return copy;
}

/**
 * Store overrides under which claims come from the scheduler only (no claim in the enqueue's write), and the claimed
 * records `poison` picks are poisoned. `claims` records the size of each claim that took tasks.
 */
function poisonClaims(inner: Store, poison: (task: TaskRecord, claim: number) => boolean): { overrides: Partial<Record<keyof Store, unknown>>; claims: number[]; poisonedClaims: number[] } {
  const claims: number[] = [];
  const poisonedClaims: number[] = [];
  return {
    claims,
    poisonedClaims,
    overrides: {
      enqueueAndClaim: undefined,
      claim: async (request: ClaimRequest) => {
        const tasks = await inner.claim(request);
        if (tasks.length === 0) return tasks;
        claims.push(tasks.length);
        const out = tasks.map((task) => (poison(task, claims.length) ? poisoned(task) : task));
        if (out.some((task, i) => task !== tasks[i])) poisonedClaims.push(tasks.length);
        return out;
      },
    },
  };
}

function restartsOf(rt: Runtime, address: string): number[] {
  const restarts: number[] = [];
  rt.on('actor.restarted', (e) => {
    if (e.address === address) restarts.push(e.restarts);
  });
  return restarts;
}

function recordingLogger() {
  const errors: string[] = [];
  const noop = () => {};
  return { errors, logger: { debug: noop, info: noop, warn: noop, error: (message: string) => void errors.push(message) } };
}

function info(rt: Runtime, address: string): Record<string, unknown> | undefined {
  return rt.tree().children?.find((c) => c.address === address)?.info;
}

for (const { name, store: makeStore, skip } of STORES) {
  describe(`a dispatch that crashes the executor, ${name} store`, skip ? { skip } : {}, () => {
    it('its tasks are given back at once by the restarted executor and run, their attempts not counted', async () => {
      const clock = new ManualClock(T0);
      const inner = makeStore(clock);
      // Record `a` crashes the executor until it has crashed once; the others of its claim are its bystanders. (Not
      // "the first claim": the executor may hear of the resume after the scheduler and give that claim back, paused.)
      let crashed = false;
      const poison = poisonClaims(inner, (task) => !crashed && (task.input as { who: string }).who === 'a');
      const { store } = watchLeases(inner, poison.overrides);
      const runs: string[] = [];
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false,
        tasks: { work: { run: (input: unknown) => void runs.push((input as { who: string }).who) } },
      });
      const restarts = restartsOf(rt, 'executor');
      rt.on('actor.restarted', (e) => {
        if (e.address === 'executor') crashed = true;
      });
      try {
        await rt.pause('work');
        const ids = await rt.enqueueMany(['a', 'b', 'c'].map((who) => ({ name: 'work', input: { who } })));
        await rt.resume('work');
        await waitNudging(clock, async () => {
          for (const id of ids) if ((await store.get(id))?.state !== 'succeeded') return false;
          return true;
        }, 'every task succeeded (the clock not moved)');
        await rt.flush();

        assert.deepEqual(poison.poisonedClaims, [3], `one claim took the three tasks and crashed the executor: ${JSON.stringify(poison.claims)}`);
        assert.deepEqual(restarts, [1], 'the executor crashed once');
        assert.deepEqual(runs.sort(), ['a', 'b', 'c'], 'each ran once (the crashed start never ran its code)');
        assert.equal(clock.now(), T0, 'no lease had to end');
        for (const id of ids) {
          const task = await store.get(id);
          assert.equal(task?.attempts, 1, `${id}: given back, its attempt not counted`);
          const history = await store.history(id);
          assert.ok(history.some((h) => h.from === 'running' && h.to === 'queued' && h.reason === 'executor stopped'), JSON.stringify(history));
        }
        assert.equal(recovered(rt), 0, 'nothing taken back from an expired lease');
        assert.equal(info(rt, 'tracker')?.runningHere, 0, 'the tracker counts no run left over from the crashed start');
      } finally {
        await rt.close({ timeout: 2000 });
      }
    });

    it('a task that crashes it twice is given up to its lease: not renewed, taken back at lease end, then dead-lettered; a run still ending keeps its lease', { timeout: 60_000 }, async () => {
      const clock = new ManualClock(T0);
      const inner = makeStore(clock);
      const poison = poisonClaims(inner, (task) => (task.input as { who?: string } | undefined)?.who === 'poison');
      const { store, busy, swept } = watchLeases(inner, poison.overrides);
      const gate = latch();
      const runs: string[] = [];
      const { errors, logger } = recordingLogger();
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false, logger,
        tasks: {
          work: { run: (input: unknown) => void runs.push((input as { who: string }).who) },
          // Deaf to its stop, with a grace far longer than the test: the crashed executor's run of it keeps ending.
          long: { run: async () => { runs.push('long'); await gate.opened; return 'done'; }, killGrace: '10m' },
        },
      });
      const restarts = restartsOf(rt, 'executor');
      const trackerRestarts = restartsOf(rt, 'tracker');
      try {
        await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
        const longId = await rt.enqueue('long');
        await waitNudging(clock, () => runs.includes('long'), 'the long task running');
        const poisonId = await rt.enqueue('work', { who: 'poison' });
        await waitNudging(clock, () => errors.includes('a dispatched task crashed the executor; given up: it runs again when its lease expires'), 'the poison task given up');
        assert.deepEqual(restarts, [1, 2], 'given back after the first crash, given up at the second');
        assert.equal(rt.status, 'running', 'no escalation');
        // Another task runs meanwhile.
        await rt.enqueue('work', { who: 'other' });
        await waitNudging(clock, () => runs.includes('other'), 'another task run');

        // The restarted tracker asks the executor which tasks the process holds: the long run, not the given-up task.
        await crashActor(rt, 'tracker');
        // Its lease ends (not renewed, though the long run's are): taken back with an attempt added, claimed again,
        // it crashes one executor (its count is kept) and is given up at once; its last lease ends.
        await advanceInSteps(clock, busy, 4 * LEASE, STEP);
        const dead = await store.get(poisonId);
        assert.equal(dead?.state, 'failed', JSON.stringify(dead));
        assert.equal(dead?.error?.code, ErrorCodes.LEASE_EXPIRED);
        const history = (await store.history(poisonId)).map((h) => `${h.from}>${h.to}: ${h.reason ?? ''}`);
        assert.deepEqual(history.filter((h) => h.startsWith('running>')), [
          'running>queued: executor stopped',
          'running>queued: lease expired (one attempt added)',
          'running>failed: lease expired',
        ], JSON.stringify(history));
        assert.deepEqual(restarts, [1, 2, 3], 'one more crash for its one more claim, no loop');
        assert.deepEqual(trackerRestarts, [1]);
        assert.ok(!runs.includes('poison'), 'its code never ran');

        const long = await store.get(longId);
        assert.equal(long?.state, 'running', 'the run still ending was never taken back');
        assert.equal(long?.attempts, 1);
        assert.ok((long?.leaseUntil ?? 0) > clock.now(), `its lease (${long?.leaseUntil}) is alive at ${clock.now()}`);
        assert.deepEqual(runs.filter((r) => r === 'long'), ['long'], 'it ran once');
        assert.equal(recovered(rt), 2, 'only the given-up task was taken back, at each of its lease ends');
        assert.equal(rt.status, 'running');
      } finally {
        gate.open();
        await rt.close({ timeout: 2000 });
      }
    });
  });
}
