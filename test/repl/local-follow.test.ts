// Following a task on the embedded runtime (the REPL's `follow`, `troupe run`): a cancel of a running task ends
// the follow only once its process has stopped, with the lines it printed while stopping (QA finding cli 7).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRuntime } from '../../src/index.ts';
import { createLocalBackend } from '../../src/repl/local-backend.ts';

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
