/**
 * A batch the store refuses while it is reachable is narrowed down to the op it cannot write: the other ops of
 * the batch are written, the refused outcome becomes a failure saying why, refused output lines are dropped
 * with an error in the log, and a refusal that passes (the same op written again) gives nothing up.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, TroupeError } from '../../src/errors.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { SettleOp, Store } from '../../src/store/store.ts';
import { latch } from '../helpers/latch.ts';
import { overrideStore } from '../helpers/store-override.ts';

interface Refusing {
  store: Store;
  /** Settle calls, with their op counts. */
  calls: number[];
  /** Holds the next settle until opened. */
  hold(): { open: () => void };
}

/** A memory store whose settle refuses (TROUPE_ERR_STORE) every batch holding an op `refuse` picks. */
function refusingStore(refuse: (op: SettleOp) => boolean): Refusing {
  const inner = createMemoryStore();
  const calls: number[] = [];
  let gate: Promise<void> | undefined;
  const store: Store = overrideStore(inner, {
    settle: async (ops: readonly SettleOp[]) => {
      calls.push(ops.length);
      if (gate) {
        const g = gate;
        gate = undefined;
        await g;
      }
      if (ops.some(refuse)) throw new TroupeError(ErrorCodes.STORE, 'the store refused this batch');
      return inner.settle(ops);
    },
  });
  return {
    store,
    calls,
    hold() {
      const l = latch();
      gate = l.opened;
      return { open: l.open };
    },
  };
}

function recordingLogger() {
  const errors: Array<{ message: string; fields?: Record<string, unknown> }> = [];
  const noop = () => {};
  return { errors, logger: { debug: noop, info: noop, warn: noop, error: (message: string, fields?: Record<string, unknown>) => errors.push({ message, fields }) } };
}

async function open(store: Store, logger: ReturnType<typeof recordingLogger>['logger']): Promise<Runtime> {
  return createRuntime({
    store,
    maintenance: false,
    logger,
    concurrency: 32,
    tasks: {
      echo: { run: (input: unknown) => input },
      noisy: {
        run: (input: unknown, ctx: { log(line: string): void }) => {
          ctx.log(String(input));
          return 'done';
        },
      },
    },
  });
}

describe('tracker: refused writes', () => {
  it('a refused outcome in a batch fails its own task; the batch mates are written', async () => {
    const r = refusingStore((op) => op.type === 'succeeded' && op.result === 'poison');
    const log = recordingLogger();
    const rt = await open(r.store, log.logger);
    try {
      const held = r.hold();
      const first = rt.run('echo', 'first');
      // The first outcome's write is held: the next ones gather into one batch behind it.
      const rest = Array.from({ length: 9 }, (_, i) => rt.run('echo', i === 4 ? 'poison' : `t${i}`));
      await new Promise<void>((resolve) => setImmediate(resolve));
      held.open();
      assert.equal(await first, 'first');
      const settled = await Promise.allSettled(rest);
      const fulfilled = settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<unknown>).value);
      assert.deepEqual(fulfilled.sort(), ['t0', 't1', 't2', 't3', 't5', 't6', 't7', 't8']);
      const rejected = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
      assert.match(String(rejected.reason.message), /could not be stored: .*refused this batch/);
      const [failed] = (await rt.list({ state: 'failed' })).tasks;
      assert.equal(failed?.input, 'poison');
      assert.equal(failed?.error?.code, ErrorCodes.STORE);
      assert.ok(r.calls.some((n) => n > 1), `a batch of several ops was written (calls: ${r.calls.join(',')})`);
      assert.ok(log.errors.some((e) => /fails instead/.test(e.message)));
      assert.equal(await rt.run('echo', 'after'), 'after');
    } finally {
      await rt.close({ timeout: 2000 });
    }
  });

  it('a refusal that passes gives nothing up', async () => {
    let refusals = 2;
    const r = refusingStore((op) => op.type === 'succeeded' && op.result === 'flaky' && refusals-- > 0);
    const log = recordingLogger();
    const rt = await open(r.store, log.logger);
    try {
      assert.equal(await rt.run('echo', 'flaky'), 'flaky');
      assert.equal(refusals, -1, 'written on the third try');
      assert.equal((await rt.list({ state: 'succeeded' })).tasks.length, 1);
      assert.equal(log.errors.filter((e) => /fails instead|dropped/.test(e.message)).length, 0);
    } finally {
      await rt.close({ timeout: 2000 });
    }
  });

  it('refused output lines are dropped with an error in the log; the task still succeeds', async () => {
    const r = refusingStore((op) => op.type === 'output' && op.lines.some((l) => l.text === 'bad line'));
    const log = recordingLogger();
    const rt = await open(r.store, log.logger);
    try {
      assert.equal(await rt.run('noisy', 'bad line'), 'done');
      assert.equal(await rt.run('noisy', 'good line'), 'done');
      const tasks = (await rt.list({ state: 'succeeded' })).tasks;
      assert.equal(tasks.length, 2);
      const texts = (await Promise.all(tasks.map((t) => rt.output(t.id)))).flat().map((l) => l.text);
      assert.deepEqual(texts, ['good line']);
      assert.ok(log.errors.some((e) => /output lines refused by the store; dropped/.test(e.message) && e.fields?.lines === 1));
    } finally {
      await rt.close({ timeout: 2000 });
    }
  });

  it('an outcome refused even as a failure is left to its lease', async () => {
    const r = refusingStore((op) => (op.type === 'succeeded' && op.result === 'doomed') || (op.type === 'failed' && /could not be stored/.test(op.error.message)));
    const log = recordingLogger();
    const rt = await open(r.store, log.logger);
    try {
      void rt.run('echo', 'doomed').catch(() => {});
      const until = Date.now() + 20_000;
      while (!log.errors.some((e) => /runs again when its lease expires/.test(e.message))) {
        assert.ok(Date.now() < until, 'the outcome was given up');
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const [running] = (await rt.list({ state: 'running' })).tasks;
      assert.equal(running?.input, 'doomed', 'the task keeps its lease and runs again once it expires');
      assert.equal(await rt.run('echo', 'after'), 'after');
    } finally {
      await rt.close({ timeout: 2000 });
    }
  });
});
