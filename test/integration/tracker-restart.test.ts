// What a tracker had queued when it crashed, and the op that crashes it.
//
// - The outcomes waiting in a crashed tracker's queue (here: behind a store that was out of reach, to be tried again)
//   were never written: their tasks came back when their lease ended and ran again. A `flush()` waiting on that
//   tracker was not answered either. Its successor now writes them (TrackerBacklog).
// - A store call that threw instead of rejecting crashed the tracker (from its mailbox on the memory store; on a
//   durable store from the end-of-turn write, an uncaught exception): it is now a refused write like any other.
// - An op that crashes the tracker while its write is prepared would crash every successor that writes it again:
//   it is given up at the second crash, with an error in the log, and the runtime goes on.
//
// A ManualClock drives the leases (default lease 30 s). Each store is tried (PostgreSQL when TROUPE_TEST_PG_URL is set).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, TroupeError } from '../../src/errors.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import type { SettleOp } from '../../src/store/store.ts';
import { advanceInSteps, clockedStores, crashActor, recovered, waitNudging, watchLeases } from '../helpers/lease-clock.ts';
import { waitFor } from '../helpers/wait-for.ts';

const T0 = Date.UTC(2026, 0, 1);
const LEASE = 30_000;
const STEP = 5_000;
const NODE_ID = 'n1';

const STORES = clockedStores('tracker-restart');

function recordingLogger() {
  const errors: string[] = [];
  const noop = () => {};
  return { errors, logger: { debug: noop, info: noop, warn: noop, error: (message: string) => void errors.push(message) } };
}

for (const { name, store: makeStore, skip } of STORES) {
  describe(`tracker restarts, ${name} store`, skip ? { skip } : {}, () => {
    it('an outcome queued in a tracker that crashed is written by its successor: the task runs once', async () => {
      const clock = new ManualClock(T0);
      const inner = makeStore(clock);
      let failing = true;
      let refused = 0;
      const { store, busy } = watchLeases(inner, {
        // Out of reach while `failing`: the tracker keeps the outcome and tries again after its backoff.
        settle: async (ops: readonly SettleOp[]) => {
          if (failing && ops.some((op) => op.type === 'succeeded')) {
            refused++;
            throw new TroupeError(ErrorCodes.STORE_UNAVAILABLE, 'the store is out of reach');
          }
          return inner.settle(ops);
        },
      });
      const runs: number[] = [];
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false, logger: recordingLogger().logger,
        tasks: { work: { run: (_input: unknown, ctx) => void runs.push(ctx.attempt) } },
      });
      try {
        const id = await rt.enqueue('work');
        await waitNudging(clock, () => refused >= 1, 'the outcome refused once');
        // Waits for the queued outcome: answered by the successor once it is written.
        const flushed = rt.flush();
        await crashActor(rt, 'tracker');
        failing = false;
        await waitNudging(clock, async () => (await inner.get(id))?.state === 'succeeded', 'the outcome written');
        await flushed;
        await advanceInSteps(clock, busy, 3 * LEASE, STEP);

        const task = await inner.get(id);
        assert.equal(task?.state, 'succeeded');
        assert.equal(task?.attempts, 1);
        assert.deepEqual(runs, [1], 'it ran once');
        assert.equal(recovered(rt), 0, 'nothing taken back');
      } finally {
        failing = false;
        await rt.close({ timeout: 2000 });
      }
    });

    it('a store call that throws instead of rejecting is a refused write: the tracker does not crash', async () => {
      const clock = new ManualClock(T0);
      const inner = makeStore(clock);
      let poisonId: string | undefined;
      const store = watchLeases(inner, {
        // Not async: it throws at the call, as a store's synchronous part could.
        settle: (ops: readonly SettleOp[]) => {
          if (ops.some((op) => op.id === poisonId && op.type === 'succeeded')) throw new Error('cannot bind this value');
          return inner.settle(ops);
        },
      }).store;
      const crashes: string[] = [];
      const { logger } = recordingLogger();
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false, logger,
        tasks: { work: { run: (input: unknown) => input } },
      });
      rt.on('actor.crashed', (e) => crashes.push(e.address));
      try {
        const handle = rt.start('work', 'poison');
        poisonId = handle.id;
        let others: unknown;
        void Promise.all([rt.run('work', 'a'), rt.run('work', 'b')]).then((values) => (others = values));
        // Refused alone three times (with backoff between), then failed in its place; the others are written.
        await waitFor(async () => {
          await clock.advance(250);
          return others !== undefined && (await inner.get(handle.id))?.state === 'failed';
        }, { label: 'the poison outcome given up', timeout: 5000 });
        assert.deepEqual(others, ['a', 'b']);
        const task = await inner.get(handle.id);
        assert.equal(task?.error?.code, ErrorCodes.STORE);
        assert.deepEqual(crashes, [], 'no actor crashed');
        assert.equal(rt.status, 'running');
      } finally {
        await rt.close({ timeout: 2000 });
      }
    });

    it('an op that crashes the tracker while its write is prepared is given up at the second crash; the runtime goes on', async () => {
      const clock = new ManualClock(T0);
      const store = makeStore(clock);
      const { errors, logger } = recordingLogger();
      const rt = await createRuntime({
        store, clock, nodeId: NODE_ID, concurrency: 4, maintenance: false, logger,
        tasks: { work: { run: (input: unknown) => input } },
      });
      const restarts: number[] = [];
      rt.on('actor.restarted', (e) => {
        if (e.address === 'tracker') restarts.push(e.restarts);
      });
      try {
        // An outcome no write can read (as a malformed message would be): it crashes the tracker at each write.
        rt.bus.tell('test', 'tracker', { type: 'tracker.settle', get op(): never { throw new Error('poison op'); }, name: 'work', startedAt: T0, held: true } as never);
        await waitNudging(clock, () => errors.includes('an outcome crashed the tracker; given up: the task runs again when its lease expires'), 'the poison op given up');
        assert.deepEqual(restarts, [1, 2], 'the tracker restarted twice, then wrote no more of it');
        assert.equal(rt.status, 'running', 'the runtime did not escalate');
        assert.equal(await rt.run('work', 'after'), 'after');
        await rt.flush();
        assert.deepEqual(restarts, [1, 2]);
      } finally {
        await rt.close({ timeout: 2000 });
      }
    });
  });
}
