/**
 * `task.stopped`: the node that ran a cancelled task says when its work has ended, and only once the lines it
 * printed meanwhile are stored (a follower ends its output there).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRuntime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { SettleOp, Store } from '../../src/store/store.ts';
import type { TaskCancelled, TaskFact } from '../../actors/task/messages.ts';
import { latch } from '../helpers/latch.ts';
import { overrideStore } from '../helpers/store-override.ts';

/** A memory store whose settles can be held: `hold()` holds the next settle holding an output op until opened. */
function holdingStore(): { store: Store; hold(): { open: () => void; reached: Promise<void> } } {
  const inner = createMemoryStore();
  let held: { gate: Promise<void>; reached: () => void } | undefined;
  const store: Store = overrideStore(inner, {
    settle: async (ops: readonly SettleOp[]) => {
      if (held && ops.some((op) => op.type === 'output')) {
        const h = held;
        held = undefined;
        h.reached();
        await h.gate;
      }
      return inner.settle(ops);
    },
  });
  return {
    store,
    hold() {
      const gate = latch();
      const reached = latch();
      held = { gate: gate.opened, reached: reached.open };
      return { open: gate.open, reached: reached.opened };
    },
  };
}

describe('tracker: task.stopped', () => {
  it('follows the cancel of a running task once the lines it printed while stopping are stored', async () => {
    const { store, hold } = holdingStore();
    const started = latch();
    const rt = await createRuntime({
      store,
      maintenance: false,
      tasks: {
        // Prints one line when told to stop, then ends.
        polite: {
          run: (_input: unknown, ctx: { signal: AbortSignal; log(line: string): void }) =>
            new Promise((_resolve, reject) => {
              ctx.signal.addEventListener('abort', () => {
                ctx.log('stopping');
                reject(ctx.signal.reason);
              });
              started.open();
            }),
        },
      },
    });
    // A failed assertion must not leave the write held: close would wait for it.
    let release = (): void => {};
    try {
      const facts: TaskFact['type'][] = [];
      for (const type of ['task.cancelled', 'task.stopped'] as const) rt.on(type, (f) => facts.push(f.type));
      const id = await rt.enqueue('polite');
      await started.opened;
      const stopped = new Promise<TaskFact>((resolve) => rt.on('task.stopped', resolve));
      const seen = new Promise<void>((resolve) => {
        const off = rt.inspect((r) => {
          if (r.msg.type === 'tracker.stopped') {
            off();
            resolve();
          }
        });
      });
      const write = hold();
      release = write.open;
      assert.equal(await rt.cancel(id), true);
      await write.reached;
      // The line is captured and its write is held: the run has ended, but it is not stopped until the line is stored.
      await seen;
      assert.deepEqual(facts, ['task.cancelled']);
      write.open();
      const fact = await stopped;
      assert.equal(fact.id, id);
      assert.equal(fact.name, 'polite');
      assert.deepEqual((await rt.output(id)).map((l) => l.text), ['stopping']);
      assert.deepEqual(facts, ['task.cancelled', 'task.stopped']);
    } finally {
      release();
      await rt.close();
    }
  });

  it('names the node that ran it on task.cancelled, and none for a queued task', async () => {
    const started = latch();
    const rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      concurrency: 1,
      tasks: {
        wait: { run: (_input: unknown, ctx: { signal: AbortSignal }) => new Promise((_r, reject) => (started.open(), ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))) },
      },
    });
    try {
      const cancelled = new Map<string, TaskCancelled>();
      rt.on('task.cancelled', (f) => cancelled.set(f.id, f));
      const running = await rt.enqueue('wait');
      await started.opened;
      const queued = await rt.enqueue('wait');
      const stopped = new Promise<TaskFact>((resolve) => rt.on('task.stopped', resolve));
      assert.equal(await rt.cancel(queued), true);
      assert.equal(await rt.cancel(running), true);
      assert.equal((await stopped).id, running);
      await rt.flush();
      assert.equal(cancelled.get(running)?.previous, 'running');
      assert.equal(cancelled.get(running)?.owner, rt.nodeId);
      assert.equal(cancelled.get(queued)?.previous, 'queued');
      assert.equal(cancelled.get(queued)?.owner, undefined);
    } finally {
      await rt.close();
    }
  });

  it('keeps nothing an inline handler logs after its grace ended the run', async () => {
    const started = latch();
    const late = latch();
    const logged = latch();
    const rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      tasks: {
        // Ignores its stop; logs once more when the test says so, long after the grace.
        deaf: {
          killGrace: '50ms',
          run: (_input: unknown, ctx: { log(line: string): void }) =>
            new Promise(() => {
              ctx.log('working');
              started.open();
              void late.opened.then(() => {
                ctx.log('too late');
                logged.open();
              });
            }),
        },
      },
    });
    try {
      const id = await rt.enqueue('deaf');
      await started.opened;
      const stopped = new Promise<TaskFact>((resolve) => rt.on('task.stopped', resolve));
      assert.equal(await rt.cancel(id), true);
      assert.equal((await stopped).id, id);
      late.open();
      await logged.opened;
      await rt.flush();
      assert.deepEqual((await rt.output(id)).map((l) => l.text), ['working']);
    } finally {
      late.open();
      await rt.close();
    }
  });
  it('publishes task.cancelled as the cancel commits, without another read of the task', async () => {
    // A read of the task after the cancel is held: a reader that heard of the cancel another way (a NOTIFY, a poll)
    // would see it final meanwhile, and a follower would end before the fact that tells it to wait for the stop.
    const inner = createMemoryStore();
    let holdGets = false;
    const gets = latch();
    const store: Store = overrideStore(inner, {
      get: async (id: string) => {
        if (holdGets) await gets.opened;
        return inner.get(id);
      },
    });
    const rt = await createRuntime({ store, maintenance: false, concurrency: 1, tasks: { block: { run: () => new Promise(() => {}) }, wait: { run: () => 'ran' } } });
    try {
      rt.start('block');
      const id = await rt.enqueue('wait');
      const facts: TaskFact[] = [];
      rt.on('task.cancelled', (f) => facts.push(f));
      holdGets = true;
      assert.equal(await rt.cancel(id), true);
      await Promise.resolve();
      assert.deepEqual(facts.map((f) => [f.id, (f as TaskCancelled).name, (f as TaskCancelled).previous]), [[id, 'wait', 'queued']], 'published with the reply, the read still held');
    } finally {
      gets.open();
      await rt.close({ timeout: 0 });
    }
  });
});
