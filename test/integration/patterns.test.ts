// The six patterns end to end on a memory-store runtime: real worker threads, real subprocesses, a ManualClock.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError, PermanentError, TroupeError } from '../../src/errors.ts';
import { createRuntime } from '../../src/runtime.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { latch } from '../helpers/latch.ts';
import { withRuntime } from '../helpers/runtime.ts';

const fixture = (p: string) => new URL(`../fixtures/${p}`, import.meta.url);
const node = process.execPath;

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isTroupeError(error), `expected a TroupeError, got ${String(error)}`);
    assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected rejection with ${code}`);
}

describe('P1 run', () => {
  it('runs inline, handler and command tasks and returns their results', async () => {
    await withRuntime(
      {
        tasks: {
          sum: { run: (i: { a: number; b: number }) => i.a + i.b },
          add: { handler: fixture('handlers/add.ts') },
          echo: { command: node, args: [fixture('commands/progress.js').pathname] },
        },
      },
      async (rt) => {
        assert.equal(await rt.run('sum', { a: 2, b: 3 }), 5);
        assert.equal(await rt.run('add', { a: 40, b: 2 }), 42);
        assert.deepEqual(await rt.run('echo'), { ok: true, rows: [1, 2, 3] });
      },
    );
  });

  it('refuses unknown names and invalid input before anything is stored', async () => {
    await withRuntime({ tasks: { typed: { run: (i: { n: number }) => i.n * 2, input: z.object({ n: z.number() }) } } }, async (rt) => {
      await rejectsWithCode(rt.run('missing', {}), ErrorCodes.UNKNOWN_TASK);
      const error = (await rejectsWithCode(rt.run('typed', { n: 'x' }), ErrorCodes.INVALID_INPUT)) as { details?: { issues?: unknown[] } };
      assert.ok(Array.isArray(error.details?.issues));
      await rejectsWithCode(rt.enqueue('typed', { n: 1 }, { priority: 1.5 }), ErrorCodes.INVALID_OPTION);
      await rejectsWithCode(rt.enqueue('typed', { n: 1 }, { bogus: 1 } as never), ErrorCodes.INVALID_OPTION);
      // PostgreSQL cannot keep an unpaired surrogate: refused here for every store, as a key's is.
      await rejectsWithCode(rt.enqueue('typed', { n: 1 }, { group: 'g\ud800' }), ErrorCodes.INVALID_OPTION);
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await rejectsWithCode(rt.enqueue('typed', circular), ErrorCodes.INVALID_INPUT);
      assert.equal((await rt.list()).tasks.length, 0);
      assert.equal(await rt.run('typed', { n: 21 }), 42);
    });
  });

  it('rejects with the task error, its code kept, and a permanent error is not retried', async () => {
    let calls = 0;
    await withRuntime(
      {
        tasks: {
          bad: { handler: fixture('handlers/throw.ts') },
          perm: { retry: { attempts: 5, delay: 1 }, run: () => { calls++; throw new PermanentError('never'); } },
          plain: { run: () => { throw new Error('boom'); } },
        },
      },
      async (rt) => {
        await rejectsWithCode(rt.run('bad', { field: 'x' }), ErrorCodes.INVALID_INPUT);
        const failed = (await rejectsWithCode(rt.run('perm'), ErrorCodes.TASK_FAILED)) as Error;
        assert.equal(calls, 1);
        assert.match(String((failed.cause as Error).message), /never/);
        await rejectsWithCode(rt.run('plain'), ErrorCodes.TASK_FAILED);
      },
    );
  });

  it('an input refused when the task runs (TROUPE_ERR_INVALID_INPUT) fails at once, not retried', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'troupe-outside-'));
    try {
      await withRuntime(
        {
          maintenance: true,
          retry: { attempts: 3, backoff: 'fixed', delay: 1 },
          tasks: { picky: { run: () => { throw new TroupeError(ErrorCodes.INVALID_INPUT, 'not this one'); } } },
        },
        async (rt) => {
          for (const [name, input] of [['picky', undefined], ['cleanup-temp-files', { dir: outside }]] as const) {
            const h = rt.start(name, input);
            await rejectsWithCode(h.result, ErrorCodes.INVALID_INPUT);
            const view = await rt.get(h.id);
            assert.deepEqual([view?.state, view?.attempts], ['failed', 1], name);
          }
        },
      );
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('inline code that rejects with undefined, or throws a value that cannot be read, fails its task (the process goes on)', async () => {
    const getter = new Error('g');
    Object.defineProperty(getter, 'details', { enumerable: true, get: () => { throw new Error('getter boom'); } });
    const trap = new Proxy({}, { get: () => { throw new Error('trap'); }, ownKeys: () => { throw new Error('trap'); } });
    await withRuntime(
      {
        tasks: {
          bare: { run: () => Promise.reject() },
          undef: { run: async () => { throw undefined; } },
          noproto: { run: async () => { throw Object.create(null); } },
          getter: { run: async () => { throw getter; } },
          trap: { run: () => { throw trap; } },
          ok: { run: () => 'still running' },
        },
      },
      async (rt) => {
        for (const name of ['bare', 'undef', 'noproto', 'getter', 'trap']) {
          const failed = (await rejectsWithCode(rt.run(name), ErrorCodes.TASK_FAILED)) as Error;
          assert.equal((await rt.list({ name })).tasks[0]?.state, 'failed', name);
          if (name === 'getter' || name === 'trap') assert.match(failed.message, /cannot be read/);
        }
        assert.equal(await rt.run('ok'), 'still running');
      },
    );
  });

  it('a bad ctx.progress() value is TROUPE_ERR_INVALID_OPTION in inline code as in a handler', async () => {
    await withRuntime(
      {
        tasks: {
          inline: { run: (_input: unknown, ctx) => ctx.progress('half' as never) },
          zero: { run: (_input: unknown, ctx) => ctx.progress({ done: 1, total: 0 }) },
          handler: { handler: fixture('handlers/bad-progress.ts') },
        },
      },
      async (rt) => {
        for (const name of ['inline', 'zero', 'handler']) await rejectsWithCode(rt.run(name), ErrorCodes.INVALID_OPTION);
      },
    );
  });

  it('a handler that throws a value that cannot be read fails its task; its thread lives on (not WORKER_CRASHED)', async () => {
    await withRuntime({ pool: { maxThreads: 1 }, tasks: { unreadable: { handler: fixture('handlers/throw-unreadable.ts') } } }, async (rt) => {
      for (const kind of ['getter', 'trap']) {
        const failed = (await rejectsWithCode(rt.run('unreadable', { kind }), ErrorCodes.TASK_FAILED)) as Error;
        assert.match(failed.message, /cannot be read/, kind);
      }
    });
  });
});

describe('whenFinal (followers of a task)', () => {
  it('settles at once for a task already final, with its stored outcome', async () => {
    await withRuntime({ tasks: { ok: { run: (n: number) => n * 2 }, bad: { run: () => { throw new Error('no'); } } } }, async (rt) => {
      const ok = rt.start('ok', 21);
      await ok.result;
      assert.equal(await rt.whenFinal(ok.id), 42);
      const bad = rt.start('bad');
      await bad.result.catch(() => undefined);
      await assert.rejects(rt.whenFinal(bad.id), /no/);
    });
  });
});

describe('command argv built from the input', () => {
  it('an args() that throws, or builds no argv, fails the task once with the reason, not retried', async () => {
    let calls = 0;
    const tasks = {
      throws: {
        command: process.execPath,
        retry: { attempts: 3, delay: 1, jitter: 0 },
        args: (input: { file?: string }) => {
          calls++;
          if (input.file === undefined) throw new Error('input.file is required');
          return [input.file];
        },
      },
      notArgv: { command: process.execPath, retry: { attempts: 3, delay: 1, jitter: 0 }, args: () => [42] as unknown as string[] },
    };
    await withRuntime({ tasks }, async (rt) => {
      const error = (await rejectsWithCode(rt.run('throws', {}), ErrorCodes.INVALID_INPUT)) as Error;
      assert.match(error.message, /args\(input\) threw: input\.file is required/);
      assert.equal(calls, 1, 'not retried');
      const id = (await rt.list({ name: 'throws' })).tasks[0]!.id;
      assert.deepEqual([(await rt.get(id))?.state, (await rt.get(id))?.attempts], ['failed', 1]);
      await rejectsWithCode(rt.run('notArgv', {}), ErrorCodes.INVALID_INPUT);
      const other = (await rt.list({ name: 'notArgv' })).tasks[0]!;
      assert.deepEqual([other.state, other.attempts], ['failed', 1]);
    });
  });
});

describe('P2 start', () => {
  it('streams a command’s output and progress live, then its result', async () => {
    await withRuntime({ tasks: { report: { command: node, args: [new URL('../../examples/scripts/report.js', import.meta.url).pathname, '4', '5'] } } }, async (rt) => {
      const h = rt.start('report');
      const progress: number[] = [];
      h.on('progress', (p) => progress.push(p.fraction));
      const lines: string[] = [];
      for await (const line of h.output) lines.push(line.text);
      assert.deepEqual(lines, ['step 1/4: processed 1000 rows', 'step 2/4: processed 2000 rows', 'step 3/4: processed 3000 rows', 'step 4/4: processed 4000 rows']);
      assert.deepEqual(progress, [0.25, 0.5, 0.75, 1]);
      assert.deepEqual(await h.result, { rows: 4000 });
      assert.equal(h.state, 'succeeded');
      const stored = await rt.output(h.id);
      assert.equal(stored.length, 4);
    });
  });

  it('cancels a running command: the process ends and the result rejects CANCELLED', async () => {
    await withRuntime({ tasks: { forever: { command: node, args: [fixture('commands/forever.js').pathname], killGrace: '2s' } } }, async (rt) => {
      const h = rt.start('forever');
      for await (const line of h.output) if (line.text === 'ready') break;
      assert.equal(await h.cancel(), true);
      await rejectsWithCode(h.result, ErrorCodes.CANCELLED);
      await waitFor(() => rt.pids().subprocesses.length === 0, { timeout: 5000, label: 'child gone' });
      assert.equal((await rt.get(h.id))?.state, 'cancelled');
    });
  });
});

describe('P3 runAll', () => {
  it('settles every item in input order under the limit; one failure does not stop the rest', async () => {
    let active = 0;
    let peak = 0;
    await withRuntime(
      {
        tasks: {
          work: {
            run: async (i: { n: number }) => {
              active++;
              peak = Math.max(peak, active);
              await new Promise((r) => setImmediate(r));
              active--;
              if (i.n === 3) throw new Error('three');
              return i.n * 10;
            },
          },
        },
      },
      async (rt) => {
        const settled = await rt.runAll(Array.from({ length: 8 }, (_, n) => ({ name: 'work', input: { n } })), { concurrency: 2 });
        assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
        assert.equal((settled[5] as { value: number }).value, 50);
        assert.equal((settled[3] as { reason: { code: string } }).reason.code, ErrorCodes.TASK_FAILED);
        assert.ok(peak <= 2, `peak ${peak}`);
        const withUnknown = await rt.runAll([{ name: 'nope' }, { name: 'work', input: { n: 1 } }]);
        assert.equal(withUnknown[0]!.status, 'rejected');
        assert.equal(withUnknown[1]!.status, 'fulfilled');
      },
    );
  });

  it('runs 50 concurrent commands', async () => {
    await withRuntime({ concurrency: 50, tasks: { lines: { command: node, args: (i: { n: number }) => [fixture('commands/print-lines.js').pathname, String(i.n)] } } }, async (rt) => {
      const settled = await rt.runAll(Array.from({ length: 50 }, (_, i) => ({ name: 'lines', input: { n: 20 + i } })), { concurrency: 50 });
      assert.equal(settled.filter((s) => s.status === 'fulfilled').length, 50);
      assert.equal((await rt.output((await rt.list({ limit: 1 })).tasks[0]!.id)).length > 0, true);
    });
  });
});

describe('P4 enqueue and tracking', () => {
  it('returns an id at once and records state, attempts, timings and history', async () => {
    await withRuntime({ tasks: { sum: { run: (i: { a: number }) => i.a + 1 } } }, async (rt) => {
      const seen: string[] = [];
      rt.on('task.queued', (e) => seen.push(e.type));
      rt.on('task.started', (e) => seen.push(e.type));
      const done = new Promise((resolve) => rt.on('task.succeeded', resolve));
      const id = await rt.enqueue('sum', { a: 1 });
      await done;
      const task = await rt.get(id);
      assert.equal(task?.state, 'succeeded');
      assert.equal(task?.result, 2);
      assert.equal(task?.attempts, 1);
      assert.deepEqual(task?.history?.map((h) => h.to), ['queued', 'running', 'succeeded']);
      assert.ok(task!.timings.finishedAt! >= task!.timings.startedAt!);
      assert.deepEqual(seen, ['task.queued', 'task.started']);
      assert.equal(await rt.get('0000000000000000000000000000'), undefined);
      assert.equal(await rt.get('../../etc/passwd'), undefined);
    });
  });

  it('list refuses a filter it cannot honour instead of listing the wrong tasks', async () => {
    await withRuntime({ tasks: { sum: { run: (i: { a: number }) => i.a + 1 } } }, async (rt) => {
      await rt.enqueue('sum', { a: 1 });
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [{ state: 'done' }, /filter\.state/],
        [{ state: ['queued', 'nope'] }, /filter\.state/],
        [{ stat: 'failed' }, /filter\.stat\b/],
        [{ limit: NaN }, /filter\.limit/],
        [{ limit: 0 }, /filter\.limit/],
        [{ limit: 1.5 }, /filter\.limit/],
        [{ limit: 1001 }, /filter\.limit/],
        [{ limit: '2' }, /filter\.limit/],
        [{ cursor: 'garbage' }, /filter\.cursor/],
        [{ name: 5 }, /filter\.name/],
        [{ since: 'yesterday' }, /filter\.since/],
      ];
      for (const [filter, path] of bad) {
        await assert.rejects(rt.list(filter as never), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION && path.test(e.message), JSON.stringify(filter));
      }
      assert.equal((await rt.list({ state: ['queued', 'running', 'succeeded'], limit: 1000 })).tasks.length, 1);
    });
  });

  it('runs called in one turn are stored with one enqueue message; a key repeated inside the burst runs once', async () => {
    let calls = 0;
    await withRuntime({ tasks: { sum: { run: (input: { a: number }) => (calls++, input.a + 1) } } }, async (rt) => {
      const enqueues: number[] = [];
      const stop = rt.inspect((r) => {
        if (r.msg.type === 'tracker.enqueue' && r.to === 'orchestrator') enqueues.push((r.msg as { tasks: unknown[] }).tasks.length);
      });
      const plain = Array.from({ length: 50 }, (_, i) => rt.run('sum', { a: i }));
      const keyed = [rt.run('sum', { a: 100 }, { key: 'same' }), rt.run('sum', { a: 200 }, { key: 'same' })];
      assert.deepEqual(await Promise.all(plain), Array.from({ length: 50 }, (_, i) => i + 1));
      assert.deepEqual(await Promise.all(keyed), [101, 101], 'the second run with the key waits for the first task');
      stop();
      assert.deepEqual(enqueues, [52]);
      assert.equal(calls, 51);
    });
  });

  it('a run refused at the door rejects alone; the other runs of its turn go on', async () => {
    await withRuntime({ tasks: { sum: { input: z.object({ a: z.number() }), run: (input: { a: number }) => input.a } } }, async (rt) => {
      const good = rt.run('sum', { a: 1 });
      const unknown = rt.run('nope', {});
      const invalid = rt.run('sum', { a: 'x' });
      await rejectsWithCode(unknown, ErrorCodes.UNKNOWN_TASK);
      await rejectsWithCode(invalid, ErrorCodes.INVALID_INPUT);
      assert.equal(await good, 1);
    });
  });

  it('idempotency key: a second enqueue returns the first task, also after it finished', async () => {
    await withRuntime({ tasks: { sum: { run: () => 7 } } }, async (rt) => {
      const a = await rt.enqueue('sum', {}, { key: 'order-42' });
      assert.equal(await rt.run('sum', {}, { key: 'order-42' }), 7);
      const b = await rt.enqueue('sum', {}, { key: 'order-42' });
      assert.equal(a, b);
      assert.equal((await rt.list()).tasks.length, 1);
    });
  });

  it('retries with backoff on the injected clock, then succeeds; history shows each step', async () => {
    const clock = new ManualClock();
    let attempts = 0;
    await withRuntime({ clock, tasks: { flaky: { retry: { attempts: 3, backoff: 'fixed', delay: '10s', jitter: 0 }, run: () => { if (++attempts < 3) throw new Error(`try ${attempts}`); return 'ok'; } } } }, async (rt) => {
      const retrying: number[] = [];
      rt.on('task.retrying', (e) => retrying.push(e.runAt - e.at));
      const result = rt.run('flaky');
      await waitFor(() => retrying.length === 1);
      assert.equal(attempts, 1);
      await clock.advance(9_999);
      assert.equal(attempts, 1);
      await clock.advance(1);
      await waitFor(() => retrying.length === 2);
      await clock.advance(10_000);
      assert.equal(await result, 'ok');
      assert.deepEqual(retrying, [10_000, 10_000]);
      const [task] = (await rt.list()).tasks;
      const view = await rt.get(task!.id);
      assert.deepEqual(view?.history?.map((h) => h.to), ['queued', 'running', 'retrying', 'queued', 'running', 'retrying', 'queued', 'running', 'succeeded']);
      assert.equal(view?.attempts, 3);
    });
  });

  it('dead letters: a task out of attempts ends failed, and retry() puts it back', async () => {
    let fail = true;
    await withRuntime({ tasks: { once: { run: () => { if (fail) throw new Error('down'); return 'up'; } } } }, async (rt) => {
      const id = await rt.enqueue('once');
      await waitFor(async () => (await rt.get(id))?.state === 'failed');
      assert.equal((await rt.list({ state: 'failed' })).tasks.length, 1);
      fail = false;
      const done = new Promise((resolve) => rt.on('task.succeeded', resolve));
      await rt.retry(id);
      await done;
      assert.equal((await rt.get(id))?.result, 'up');
      await rejectsWithCode(rt.retry(id), ErrorCodes.CONFLICT);
      await rejectsWithCode(rt.retry('ffffffffffffffffffffffffffff'), ErrorCodes.NOT_FOUND);
    });
  });

  it('delayed tasks wait for their time', async () => {
    const clock = new ManualClock();
    let ran = 0;
    await withRuntime({ clock, tasks: { later: { run: () => ++ran } } }, async (rt) => {
      const id = await rt.enqueue('later', {}, { delay: '5m' });
      assert.equal((await rt.get(id))?.state, 'scheduled');
      await clock.advance(299_999);
      assert.equal(ran, 0);
      await clock.advance(1);
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded');
      assert.equal(ran, 1);
    });
  });

  for (const store of ['memory', 'sqlite'] as const) {
    it(`a second delayed task runs at its time after the first one's (${store})`, async () => {
      // The timer that woke the first claim is spent on it; the claim took a task, so no empty claim re-arms it.
      const clock = new ManualClock();
      const dir = store === 'sqlite' ? mkdtempSync(join(tmpdir(), 'troupe-delayed-')) : undefined;
      const ran: string[] = [];
      try {
        await withRuntime({ clock, store: dir ? `sqlite:${join(dir, 't.db')}` : 'memory', tasks: { later: { run: (i: { n: string }) => void ran.push(i.n) } } }, async (rt) => {
          const a = await rt.enqueue('later', { n: 'a' }, { delay: 100 });
          const b = await rt.enqueue('later', { n: 'b' }, { delay: 300 });
          await clock.advance(100);
          await waitFor(async () => (await rt.get(a))?.state === 'succeeded');
          await rt.flush();
          await clock.advance(200);
          // Nudged: a timer armed after the advance for a time it passed fires at the next advance on a manual clock.
          const ranB = async () => (await clock.advance(0), (await rt.get(b))?.state === 'succeeded');
          await waitFor(ranB, { label: 'the second delayed task ran at its time' });
          assert.deepEqual(ran, ['a', 'b']);
        });
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('timeouts and cancellation', () => {
  it('a timeout aborts ctx.signal and ends the task timed_out', async () => {
    const clock = new ManualClock();
    await withRuntime({ clock, tasks: { slow: { timeout: '1s', run: (_i: unknown, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) } } }, async (rt) => {
      const started = new Promise((resolve) => rt.on('task.started', resolve));
      const outcome = rejectsWithCode(rt.run('slow'), ErrorCodes.TIMEOUT);
      await started;
      await clock.advance(1000);
      await outcome;
      const [task] = (await rt.list()).tasks;
      assert.equal(task?.state, 'timed_out');
    });
  });

  it('a handler run waiting for a busy thread is not timed out for the wait: its timeout counts from when a thread takes it', async () => {
    const clock = new ManualClock();
    await withRuntime({ clock, pool: { maxThreads: 1 }, tasks: { wait: { timeout: '1s', handler: fixture('handlers/add-or-wait.ts') } } }, async (rt) => {
      const first = rt.start('wait', { wait: true });
      const second = rt.start('wait', { wait: true });
      let firstWaits = false;
      let secondWaits = false;
      first.on('output', () => (firstWaits = true));
      second.on('output', () => (secondWaits = true));
      await waitFor(() => firstWaits, { timeout: 20_000 });
      assert.equal(secondWaits, false, 'the second waits behind the first: one thread');
      await clock.advance(1000);
      await rejectsWithCode(first.result, ErrorCodes.TIMEOUT);
      // the thread is free: it takes the second, which has run for no time yet
      await waitFor(() => secondWaits || second.state !== 'running', { timeout: 20_000 });
      assert.equal(second.state, 'running', 'not timed out while it waited for the thread');
      await clock.advance(975);
      assert.equal((await rt.get(second.id))?.state, 'running', 'its own second is not over');
      await clock.advance(100);
      await rejectsWithCode(second.result, ErrorCodes.TIMEOUT);
    });
  });

  it('inline code that ignores its signal and never returns is ended after the grace; the slot is freed', async () => {
    const clock = new ManualClock();
    await withRuntime({ clock, concurrency: 1, tasks: { stuck: { timeout: '1s', killGrace: '2s', run: () => new Promise(() => {}) }, quick: { run: () => 'ok' } } }, async (rt) => {
      const started = new Promise((resolve) => rt.on('task.started', resolve));
      const outcome = rejectsWithCode(rt.run('stuck'), ErrorCodes.TIMEOUT);
      await started;
      await clock.advance(1000);
      await rt.flush();
      assert.equal((await rt.list()).tasks[0]?.state, 'running');
      await clock.advance(2000);
      await outcome;
      assert.equal(await rt.run('quick'), 'ok');
    });
  });

  it('a handler in an endless loop is ended after the grace; the pool serves the next task', async () => {
    await withRuntime({ pool: { maxThreads: 1 }, tasks: { spin: { handler: fixture('handlers/forever-loop.ts'), timeout: 200, killGrace: 100 }, add: { handler: fixture('handlers/add.ts') } } }, async (rt) => {
      await rejectsWithCode(rt.run('spin'), ErrorCodes.TIMEOUT);
      assert.equal(await rt.run('add', { a: 1, b: 1 }), 2);
    });
  });

  it('cancel while queued and while running; a late result does not overwrite cancelled', async () => {
    const gate = latch();
    await withRuntime({ concurrency: 1, tasks: { block: { run: async () => { await gate.opened; return 'late'; } } } }, async (rt) => {
      const started = new Promise((resolve) => rt.on('task.started', resolve));
      const running = rt.run('block');
      const queued = await rt.enqueue('block');
      await started;
      assert.equal(await rt.cancel(queued), true);
      assert.equal((await rt.get(queued))?.state, 'cancelled');
      const [runningTask] = (await rt.list({ state: 'running' })).tasks;
      assert.equal(await rt.cancel(runningTask!.id), true);
      await rejectsWithCode(running, ErrorCodes.CANCELLED);
      gate.open();
      await rt.flush();
      assert.equal((await rt.get(runningTask!.id))?.state, 'cancelled');
      assert.equal(await rt.cancel(runningTask!.id), false);
      await rejectsWithCode(rt.cancel('ffffffffffffffffffffffffffff'), ErrorCodes.NOT_FOUND);
    });
  });
});

describe('capacity and ordering', () => {
  it('honours a per-name concurrency limit', async () => {
    let active = 0;
    let peak = 0;
    await withRuntime({ concurrency: 8, tasks: { one: { concurrency: 1, run: async () => { active++; peak = Math.max(peak, active); await new Promise((r) => setImmediate(r)); active--; } } } }, async (rt) => {
      await Promise.all(Array.from({ length: 6 }, () => rt.run('one')));
      assert.equal(peak, 1);
    });
  });

  it('priority strategy: higher priority runs first', async () => {
    const gate = latch();
    const order: string[] = [];
    await withRuntime({ concurrency: 1, strategy: 'priority', tasks: { block: { run: () => gate.opened }, rec: { run: (i: { tag: string }) => void order.push(i.tag) } } }, async (rt) => {
      const started = new Promise((resolve) => rt.on('task.started', resolve));
      const blocker = rt.run('block');
      await started;
      const runs = [rt.run('rec', { tag: 'low' }, { priority: 1 }), rt.run('rec', { tag: 'high' }, { priority: 10 }), rt.run('rec', { tag: 'mid' }, { priority: 5 })];
      await rt.flush();
      gate.open();
      await Promise.all([blocker, ...runs]);
      assert.deepEqual(order, ['high', 'mid', 'low']);
    });
  });

  it('pause and resume a task name: its queue is kept', async () => {
    let ran = 0;
    await withRuntime({ tasks: { p: { run: () => ++ran } } }, async (rt) => {
      rt.pause('p');
      await rt.flush();
      const id = await rt.enqueue('p');
      await rt.flush();
      assert.equal((await rt.get(id))?.state, 'queued');
      assert.deepEqual(rt.pausedNames(), ['p']);
      const done = new Promise((resolve) => rt.on('task.succeeded', resolve));
      rt.resume('p');
      await done;
      assert.equal(ran, 1);
    });
  });
});

describe('P5 schedules', () => {
  it('nothing periodic exists unless asked; an every-schedule fires once per slot; bad cron is refused', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 0, 500));
    let ticks = 0;
    await withRuntime({ clock, tasks: { tick: { run: () => ++ticks } } }, async (rt) => {
      assert.deepEqual(await rt.schedules(), []);
      await rejectsWithCode(rt.schedule('tick', { cron: 'not a cron' }), ErrorCodes.INVALID_SCHEDULE);
      await rejectsWithCode(rt.schedule('missing', { every: '1s' }), ErrorCodes.UNKNOWN_TASK);
      await rt.schedule('tick', { every: '10s', id: 'ten' });
      await clock.advance(9_500);
      await waitFor(() => ticks === 1);
      await clock.advance(10_000);
      await waitFor(() => ticks === 2);
      const tasks = (await rt.list({ scheduleId: 'ten' })).tasks;
      assert.equal(tasks.length, 2);
      await rt.pauseSchedule('ten');
      await clock.advance(30_000);
      await rt.flush();
      assert.equal(ticks, 2);
      const manual = await rt.triggerSchedule('ten');
      await waitFor(async () => (await rt.get(manual))?.state === 'succeeded');
      assert.equal(await rt.unschedule('ten'), true);
      assert.deepEqual(await rt.schedules(), []);
    });
  });
});

describe('P7 advise', () => {
  it('advises from traits, first match wins', async () => {
    await withRuntime({}, async (rt) => {
      assert.equal(rt.advise({ recurring: true, streaming: true }).pattern, 'schedule');
      assert.equal(rt.advise({ expectedDurationMs: 120_000 }).pattern, 'start');
      assert.equal(rt.advise({ count: 10 }).pattern, 'runAll');
      assert.equal(rt.advise({ needsResult: false }).pattern, 'enqueue');
      assert.equal(rt.advise({}).pattern, 'run');
      assert.throws(() => rt.advise({ count: 0 }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
    });
  });
});

describe('lifecycle', () => {
  it('close is idempotent, stops intake, and hands back running tasks after the deadline', async () => {
    const rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { hang: { run: () => new Promise(() => {}), killGrace: 10 }, ok: { run: () => 1 } } });
    const started = new Promise((resolve) => rt.on('task.started', resolve));
    const hanging = rt.run('hang');
    await started;
    const first = rt.close({ timeout: 20 });
    assert.equal(rt.close(), first);
    await first;
    assert.equal(rt.status, 'stopped');
    await rejectsWithCode(hanging, ErrorCodes.CLOSED);
    await rejectsWithCode(rt.run('ok'), ErrorCodes.CLOSED);
  });

  it('bad options are refused with a code', async () => {
    await rejectsWithCode(createRuntime({ store: 'memory', concurrency: 0 }), ErrorCodes.INVALID_OPTION);
    await rejectsWithCode(createRuntime({ store: 'memory', strategy: 'random' as never }), ErrorCodes.INVALID_OPTION);
    await rejectsWithCode(createRuntime({ store: 'mysql://x' }), ErrorCodes.INVALID_OPTION);
  });

  it('a crashing actor is restarted by its supervisor; the tree shows it', async () => {
    await withRuntime({ tasks: { ok: { run: () => 'fine' } } }, async (rt) => {
      const restarted = new Promise((resolve) => rt.on('actor.restarted', resolve));
      // A message the tracker cannot handle safely: a query of an unknown kind makes its receive throw.
      rt.bus.tell('test', 'tracker', { type: 'tracker.query', query: { kind: 'get', get id(): string { throw new Error('poison'); } } as never, replyTo: 'nobody' });
      await restarted;
      const tracker = rt.tree().children?.find((c) => c.address === 'tracker');
      assert.equal(tracker?.restarts, 1);
      assert.equal(await rt.run('ok'), 'fine');
    });
  });
});

describe('restarts by hand', () => {
  for (const address of ['scheduler', 'executor', 'tracker', 'orchestrator']) {
    it(`tasks still run after restarting the ${address}`, async () => {
      await withRuntime({ tasks: { echo: { run: (i: unknown) => i } } }, async (rt) => {
        assert.equal(await rt.run('echo', 1), 1);
        await rt.restartActor(address);
        assert.equal(await rt.run('echo', 2), 2);
        assert.equal(rt.tree().children?.find((c) => c.address === address)?.restarts, 1);
      });
    });
  }
});
