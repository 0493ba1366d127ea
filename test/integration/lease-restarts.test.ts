// Leases across the restart of an actor, and of a claim that reaches the executor late.
//
// - A tracker that crashed and was restarted by its supervisor knew nothing of the tasks the process still held:
//   it armed no heartbeat until the next start, and its own sweep took back a long task still running here after
//   its lease (the task ran twice at once).
// - An executor restarted by its supervisor ends its predecessor's runs (soft stop, then hard after `killGrace`),
//   but the new one did not name them when leases were renewed: a run slow to stop (a command deaf to SIGTERM with
//   a long grace, a handler spinning deaf to its signal until its thread is ended at the grace) lost its lease and ran
//   again beside itself.
// - A claim whose answer reached the executor after its lease could have ended (a stalled claim) was started as it
//   came, even when the task had meanwhile been taken back and claimed again: it ran twice.
//
// A ManualClock drives the leases (default lease 30 s: heartbeat 10 s, sweep 15 s). Each store is tried
// (PostgreSQL when TROUPE_TEST_PG_URL is set).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { ClaimRequest, Store } from '../../src/store/store.ts';
import { latch } from '../helpers/latch.ts';
import { advanceInSteps, clockedStores, crashActor, recovered, waitNudging, watchLeases } from '../helpers/lease-clock.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { isRunning } from '../process/pid-probe.ts';

const T0 = Date.UTC(2026, 0, 1);
const LEASE = 30_000;
const STEP = 5_000;
/** Four leases. */
const SPAN = 4 * LEASE;
const NODE_ID = 'n1';
const deafOnce = new URL('../fixtures/commands/deaf-once.js', import.meta.url).pathname;
const foreverLoop = new URL('../fixtures/handlers/forever-loop.ts', import.meta.url);

const dirs: string[] = [];
after(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const STORES = clockedStores('lease-restarts');

/**
 * Store overrides under which claims come from the scheduler only (no claim in the enqueue's write), and the first
 * claim that takes a task is held on its way back until `gate` opens, as a stalled claim would be.
 */
function holdFirstClaim(inner: Store, gate: { opened: Promise<void> }): { overrides: Partial<Record<keyof Store, unknown>>; held: () => boolean } {
  let held = false;
  return {
    held: () => held,
    overrides: {
      enqueueAndClaim: undefined,
      claim: async (request: ClaimRequest) => {
        const tasks = await inner.claim(request);
        if (tasks.length > 0 && !held) {
          held = true;
          await gate.opened;
        }
        return tasks;
      },
    },
  };
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
        await crashActor(rt, 'tracker');
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

    it("a restarted executor's predecessor's run keeps its lease until its process ends, then its task runs again", { timeout: 60_000 }, async () => {
      const clock = new ManualClock(T0);
      const { store, busy, swept } = watchLeases(makeStore(clock));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-deaf-'));
      dirs.push(dir);
      const lines: string[] = [];
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false,
        // Deaf to SIGTERM, with a grace far longer than the lease: its process outlives the restart by far.
        tasks: { deaf: { command: process.execPath, args: [deafOnce, path.join(dir, 'marker')], killGrace: '10m' } },
      });
      rt.on('task.output', (e) => lines.push(e.line.text));
      let pid = 0;
      try {
        await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
        const id = await rt.enqueue('deaf');
        await waitNudging(clock, () => lines.includes('ready'), 'the command running', 20_000);
        pid = Number(fs.readFileSync(path.join(dir, 'marker'), 'utf8'));
        await crashActor(rt, 'executor');
        await waitNudging(clock, () => lines.includes('got SIGTERM'), 'the predecessor stopping its run', 20_000);
        await advanceInSteps(clock, busy, SPAN, STEP);

        assert.ok(isRunning(pid), 'the first run still runs (deaf to SIGTERM, its grace not over)');
        const task = await store.get(id);
        assert.equal(task?.state, 'running', 'never taken back while its first run runs');
        assert.equal(task?.attempts, 1);
        assert.ok((task?.leaseUntil ?? 0) > clock.now(), `its lease (${task?.leaseUntil}) is alive at ${clock.now()}`);
        assert.equal(recovered(rt), 0);
        assert.ok(!lines.includes('again'), 'not started a second time beside the first');

        // The first run's process ends at last: its task is given back (not counted, `executor stopped` in its history) and runs again at once.
        process.kill(pid, 'SIGKILL');
        await waitNudging(clock, async () => (await store.get(id))?.state === 'succeeded', 'the task run again', 20_000);
        const done = await store.get(id);
        assert.equal(done?.attempts, 1, 'the stopped run was given back: its attempt not counted');
        assert.ok(lines.includes('again'));
        const history = await store.history(id);
        assert.ok(history.some((h) => h.to === 'queued' && h.reason === 'executor stopped'), JSON.stringify(history));
      } finally {
        if (pid > 0 && isRunning(pid)) process.kill(pid, 'SIGKILL');
        await rt.close({ timeout: 5000 });
      }
    });

    it('a claim that reaches the executor after its lease could have ended starts only if the task is still its own', async () => {
      const clock = new ManualClock(T0);
      const gate = latch();
      const inner = makeStore(clock);
      const hold = holdFirstClaim(inner, gate);
      const { store, busy, swept } = watchLeases(inner, hold.overrides);
      const runs: number[] = [];
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false,
        tasks: { work: { run: (_input: unknown, ctx) => void runs.push(ctx.attempt) } },
      });
      try {
        await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
        const id = await rt.enqueue('work');
        await waitNudging(clock, () => hold.held(), 'the claim held on its way');
        // Past its lease: a sweep takes the task back (nothing here names it), and it is claimed again.
        await advanceInSteps(clock, busy, 2 * LEASE, STEP);
        gate.open();
        await waitNudging(clock, async () => (await store.get(id))?.state === 'succeeded', 'the task succeeded');
        await rt.flush();
        await waitNudging(clock, () => (rt.tree().children?.find((c) => c.address === 'executor')?.info?.rechecking ?? 0) === 0, 'the late claim checked');
        assert.equal(runs.length, 1, `ran once: attempts ${JSON.stringify(runs)}`);
        assert.equal((await store.get(id))?.attempts, runs[0]);
      } finally {
        gate.open();
        await rt.close({ timeout: 2000 });
      }
    });

    it('a claim that reaches the executor after its lease ended, still its own, is renewed and starts', async () => {
      const clock = new ManualClock(T0);
      const gate = latch();
      const inner = makeStore(clock);
      const hold = holdFirstClaim(inner, gate);
      // No sweep anywhere takes it back meanwhile.
      const { store } = watchLeases(inner, { ...hold.overrides, recoverExpired: async () => [] });
      const runs: number[] = [];
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false,
        tasks: { work: { run: (_input: unknown, ctx) => void runs.push(ctx.attempt) } },
      });
      try {
        const id = await rt.enqueue('work');
        await waitNudging(clock, () => hold.held(), 'the claim held on its way');
        await clock.advance(LEASE + STEP);
        gate.open();
        await waitNudging(clock, async () => (await store.get(id))?.state === 'succeeded', 'the task succeeded');
        assert.deepEqual(runs, [1], 'started once, under its claim');
        const history = await store.history(id);
        assert.ok(!history.some((h) => h.to === 'queued' && h.from === 'running'), JSON.stringify(history));
      } finally {
        gate.open();
        await rt.close({ timeout: 2000 });
      }
    });
  });
}

describe('leases across an executor restart, worker threads', () => {
  it("a restarted executor's predecessor's handler keeps its lease until its thread is ended at the grace, then its task runs again", { timeout: 60_000 }, async () => {
    const clock = new ManualClock(T0);
    const { store, busy, swept } = watchLeases(createMemoryStore({ clock }));
    const lines: string[] = [];
    const rt = await createRuntime({
      store, clock, nodeId: NODE_ID, concurrency: 2, maintenance: false, pool: { maxThreads: 1 },
      // Spins deaf to ctx.signal: only ending its thread stops it, at the end of a grace far longer than the lease.
      tasks: { spin: { handler: foreverLoop, killGrace: '10m' } },
    });
    rt.on('task.output', (e) => lines.push(e.line.text));
    try {
      await waitNudging(clock, () => swept() >= 1, 'the sweep at start-up');
      const id = await rt.enqueue('spin');
      await waitNudging(clock, () => lines.length === 1, 'the handler spinning', 20_000);
      await crashActor(rt, 'executor');
      await advanceInSteps(clock, busy, SPAN, STEP);

      const task = await store.get(id);
      assert.equal(task?.state, 'running', 'never taken back while its thread spins');
      assert.equal(task?.attempts, 1);
      assert.ok((task?.leaseUntil ?? 0) > clock.now(), `its lease (${task?.leaseUntil}) is alive at ${clock.now()}`);
      assert.equal(recovered(rt), 0);
      assert.equal(lines.length, 1, 'not started a second time beside the first');

      // The grace ends: the thread is ended, the task given back (`executor stopped` in its history) and started again.
      await clock.advance(10 * 60_000);
      await waitNudging(clock, () => lines.length === 2, 'the task run again', 20_000);
      const history = await store.history(id);
      assert.ok(history.some((h) => h.to === 'queued' && h.reason === 'executor stopped'), JSON.stringify(history));
      assert.equal((await store.get(id))?.attempts, 1, 'given back: its attempt not counted');
    } finally {
      // A spinning thread ends at its grace, by this clock: it is moved along while the runtime closes.
      const closed = rt.close({ force: true, timeout: 1000 });
      await waitFor(async () => {
        await clock.advance(10 * 60_000);
        return rt.status === 'stopped';
      }, { label: 'the runtime closed', timeout: 20_000 });
      await closed;
    }
  });
});
