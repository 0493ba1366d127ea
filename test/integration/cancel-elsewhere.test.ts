/**
 * A cancel made by another process on a shared SQLite file reaches the node that runs the task. SQLite sends no
 * notifications (PostgreSQL's NOTIFY does this there): the node reads the states of the tasks it runs or holds
 * every second and stops those cancelled meanwhile.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRuntime } from '../../src/runtime.ts';
import type { TaskFact } from '../../actors/task/messages.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const stubborn = new URL('../fixtures/commands/ignore-sigterm.js', import.meta.url).pathname;

describe('a cancel made on another node of a SQLite file', () => {
  it('stops the process on the node that runs it, with the lines it prints on its way out', async () => {
    const file = `sqlite:${tempDb('cancel-elsewhere')}`;
    // A has no such task: only B can run it.
    const a = await createRuntime({ store: file, nodeId: 'a', maintenance: false, tasks: {} });
    const b = await createRuntime({ store: file, nodeId: 'b', maintenance: false, tasks: { stubborn: { command: process.execPath, args: [stubborn], killGrace: '200ms' } } });
    try {
      const stopped = new Promise<TaskFact>((resolve) => b.on('task.stopped', resolve));
      const id = await b.enqueue('stubborn');
      await waitFor(async () => (await b.output(id)).some((l) => l.text === 'ready'), { label: 'B runs it' });
      assert.equal(await a.cancel(id), true);
      assert.equal((await stopped).id, id);
      assert.deepEqual((await b.output(id)).map((l) => l.text), ['ready', 'got SIGTERM']);
      assert.equal((await a.get(id))?.state, 'cancelled');
    } finally {
      await b.close();
      await a.close();
    }
  });
});
