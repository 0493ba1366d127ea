// A deep queue of runs that end at once (inline code) drains in chains of microtasks: the scheduler hands the
// event loop back every CLAIM_TURN_MS, so timers and I/O keep their turns while it drains.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLAIM_TURN_MS } from '../../actors/scheduler/scheduler.ts';
import { createRuntime } from '../../src/runtime.ts';
import { tempDb } from '../helpers/temp-db.ts';

describe('the event loop during a drain', () => {
  for (const store of ['memory', 'sqlite'] as const) {
    it(`${store}: timers and setImmediate callbacks run while 20,000 inline no-ops drain`, async () => {
      const total = 20_000;
      const rt = await createRuntime({ store: store === 'memory' ? 'memory' : `sqlite:${tempDb('event-loop')}`, maintenance: false, concurrency: 16, tasks: { noop: { run: () => null } } });
      try {
        rt.pause('noop');
        for (let i = 0; i < total; i += 1000) await rt.enqueueMany(Array.from({ length: 1000 }, () => ({ name: 'noop' })));
        let done = 0;
        const drained = new Promise<void>((resolve) => rt.on('task.succeeded', () => ++done === total && resolve()));
        let turns = 0;
        let ticks = 0;
        let finished = false;
        const spin = (): void => {
          if (finished) return;
          turns++;
          setImmediate(spin);
        };
        const tick = (): void => {
          if (finished) return;
          ticks++;
          setTimeout(tick, 0);
        };
        const started = performance.now();
        setImmediate(spin);
        setTimeout(tick, 0);
        rt.resume('noop');
        await drained;
        finished = true;
        const ms = performance.now() - started;
        // a turn at least every CLAIM_TURN_MS of draining (plus whatever one claim takes): far more than one
        const atLeast = Math.max(2, Math.floor(ms / (CLAIM_TURN_MS * 10)));
        assert.ok(turns >= atLeast, `${turns} setImmediate turns in a ${ms.toFixed(0)} ms drain (wanted ≥ ${atLeast})`);
        assert.ok(ticks >= atLeast, `${ticks} timer ticks in a ${ms.toFixed(0)} ms drain (wanted ≥ ${atLeast})`);
        const counts = (await rt.counts()).byState;
        assert.equal(counts.queued + counts.running, 0, 'nothing left (the memory store keeps only the latest 10,000 finished)');
      } finally {
        await rt.close({ timeout: 2000, force: true });
      }
    });
  }
});
