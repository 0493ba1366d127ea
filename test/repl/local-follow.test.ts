// Following a task on the embedded runtime (the REPL's `follow`, `troupe run`): a cancel of a running task ends
// the follow only once its process has stopped, with the lines it printed while stopping (QA finding cli 7).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createRuntime } from '../../src/index.ts';
import { createLocalBackend } from '../../src/repl/local-backend.ts';
import { latch } from '../helpers/latch.ts';
import { waiterReadsStore } from '../helpers/store-override.ts';

const stubborn = new URL('../fixtures/commands/ignore-sigterm.js', import.meta.url).pathname;

describe('local follow of a cancelled task', () => {
  it('gets the lines the process printed after the cancel, then the end', async () => {
    const rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { stubborn: { command: process.execPath, args: [stubborn], killGrace: '200ms' } } });
    const backend = createLocalBackend(rt, { closeRuntime: true });
    try {
      const id = await rt.enqueue('stubborn');
      const lines: string[] = [];
      let cancel: Promise<boolean> | undefined;
      const end = await backend.follow(id, {
        onLine: (line) => {
          lines.push(line.text);
          if (line.text === 'ready') cancel = rt.cancel(id);
        },
      });
      assert.equal(await cancel, true);
      assert.equal(end?.state, 'cancelled');
      assert.deepEqual(lines, ['ready', 'got SIGTERM']);
      assert.deepEqual((await rt.output(id)).map((l) => l.text), lines);
    } finally {
      await backend.close();
    }
  });
});

describe('local follow on a durable store', () => {
  it('leaves nothing read for the task once the follow is stopped', async () => {
    const clock = new ManualClock(Date.now());
    const { store, reads } = waiterReadsStore('follow-gone');
    const gate = latch();
    const rt = await createRuntime({
      store,
      clock,
      maintenance: false,
      tasks: { talk: { run: async (_i: unknown, ctx: { log(line: string): void }) => (ctx.log('ready'), await gate.opened, 'done') } },
    });
    try {
      const id = await rt.enqueue('talk');
      const stop = new AbortController();
      const end = await createLocalBackend(rt, { closeRuntime: false }).follow(id, {
        signal: stop.signal,
        onLine: (line) => line.text === 'ready' && stop.abort(),
      });
      assert.equal(end, undefined);
      // The follow waited for the task's end; once stopped, the task is no longer read for it.
      for (let i = 0; i < 60; i++) await clock.advance(100);
      assert.equal(reads(), 0);
      // A caller that still waits is read for as before.
      const handle = rt.start('talk');
      for (let i = 0; i < 3; i++) await clock.advance(100);
      assert.equal(reads(), 1);
      gate.open();
      assert.equal(await handle.result, 'done');
    } finally {
      gate.open();
      await rt.close();
    }
  });
});
