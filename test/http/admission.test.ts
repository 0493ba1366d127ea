// Resource-aware admission (opt-in): while the health check is in error, this node holds its intake of the user
// task names (not a pause: another node on the same store goes on running them) and takes them again when it
// recovers; names paused by hand and built-ins are left alone. Driven by a ManualClock: the queue-age reading is
// pushed past its error threshold by moving time, not by waiting.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createAdmission } from '../../src/http/admission.ts';
import { isTroupeError, ErrorCodes } from '../../src/errors.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { overrideStore } from '../helpers/store-override.ts';
import type { RuntimeIntake } from '../../actors/system-messages.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('admission', () => {
  let rt: Runtime;
  let other: Runtime;
  let clock: ManualClock;
  const store = createMemoryStore();
  before(async () => {
    clock = new ManualClock(Date.now());
    rt = await createRuntime({
      store,
      clock,
      tasks: { held: { run: () => 'held' }, work: { run: () => 'work' } },
    });
  });
  after(async () => {
    await other?.close({ timeout: 1000 });
    await rt?.close({ timeout: 1000 });
  });

  it('refuses a bad interval', () => {
    for (const intervalMs of [0, 50, 1.5, Number.NaN]) {
      assert.throws(() => createAdmission(rt, { intervalMs }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
    }
  });

  it('holds this node\'s intake of user names while the queue age is in error, and takes them again when it recovers', async () => {
    const intake: RuntimeIntake[] = [];
    const off = rt.on('runtime.intake', (f) => intake.push(f));
    rt.pause('held');
    await waitFor(() => rt.pausedNames().includes('held'));
    const stuck = await rt.enqueue('held');
    const admission = createAdmission(rt, { intervalMs: 1000 });
    try {
      // Two hours later the oldest due task is past the error threshold (1 h by default). A sample is real I/O:
      // one that fired during the jump may read the clock before it ended and see a young queue, and the next
      // sample waits for the clock to move again. So the clock keeps moving, a sample's interval at a time.
      await clock.advance(2 * 3_600_000);
      await waitFor(
        async () => {
          if (intake.some((f) => f.paused)) return true;
          await clock.advance(1000);
          return intake.some((f) => f.paused);
        },
        { timeout: 5000, label: 'intake paused' },
      );
      // Every user name, the one paused by hand too (its resume meanwhile would not let it in here).
      assert.deepEqual([...admission.paused], ['held', 'work']);
      await waitFor(() => rt.heldNames().includes('work'));
      assert.deepEqual(rt.heldNames(), ['held', 'work'], 'built-ins keep running');
      assert.deepEqual(rt.pausedNames(), ['held'], 'held here, paused nowhere');
      assert.equal(await store.getMeta('paused-names'), JSON.stringify(['held']));
      assert.match(intake.find((f) => f.paused)!.reason, /oldestDueAgeSec/);
      // Another node on the same store, with no admission of its own (started only now, so that its start-up is not
      // in this node's first CPU sample), runs the name this one holds: a pause would have held it there too.
      other = await createRuntime({ store: overrideStore(store, { close: async () => {} }), tasks: { held: { run: () => 'held' }, work: { run: () => 'work on the other node' } } });
      assert.equal(await other.run('work'), 'work on the other node');
      assert.deepEqual(other.heldNames(), []);

      await rt.cancel(stuck);
      // The next samples see an empty queue and resume what admission paused (not what the operator paused).
      await waitFor(
        async () => {
          await clock.advance(1000);
          return intake.some((f) => !f.paused);
        },
        { timeout: 5000, label: 'intake resumed' },
      );
      await waitFor(() => !rt.heldNames().includes('work'));
      assert.deepEqual([...admission.paused], []);
      assert.deepEqual(rt.pausedNames(), ['held']);
      other.holdIntake(['work']);
      await waitFor(() => other.heldNames().includes('work'));
      assert.equal(await rt.run('work'), 'work');
    } finally {
      admission.stop();
      off();
    }
  });
});
