// Issue 8 through the runtime: groups and their fairness, rate limits on a ManualClock, debounce and throttle,
// flows and their failure policies, pause/resume of a group, and what a restart on SQLite keeps of each.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import type { TaskContext } from '../../src/registry.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import type { FlowChild } from '../../src/task.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { tempDb as tempDbIn } from '../helpers/temp-db.ts';

const tempDb = (): string => tempDbIn('features');

async function withRuntime(options: CreateRuntimeOptions, fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await createRuntime({ store: 'memory', maintenance: false, ...options });
  try {
    await fn(rt);
  } finally {
    await rt.close({ timeout: 2000, force: true });
  }
}

function schedulerInfo(rt: Runtime): Record<string, unknown> {
  return rt.tree().children?.find((c) => c.address === 'scheduler')?.info ?? {};
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Waits until nothing more can start now: the scheduler holds the executor's demand and no claim is in flight,
 * twice in a row across event-loop turns (messages in mailboxes are delivered by then).
 */
async function settledClaims(rt: Runtime): Promise<void> {
  const idle = (): boolean => {
    const info = schedulerInfo(rt);
    return info.hungry === true && info.claiming === false;
  };
  for (let stable = 0; stable < 2; ) {
    await turn();
    await waitFor(idle, { label: 'scheduler idle with a demand' });
    await turn();
    stable = idle() ? stable + 1 : 0;
  }
}

describe('groups', () => {
  for (const store of ['memory', 'sqlite'] as const) {
    it(`${store}: a flooding group does not starve a quiet one (groupConcurrency 1, concurrency 2)`, async () => {
      const flood = store === 'memory' ? 3000 : 1000;
      const quiet = 20;
      const starts: string[] = [];
      let floodStarted = 0;
      /** Flood starts counted when quiet task i was enqueued (before the call: it may start before it returns). */
      const quietEnqueuedAt: number[] = [];
      /** How many flood tasks started after each quiet task was enqueued, and before it started. */
      const waited: number[] = [];
      const tasks: CreateRuntimeOptions['tasks'] = {
        work: {
          groupConcurrency: 1,
          run: async (input: { group: string; i: number }) => {
            starts.push(input.group);
            if (input.group === 'flood') floodStarted++;
            else waited[input.i] = floodStarted - quietEnqueuedAt[input.i]!;
            await new Promise((resolve) => setImmediate(resolve));
          },
        },
      };
      const opts: CreateRuntimeOptions = store === 'memory' ? { tasks, concurrency: 2 } : { tasks, concurrency: 2, store: `sqlite:${tempDb()}` };
      await withRuntime(opts, async (rt) => {
        await rt.enqueueMany(Array.from({ length: flood }, (_, i) => ({ name: 'work', input: { group: 'flood', i }, options: { group: 'flood' } })));
        await waitFor(() => floodStarted >= 5);
        for (let i = 0; i < quiet; i++) {
          quietEnqueuedAt[i] = floodStarted;
          await rt.enqueue('work', { group: 'quiet', i }, { group: 'quiet' });
        }
        await waitFor(() => waited.filter((n) => n !== undefined).length === quiet, { timeout: 20_000, label: 'every quiet task started' });
        // Quiet task i waits behind the i quiet tasks before it, each one turn of its group's slot; the flood
        // takes the other slot meanwhile: about one flood start per quiet turn, never the flood's backlog.
        for (let i = 0; i < quiet; i++) assert.ok(waited[i]! <= i + 3, `quiet task ${i} waited for ${waited[i]} flood starts`);
        assert.ok(floodStarted < flood / 2, `the quiet group finished while the flood was still queued (${floodStarted} of ${flood} started)`);
        // never two of one group at once: starts alternate once both groups have work
        const counts = await rt.counts();
        assert.ok(counts.byState.running <= 2);
      });
    });
  }

  it('pauseGroup holds a group across names, keeps its queue through a restart, resumeGroup releases it', async () => {
    const db = tempDb();
    const ran: string[] = [];
    const tasks: CreateRuntimeOptions['tasks'] = {
      a: { run: (i: string) => void ran.push(i) },
      b: { run: (i: string) => void ran.push(i) },
    };
    let held: string[];
    {
      const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, tasks });
      try {
        rt.pauseGroup('tenant-9');
        await waitFor(() => rt.pausedGroups().includes('tenant-9'));
        held = [await rt.enqueue('a', 'a9', { group: 'tenant-9' }), await rt.enqueue('b', 'b9', { group: 'tenant-9' })];
        await rt.enqueue('a', 'a1', { group: 'tenant-1' });
        await rt.enqueue('b', 'plain');
        await waitFor(() => ran.length === 2);
        await settledClaims(rt);
        assert.deepEqual(ran.sort(), ['a1', 'plain']);
      } finally {
        await rt.close();
      }
    }
    const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, tasks });
    try {
      assert.deepEqual(rt.pausedGroups(), ['tenant-9']);
      await settledClaims(rt);
      assert.deepEqual((await Promise.all(held.map((id) => rt.get(id)))).map((t) => t?.state), ['queued', 'queued']);
      rt.resumeGroup('tenant-9');
      await waitFor(() => ran.length === 4);
      assert.deepEqual(ran.slice(2).sort(), ['a9', 'b9']);
      assert.deepEqual(rt.pausedGroups(), []);
    } finally {
      await rt.close();
    }
  });

  it('refuses a bad group key with TROUPE_ERR_INVALID_OPTION', async () => {
    await withRuntime({ tasks: { a: { run: () => 1 } } }, async (rt) => {
      for (const group of ['', 'x\u001fy', 42]) {
        await assert.rejects(rt.enqueue('a', null, { group: group as string }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
      }
      assert.throws(() => rt.pauseGroup(''), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
    });
  });
});

describe('rate limits', () => {
  it('max 3 per 1s: exactly 3 start, then 3 more once the clock moves 1 s', async () => {
    const clock = new ManualClock();
    let started = 0;
    const tasks: CreateRuntimeOptions['tasks'] = { call: { rateLimit: { max: 3, per: '1s' }, run: () => void started++ } };
    await withRuntime({ clock, tasks, concurrency: 10 }, async (rt) => {
      await rt.enqueueMany(Array.from({ length: 7 }, () => ({ name: 'call' })));
      await waitFor(() => started === 3);
      await settledClaims(rt);
      assert.equal(started, 3);
      await clock.advance(999);
      await settledClaims(rt);
      assert.equal(started, 3);
      await clock.advance(1);
      await waitFor(() => started === 6);
      await settledClaims(rt);
      assert.equal(started, 6);
      await clock.advance(1000);
      await waitFor(() => started === 7);
    });
  });

  it("by: 'group' gives each group its own window", async () => {
    const clock = new ManualClock();
    const started: string[] = [];
    const tasks: CreateRuntimeOptions['tasks'] = { sync: { rateLimit: { max: 1, per: '1m', by: 'group' }, run: (g: string) => void started.push(g) } };
    await withRuntime({ clock, tasks }, async (rt) => {
      for (const g of ['a', 'a', 'b', 'b', 'c']) await rt.enqueue('sync', g, { group: g });
      await waitFor(() => started.length === 3);
      await settledClaims(rt);
      assert.deepEqual(started.sort(), ['a', 'b', 'c']);
      await clock.advance(60_000);
      await waitFor(() => started.length === 5);
    });
  });

  it('refuses malformed rate limits at registration', async () => {
    await withRuntime({}, async (rt) => {
      for (const rateLimit of [{ max: 0, per: '1s' }, { max: 1, per: 0 }, { max: 1, per: '1s', by: 'tenant' }, { max: 1 }]) {
        assert.throws(() => rt.register(`bad-${Math.random()}`, { rateLimit: rateLimit as never, run: () => 1 }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
      }
    });
  });
});

describe('dedup', () => {
  it('debounce: repeated enqueues make one run with the latest input, a window after the last one', async () => {
    const clock = new ManualClock();
    const runs: unknown[] = [];
    const scheduled: number[] = [];
    await withRuntime({ clock, tasks: { index: { run: (i: unknown) => void runs.push(i) } } }, async (rt) => {
      rt.on('task.scheduled', (f) => scheduled.push(f.runAt - clock.now()));
      const dedup = { key: 'doc-1', mode: 'debounce' as const, window: '2s' };
      const id = await rt.enqueue('index', { v: 1 }, { dedup });
      await clock.advance(1500);
      assert.equal(await rt.enqueue('index', { v: 2 }, { dedup }), id);
      await clock.advance(1500);
      assert.equal(await rt.enqueue('index', { v: 3 }, { dedup }), id);
      await waitFor(() => scheduled.length === 3);
      assert.deepEqual(scheduled, [2000, 2000, 2000]);
      await clock.advance(1999);
      await settledClaims(rt);
      assert.deepEqual(runs, []);
      await clock.advance(1);
      await waitFor(() => runs.length === 1);
      assert.deepEqual(runs, [{ v: 3 }]);
      assert.equal((await rt.get(id))?.dedupKey, 'doc-1');
    });
  });

  it('throttle: one run per window, later enqueues within it answer with the first id', async () => {
    const clock = new ManualClock();
    let runs = 0;
    await withRuntime({ clock, tasks: { ping: { run: () => ++runs } } }, async (rt) => {
      const dedup = { key: 'user-1', mode: 'throttle' as const, window: '10s' };
      const first = await rt.enqueue('ping', null, { dedup });
      await waitFor(() => runs === 1);
      await clock.advance(9_999);
      assert.equal(await rt.enqueue('ping', null, { dedup }), first);
      await clock.advance(1);
      assert.notEqual(await rt.enqueue('ping', null, { dedup }), first);
      await waitFor(() => runs === 2);
    });
  });

  it('refuses dedup together with an idempotency key, and malformed dedup options', async () => {
    await withRuntime({ tasks: { a: { run: () => 1 } } }, async (rt) => {
      const bad = [
        { key: 'k', dedup: { key: 'd', mode: 'throttle', window: '1s' } },
        { dedup: { key: 'd', mode: 'sometimes', window: '1s' } },
        { dedup: { key: '', mode: 'throttle', window: '1s' } },
        { dedup: { key: 'd', mode: 'debounce', window: 0 } },
      ];
      for (const options of bad) {
        await assert.rejects(rt.enqueue('a', null, options as never), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
      }
      // start() always makes a new task to watch: dedup could hand it someone else's
      assert.throws(() => rt.start('a', null, { dedup: { key: 'd', mode: 'throttle', window: '1s' } } as never), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
    });
  });
});

describe('flows', () => {
  const makeTasks = (seen: Array<readonly FlowChild[] | undefined>): CreateRuntimeOptions['tasks'] => ({
    fetch: { retry: { attempts: 1 }, run: (url: string) => { if (url.startsWith('bad')) throw new Error(`cannot fetch ${url}`); return url.length; } },
    report: { run: (_input: unknown, ctx: TaskContext) => { seen.push(ctx.children); return (ctx.children ?? []).map((c) => c.result ?? c.state); } },
  });

  it('the parent runs after its children and sees their results; task.queued marks it due', async () => {
    const seen: Array<readonly FlowChild[] | undefined> = [];
    await withRuntime({ tasks: makeTasks(seen) }, async (rt) => {
      const queued: string[] = [];
      rt.on('task.queued', (f) => queued.push(f.id));
      const id = await rt.flow({ name: 'report', input: null, children: [{ name: 'fetch', input: 'a' }, { name: 'fetch', input: 'bbb' }] });
      assert.equal((await rt.get(id))?.flow?.policy, 'fail');
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded');
      assert.deepEqual((await rt.get(id))?.result, [1, 3]);
      assert.deepEqual(seen[0]?.map((c) => [c.name, c.state]), [['fetch', 'succeeded'], ['fetch', 'succeeded']]);
      assert.ok(queued.includes(id), 'task.queued published for the parent');
      const children = (await rt.list({ parentId: id })).tasks;
      assert.equal(children.length, 2);
      assert.ok(children.every((c) => c.parentId === id));
    });
  });

  it("'fail' fails the parent with TROUPE_ERR_TASK_FAILED; 'continue' and 'ignore' run it", async () => {
    const seen: Array<readonly FlowChild[] | undefined> = [];
    await withRuntime({ tasks: makeTasks(seen) }, async (rt) => {
      const failed: Array<{ id: string; code?: string }> = [];
      rt.on('task.failed', (f) => failed.push({ id: f.id, ...(f.error.code ? { code: f.error.code } : {}) }));
      const children = [{ name: 'fetch', input: 'bad-1' }, { name: 'fetch', input: 'ok' }];
      const fail = await rt.flow({ name: 'report', children });
      const cont = await rt.flow({ name: 'report', children, onChildFailure: 'continue' });
      const ignore = await rt.flow({ name: 'report', children, onChildFailure: 'ignore' });
      await waitFor(async () => (await rt.counts()).byState.succeeded === 5 && (await rt.counts()).byState.failed === 4);
      const f = await rt.get(fail);
      assert.equal(f?.state, 'failed');
      assert.equal(f?.error?.code, ErrorCodes.TASK_FAILED);
      const badChild = (await rt.list({ parentId: fail })).tasks.find((t) => t.input === 'bad-1')!;
      assert.equal(f?.error?.details?.child, badChild.id);
      assert.ok(failed.some((x) => x.id === fail && x.code === ErrorCodes.TASK_FAILED), 'task.failed published for the parent');
      assert.deepEqual((await rt.get(cont))?.result, ['failed', 2]);
      assert.deepEqual((await rt.get(ignore))?.result, [2]);
    });
  });

  for (const store of ['memory', 'sqlite'] as const) {
    it(`${store}: a handler (worker thread) parent sees ctx.children as an inline one does, also when run in a batch`, async () => {
      const handler = new URL('../fixtures/handlers/children.ts', import.meta.url);
      const tasks: CreateRuntimeOptions['tasks'] = {
        fetch: { retry: { attempts: 1 }, run: (url: string) => { if (url.startsWith('bad')) throw new Error(`cannot fetch ${url}`); return url.length; } },
        report: { handler },
      };
      await withRuntime({ store: store === 'memory' ? 'memory' : tempDb(), tasks, concurrency: 8 }, async (rt) => {
        const children = [{ name: 'fetch', input: 'ab' }, { name: 'fetch', input: 'bad' }, { name: 'fetch', input: 'abcd' }];
        // Plain tasks of the same handler alongside: the parents may share a thread-pool run with them.
        const plain = await Promise.all(Array.from({ length: 20 }, (_, i) => rt.enqueue('report', i)));
        const ids = await Promise.all([1, 2, 3].map((n) => rt.flow({ name: 'report', input: n, children, onChildFailure: 'continue' })));
        await waitFor(async () => (await Promise.all([...ids, ...plain].map((id) => rt.get(id)))).every((t) => t?.state === 'succeeded'), { label: 'every parent and plain task succeeded', timeout: 30_000 });
        for (const [n, id] of ids.entries()) {
          assert.deepEqual((await rt.get(id))?.result, { input: n + 1, children: [['fetch', 'succeeded', 2], ['fetch', 'failed', 'cannot fetch bad'], ['fetch', 'succeeded', 4]] });
        }
        for (const [i, id] of plain.entries()) assert.deepEqual((await rt.get(id))?.result, { input: i, children: null });
      });
    });
  }

  it('a command parent reads its children from TROUPE_CHILDREN_FILE, under the temp folder, removed after the run', async () => {
    const tempDir = mkdtempSync(path.join(os.tmpdir(), 'troupe-children-'));
    const script = fileURLToPath(new URL('../fixtures/commands/read-children.js', import.meta.url));
    const tasks: CreateRuntimeOptions['tasks'] = {
      fetch: { retry: { attempts: 1 }, run: (url: string) => { if (url.startsWith('bad')) throw new Error(`cannot fetch ${url}`); return url.length; } },
      report: { command: process.execPath, args: [script] },
    };
    await withRuntime({ tasks, tempDir }, async (rt) => {
      const id = await rt.flow({ name: 'report', children: [{ name: 'fetch', input: 'abc' }, { name: 'fetch', input: 'bad' }], onChildFailure: 'continue' });
      const plain = await rt.enqueue('report', null);
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded' && (await rt.get(plain))?.state === 'succeeded', { label: 'the parent and the plain task succeeded', timeout: 30_000 });
      const result = (await rt.get(id))?.result as { file: string; children: FlowChild[] };
      assert.ok(result.file.startsWith(path.join(tempDir, 'flow-children') + path.sep), result.file);
      assert.deepEqual(result.children.map((c) => [c.name, c.state, c.result ?? c.error?.message]), [['fetch', 'succeeded', 3], ['fetch', 'failed', 'cannot fetch bad']]);
      assert.equal(existsSync(result.file), false, 'the file is removed when the run ends');
      assert.deepEqual((await rt.get(plain))?.result, { file: null, children: null }, 'a task without children gets no file');
    });
    rmSync(tempDir, { recursive: true, force: true });
  });

  for (const store of ['memory', 'sqlite'] as const) {
    it(`${store}: rt.cancel of a parent cancels its children: a running child's process is ended, each gets task.cancelled`, async () => {
      const forever = fileURLToPath(new URL('../fixtures/commands/forever.js', import.meta.url));
      const tasks: CreateRuntimeOptions['tasks'] = {
        wait: { command: process.execPath, args: [forever], killGrace: 2000 },
        report: { run: () => 'ran' },
      };
      await withRuntime({ store: store === 'memory' ? 'memory' : tempDb(), tasks, concurrency: 1 }, async (rt) => {
        const cancelled = new Map<string, { reason?: string; previous: string }>();
        const stopped: string[] = [];
        rt.on('task.cancelled', (f) => cancelled.set(f.id, { previous: f.previous, ...(f.reason ? { reason: f.reason } : {}) }));
        rt.on('task.stopped', (f) => stopped.push(f.id));
        const ready = new Promise<string>((resolve) => rt.on('task.output', (f) => f.line.text === 'ready' && resolve(f.id)));
        const root = await rt.flow({ name: 'report', children: [{ name: 'wait' }, { name: 'wait' }] });
        const runningChild = await ready;
        const pid = rt.pids().subprocesses[0];
        assert.ok(pid !== undefined, 'the child runs a process');
        assert.equal(await rt.cancel(root), true);
        const children = (await rt.list({ parentId: root })).tasks;
        await waitFor(() => stopped.includes(runningChild), { label: "the running child's process ended", timeout: 30_000 });
        assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the process is gone');
        await waitFor(() => cancelled.size === 3, { label: 'task.cancelled for the parent and both children', timeout: 30_000 });
        assert.deepEqual(cancelled.get(root), { previous: 'scheduled', reason: 'cancelled by user' });
        for (const c of children) {
          // The other child is queued, or claimed into this node's prefetch buffer (running in the store).
          const fact = cancelled.get(c.id);
          assert.equal(fact?.reason, `flow ${root} cancelled`);
          assert.ok(c.id === runningChild ? fact?.previous === 'running' : ['queued', 'running'].includes(fact?.previous ?? ''), fact?.previous);
          assert.equal((await rt.get(c.id))?.state, 'cancelled');
        }
        assert.equal((await rt.get(root))?.state, 'cancelled', 'the parent never ran');
      });
    });
  }

  it("a command parent whose children's file cannot be written fails with TROUPE_ERR_TASK_FAILED naming the tempDir", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-children-'));
    const notADir = path.join(dir, 'a-file');
    writeFileSync(notADir, 'x');
    const tasks: CreateRuntimeOptions['tasks'] = {
      part: { run: () => 1 },
      report: { command: process.execPath, args: ['-e', ''], retry: { attempts: 1 } },
    };
    await withRuntime({ tasks, tempDir: path.join(notADir, 'sub') }, async (rt) => {
      const id = await rt.flow({ name: 'report', children: [{ name: 'part' }] });
      await waitFor(async () => (await rt.get(id))?.state === 'failed', { label: 'the parent failed', timeout: 30_000 });
      const error = (await rt.get(id))?.error;
      assert.equal(error?.code, ErrorCodes.TASK_FAILED);
      assert.match(error?.message ?? '', /children's file .*tempDir.*ENOTDIR/);
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('nested flows: a child with children of its own runs after them', async () => {
    const order: string[] = [];
    const tasks: CreateRuntimeOptions['tasks'] = {
      step: { run: (name: string, ctx: TaskContext) => { order.push(name); return `${name}(${(ctx.children ?? []).map((c) => c.result).join(',')})`; } },
    };
    await withRuntime({ tasks }, async (rt) => {
      const id = await rt.flow({
        name: 'step', input: 'root',
        children: [{ name: 'step', input: 'mid', children: [{ name: 'step', input: 'leaf' }] }, { name: 'step', input: 'side' }],
      });
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded');
      assert.equal((await rt.get(id))?.result, 'root(mid(leaf()),side())');
      assert.ok(order.indexOf('leaf') < order.indexOf('mid') && order.indexOf('mid') < order.indexOf('root'));
    });
  });

  it('refuses malformed flows with TROUPE_ERR_INVALID_OPTION before storing anything', async () => {
    await withRuntime({ tasks: { t: { run: () => 1 } } }, async (rt) => {
      const bad = [
        { name: 't' },
        { name: 't', children: [] },
        { name: 't', children: [{ name: 't', options: { key: 'k' } }] },
        { name: 't', options: { delay: '1s' }, children: [{ name: 't' }] },
        { name: 't', children: [{ name: 't', options: { dedup: { key: 'd', mode: 'throttle', window: '1s' } } }] },
        { name: 't', onChildFailure: 'maybe', children: [{ name: 't' }] },
      ];
      for (const spec of bad) await assert.rejects(rt.flow(spec as never), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
      await assert.rejects(rt.flow({ name: 't', children: [{ name: 'missing' }] }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.UNKNOWN_TASK);
      assert.equal((await rt.list()).tasks.length, 0);
    });
  });

  it('a flow keyed on its root is created once', async () => {
    await withRuntime({ tasks: { t: { run: () => 1 } } }, async (rt) => {
      const spec = { name: 't', options: { key: 'order-42' }, children: [{ name: 't' }, { name: 't' }] };
      const first = await rt.flow(spec);
      assert.equal(await rt.flow(spec), first);
      await waitFor(async () => (await rt.get(first))?.state === 'succeeded');
      assert.equal((await rt.list()).tasks.length, 3);
    });
  });
});

describe('restarts on SQLite', () => {
  it('a flow half done survives a restart and completes', async () => {
    const db = tempDb();
    const clock = new ManualClock();
    const seen: Array<readonly FlowChild[] | undefined> = [];
    const tasks: CreateRuntimeOptions['tasks'] = {
      part: { run: (n: number) => n * 10 },
      sum: { run: (_i: unknown, ctx: TaskContext) => { seen.push(ctx.children); return (ctx.children ?? []).reduce((a, c) => a + Number(c.result), 0); } },
    };
    let id: string;
    {
      const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, clock, tasks });
      try {
        id = await rt.flow({ name: 'sum', children: [{ name: 'part', input: 1 }, { name: 'part', input: 2, options: { delay: '1h' } }] });
        await waitFor(async () => (await rt.get(id))?.flow?.pending === 1);
      } finally {
        await rt.close();
      }
    }
    const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, clock, tasks });
    try {
      const parent = await rt.get(id);
      assert.deepEqual([parent?.state, parent?.flow], ['scheduled', { pending: 1, policy: 'fail' }]);
      await clock.advance(3_600_000);
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded');
      assert.equal((await rt.get(id))?.result, 30);
      assert.deepEqual(seen[0]?.map((c) => c.result), [10, 20]);
    } finally {
      await rt.close();
    }
  });

  it('a pending debounce survives a restart: the next enqueue still replaces it', async () => {
    const db = tempDb();
    const clock = new ManualClock();
    const runs: unknown[] = [];
    const tasks: CreateRuntimeOptions['tasks'] = { save: { run: (i: unknown) => void runs.push(i) } };
    const dedup = { key: 'draft-7', mode: 'debounce' as const, window: '5s' };
    let id: string;
    {
      const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, clock, tasks });
      try {
        id = await rt.enqueue('save', 'v1', { dedup });
      } finally {
        await rt.close();
      }
    }
    await clock.advance(4000);
    const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, clock, tasks });
    try {
      assert.equal(await rt.enqueue('save', 'v2', { dedup }), id);
      await clock.advance(4000);
      await settledClaims(rt);
      assert.deepEqual(runs, []);
      await clock.advance(1000);
      await waitFor(() => runs.length === 1);
      assert.deepEqual(runs, ['v2']);
    } finally {
      await rt.close();
    }
  });

  it('rate-limit starts survive a restart: the window still holds', async () => {
    const db = tempDb();
    const clock = new ManualClock();
    let started = 0;
    const tasks: CreateRuntimeOptions['tasks'] = { call: { rateLimit: { max: 2, per: '1m' }, run: () => void started++ } };
    {
      const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, clock, tasks });
      try {
        await rt.enqueueMany(Array.from({ length: 3 }, () => ({ name: 'call' })));
        await waitFor(() => started === 2);
      } finally {
        await rt.close();
      }
    }
    const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, clock, tasks });
    try {
      await settledClaims(rt);
      assert.equal(started, 2);
      await clock.advance(60_000);
      await waitFor(() => started === 3);
    } finally {
      await rt.close();
    }
  });
});
