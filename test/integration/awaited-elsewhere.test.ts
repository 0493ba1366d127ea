/**
 * A caller waits on one node for a task that another node runs (two runtimes on one SQLite file, or on one
 * PostgreSQL schema): `run()`, a `start()` handle, and a `run()` whose key matched a task enqueued elsewhere all
 * settle with that task's outcome. A node hears only its own outcomes; the runtime reads the awaited tasks again
 * from the store (src/runtime.ts, #watchAwaited).
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { after, describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { startServer } from '../../src/http/listen.ts';
import { createLocalBackend } from '../../src/repl/local-backend.ts';
import { REMOTE_STOP_MARGIN_MS, createRuntime, type Runtime } from '../../src/runtime.ts';
import { ManualClock } from '../../src/clock.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { TaskId } from '../../src/ids.ts';
import { SseClient } from '../http/helpers.ts';
import { PG_SKIP, schemaStoreUrl, trackSchemas, withAdmin } from '../helpers/pg.ts';
import { overrideStore, waiterReadsStore } from '../helpers/store-override.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const schemas = trackSchemas('awaited');
after(() => schemas.dropAll());

/** A task body that waits until the test opens its gate. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const p = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => p, open };
}

/** The outcome of a promise, or 'pending' if it has not settled within `ms` (a safety net, not a measure). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Pair {
  /** Node A: one slot, held by a blocking task, so that it can run nothing else. */
  a: Runtime;
  /** Node B: free slots; its `k` answers with where it ran. */
  b: Runtime;
  close(): Promise<void>;
}

/**
 * Two nodes on one store. A's only slot is held by `k` with `{ block: true }` until close; B runs every other `k`
 * (`{ fail: true }` fails permanently). A's `k` would answer 'a'.
 */
async function pair(store: () => string): Promise<Pair> {
  const g = gate();
  const k = (where: string) => ({
    run: async (input: { block?: boolean; fail?: boolean; n?: number; lines?: number }, ctx: { log(line: string): void }) => {
      if (input.block) await g.wait();
      if (input.fail) throw new Error(`refused on ${where}`);
      for (let i = 0; i < (input.lines ?? 0); i++) ctx.log(`line ${i} on ${where}`);
      return { ran: where, n: input.n };
    },
    retry: { attempts: 1 },
  });
  const spec = store();
  const a = await createRuntime({ store: spec, nodeId: 'a', concurrency: 1, maintenance: false, tasks: { k: k('a') } });
  const blocker = a.start('k', { block: true });
  await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
  const b = await createRuntime({ store: spec, nodeId: 'b', concurrency: 4, maintenance: false, tasks: { k: k('b') } });
  return {
    a,
    b,
    async close() {
      g.open();
      await b.close();
      await a.close();
    },
  };
}

const STORES: Array<{ label: string; skip?: string; store: () => string }> = [
  { label: 'SQLite file', store: () => `sqlite:${tempDb('awaited')}` },
  {
    label: 'PostgreSQL',
    skip: PG_SKIP,
    store: () => schemaStoreUrl(schemas),
  },
];

for (const { label, skip, store } of STORES) {
  describe(`awaiting a task another node runs (${label})`, skip ? { skip } : {}, () => {
    it('run() settles with the result, or the error, of the run on the other node', async () => {
      const { a, close } = await pair(store);
      try {
        assert.deepEqual(await within(a.run('k', { n: 1 }), 20_000), { ran: 'b', n: 1 });
        await assert.rejects(within(a.run('k', { fail: true }), 20_000), (e: unknown) => isTroupeError(e) && /refused on b/.test(e.message));
      } finally {
        await close();
      }
    });

    it('a start() handle settles and shows the final state', async () => {
      const { a, close } = await pair(store);
      try {
        const h = a.start('k', { n: 2 });
        assert.deepEqual(await within(h.result, 20_000), { ran: 'b', n: 2 });
        assert.equal(h.state, 'succeeded');
      } finally {
        await close();
      }
    });

    it('run() with a key that matched a task enqueued and run on the other node gets that task\'s result', async () => {
      const { a, b, close } = await pair(store);
      try {
        const g = gate();
        // B's own run of the keyed task waits on B's gate: A's caller must wait for it, not take its result early.
        b.register('slow', { run: async (input: { n: number }) => (await g.wait(), { ran: 'b', n: input.n }) });
        a.register('slow', { run: (input: { n: number }) => ({ ran: 'a', n: input.n }) });
        const first = b.run('slow', { n: 3 }, { key: 'order-3' });
        await waitFor(async () => (await b.list({ name: 'slow', state: 'running' })).tasks.length === 1, { label: 'B runs the keyed task' });
        const second = a.run('slow', { n: 4 }, { key: 'order-3' });
        g.open();
        assert.deepEqual(await within(first, 20_000), { ran: 'b', n: 3 });
        assert.deepEqual(await within(second, 20_000), { ran: 'b', n: 3 });
      } finally {
        await close();
      }
    });

    it('the HTTP output stream of one node gets the lines while the other node runs the task, then its end', async () => {
      const { a, b, close } = await pair(store);
      const server = await startServer(a, { host: '127.0.0.1', port: 0, env: {} });
      let client: SseClient | undefined;
      const [g1, g2] = [gate(), gate()];
      try {
        b.register('talks', { run: async (_i: unknown, ctx: { log(line: string): void }) => (ctx.log('one'), await g1.wait(), ctx.log('two'), await g2.wait(), ctx.log('three'), 'done on b') });
        a.register('talks', { run: () => 'done on a' });
        const id = await a.enqueue('talks');
        await waitFor(async () => (await b.get(id))?.state === 'running', { label: 'B runs it' });
        client = new SseClient(`${server.url}/api/tasks/${id}/output`);
        await client.next((e) => e.event === 'state');
        g1.open();
        // Printed on B after the stream opened on A, while the task still runs: read from the store.
        await client.next((e) => e.event === 'output' && e.data.text === 'two', 20_000);
        assert.equal(client.of('end').length, 0);
        g2.open();
        const end = await client.next((e) => e.event === 'end', 20_000);
        assert.deepEqual(end.data, { state: 'succeeded', attempts: 1, result: 'done on b' });
        assert.deepEqual(client.of('output').map((e) => e.data.text), ['one', 'two', 'three']);
      } finally {
        g1.open();
        g2.open();
        client?.close();
        await server.close();
        await close();
      }
    });

    it('a follow on one node (REPL, troupe run) gets the lines and the end of a task the other node runs', async () => {
      const { a, b, close } = await pair(store);
      const [g1, g2] = [gate(), gate()];
      try {
        b.register('talks', { run: async (_i: unknown, ctx: { log(line: string): void }) => (ctx.log('one'), await g1.wait(), ctx.log('two'), await g2.wait(), 'done on b') });
        a.register('talks', { run: () => 'done on a' });
        const id = await a.enqueue('talks');
        await waitFor(async () => (await b.get(id))?.state === 'running', { label: 'B runs it' });
        const lines: string[] = [];
        const end = createLocalBackend(a, { closeRuntime: false }).follow(id, {
          onLine: (line) => {
            lines.push(line.text);
            if (line.text === 'one') g1.open();
            // Read from the store while the task still runs on B.
            if (line.text === 'two') g2.open();
          },
        });
        assert.deepEqual(await within(end, 20_000), { state: 'succeeded', result: 'done on b' });
        assert.deepEqual(lines, ['one', 'two']);
      } finally {
        g1.open();
        g2.open();
        await close();
      }
    });

    for (const by of ['a', 'b'] as const) {
    it(`a cancel made on ${by === 'a' ? "the followers' node" : 'the node that runs the task'}, followed on the other: the followers get the lines it prints while it stops where the store announces the stop`, async () => {
      const { a, b, close } = await pair(store);
      const server = await startServer(a, { host: '127.0.0.1', port: 0, env: {} });
      const script = new URL('../fixtures/commands/goodbye-on-sigterm.js', import.meta.url).pathname;
      const announces = typeof (a.store as { announceStopped?: unknown }).announceStopped === 'function';
      let client: SseClient | undefined;
      try {
        for (const rt of [a, b]) rt.register('bye', { command: process.execPath, args: [script], killGrace: 5000 });
        const id = await a.enqueue('bye');
        // B's stop, heard on A (through the store), is what ends A's followers: not a fallback timer.
        let stopHeardOnA = false;
        a.on('task.stopped', (f) => {
          if (f.id === id) stopHeardOnA = true;
        });
        await waitFor(async () => (await b.output(id)).some((l) => l.text === 'ready'), { label: 'B runs it and stored its first line', timeout: 20_000 });
        client = new SseClient(`${server.url}/api/tasks/${id}/output`);
        await client.next((e) => e.event === 'output' && e.data.text === 'ready', 20_000);
        const lines: string[] = [];
        const followed = createLocalBackend(a, { closeRuntime: false }).follow(id, { onLine: (line) => lines.push(line.text) });
        await waitFor(() => lines.includes('ready'), { label: 'the follow read the first line', timeout: 20_000 });
        // Cancelled on B, A hears no cancel fact: only the store's word (its notification, a read) and B's stop.
        assert.equal(await (by === 'a' ? a : b).cancel(id), true);
        const end = await client.next((e) => e.event === 'end', 20_000);
        assert.equal((end.data as { state: string }).state, 'cancelled');
        assert.equal(stopHeardOnA, announces, "A's stream ended on B's announced stop");
        const followEnd = await within(followed, 20_000);
        assert.equal(followEnd?.state, 'cancelled');
        await waitFor(async () => (await a.output(id)).some((l) => l.text === 'goodbye'), { label: 'B stored the goodbye', timeout: 20_000 });
        if (announces) {
          assert.deepEqual(client.of('output').map((e) => e.data.text), ['ready', 'goodbye'], 'the stream ends after the goodbye');
          assert.deepEqual(lines, ['ready', 'goodbye'], 'the follow ends after the goodbye');
        } else {
          // No stop is heard from the other node here: the followers end at the cancel (documented). Cancelled on B,
          // A learns of it at its next read of the task, by when B may have stored its goodbye too.
          const streamed = client.of('output').map((e) => e.data.text);
          if (by === 'a') assert.deepEqual(streamed, ['ready']);
          else assert.ok(['ready', 'ready goodbye'].includes(streamed.join(' ')), JSON.stringify(streamed));
        }
      } finally {
        client?.close();
        await server.close();
        await close();
      }
    });
    }

    it('a caller still waiting when the runtime closes is told so', async () => {
      const { a, b, close } = await pair(store);
      const g = gate();
      b.register('held', { run: () => g.wait() });
      a.register('held', { run: () => g.wait() });
      const waiting = a.run('held');
      waiting.catch(() => undefined);
      await waitFor(async () => (await b.list({ name: 'held', state: 'running' })).tasks.length === 1, { label: 'B runs it' });
      g.open();
      await close();
      // B may have finished it before A closed (then A read its result), or not: never a hang.
      await within(
        waiting.then(
          () => undefined,
          (e: unknown) => assert.ok(isTroupeError(e) && e.code === ErrorCodes.CLOSED, String(e)),
        ),
        5000,
      );
    });
  });
}

describe('awaiting a task another node runs, on a store without states()', () => {
  it('reads each awaited task whole instead, and run() still settles', async () => {
    const file = tempDb('awaited-nostates');
    const bare = () => {
      const store = createSqliteStore(file);
      // A custom store written before states(): the runtime falls back to get().
      (store as { states?: unknown }).states = undefined;
      return store;
    };
    const g = gate();
    const a = await createRuntime({ store: bare(), nodeId: 'a', concurrency: 1, maintenance: false, tasks: { k: { run: async (i: { block?: boolean }) => (i.block ? g.wait() : 'a') } } });
    const blocker = a.start('k', { block: true });
    let b: Runtime | undefined;
    try {
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
      b = await createRuntime({ store: bare(), nodeId: 'b', concurrency: 2, maintenance: false, tasks: { k: { run: () => 'b' } } });
      assert.equal(await within(a.run('k', {}), 20_000), 'b');
    } finally {
      g.open();
      await b?.close();
      await a.close();
    }
  });
});

describe('the awaited-task reads', () => {
  it('a task this node saw committed and that is deleted before its first read fails its waiters at that read', async () => {
    const clock = new ManualClock(Date.now());
    const file = tempDb('awaited-gone-early');
    const inner = createSqliteStore(file);
    const store = overrideStore(inner, { onCancel: () => () => {} });
    const g = gate();
    const rt = await createRuntime({ store, clock, concurrency: 1, maintenance: false, tasks: { k: { run: () => g.wait() } } });
    try {
      const handle = rt.start('k');
      await waitFor(async () => (await rt.get(handle.id))?.state === 'running', { label: 'the task runs' });
      const db = new Database(file);
      try {
        db.prepare('DELETE FROM tasks WHERE id = ?').run(handle.id);
      } finally {
        db.close();
      }
      await clock.advance(200);
      await assert.rejects(within(handle.result, 20_000), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.NOT_FOUND);
    } finally {
      g.open();
      await rt.close({ timeout: 0 });
    }
  });

  it('a task deleted after a read found it (cleanup on another node) fails its waiters with NOT_FOUND instead of leaving them waiting', async () => {
    const clock = new ManualClock(Date.now());
    const file = tempDb('awaited-gone');
    const inner = createSqliteStore(file);
    let reads = 0;
    const store = overrideStore(inner, { states: (ids: readonly TaskId[]) => (reads++, inner.states!(ids)), onCancel: () => () => {} });
    const g = gate();
    const rt = await createRuntime({ store, clock, concurrency: 1, maintenance: false, tasks: { k: { run: () => g.wait() } } });
    try {
      const handle = rt.start('k');
      const ran = rt.run('k', { n: 2 });
      ran.catch(() => undefined);
      await waitFor(async () => (await rt.get(handle.id))?.state === 'running', { label: 'the task runs' });
      await clock.advance(200);
      await waitFor(() => reads === 1, { label: 'the first read found both' });
      const other = (await rt.list({ name: 'k' })).tasks.find((t) => t.id !== handle.id);
      const db = new Database(file);
      try {
        db.prepare('DELETE FROM tasks WHERE id IN (?, ?)').run(handle.id, other!.id);
      } finally {
        db.close();
      }
      await clock.advance(400);
      await assert.rejects(within(handle.result, 20_000), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.NOT_FOUND && e.message.includes(handle.id));
      await assert.rejects(within(ran, 20_000), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.NOT_FOUND);
    } finally {
      g.open();
      await rt.close({ timeout: 0 });
    }
  });

  it('wake the runtime for the next due read only, not every tick', async () => {
    const clock = new ManualClock(Date.now());
    // Fires per timer callback: the read timer is one function, armed again and again.
    const fires = new Map<() => void, number>();
    const setTimeout = clock.setTimeout.bind(clock);
    clock.setTimeout = (fn, ms) =>
      setTimeout(() => {
        fires.set(fn, (fires.get(fn) ?? 0) + 1);
        fn();
      }, ms);
    const { store, reads } = waiterReadsStore('awaited-wakeups');
    const g = gate();
    const rt = await createRuntime({ store, clock, concurrency: 1, maintenance: false, tasks: { k: { run: () => g.wait() } } });
    try {
      const handle = rt.start('k');
      await waitFor(async () => (await rt.get(handle.id))?.state === 'running', { label: 'the task runs' });
      const t0 = clock.now();
      // Reads 200, 600, 1400 and 3000 ms after the wait began.
      while (clock.now() < t0 + 1450) await clock.advance(50);
      assert.equal(reads(), 3);
      fires.clear();
      while (clock.now() < t0 + 2950) await clock.advance(50);
      assert.equal(reads(), 3);
      const most = Math.max(0, ...fires.values());
      assert.ok(most <= 2, `a timer fired ${most} times in 1.5 s without a read due`);
      while (clock.now() < t0 + 3050) await clock.advance(50);
      assert.equal(reads(), 4);
      g.open();
      await handle.result;
    } finally {
      g.open();
      await rt.close();
    }
  });
});

describe('a follower waiting for another node to say its cancelled run stopped', () => {
  it("ends after the task's kill grace and REMOTE_STOP_MARGIN_MS when no stop comes, with the lines stored meanwhile (follow and HTTP stream)", async () => {
    const file = tempDb('stop-wait');
    const clock = new ManualClock(Date.now());
    // A's store says that stops are announced, but none comes (as when the node that ran the task died).
    const storeA = overrideStore(createSqliteStore(file), { announceStopped: async () => {} });
    const script = new URL('../fixtures/commands/goodbye-on-sigterm.js', import.meta.url).pathname;
    const bye = { command: process.execPath, args: [script], killGrace: 1000 };
    const g = gate();
    // No prefetch: A must not hold `bye` in a buffer (its hand-back after a second waits on A's manual clock).
    const a = await createRuntime({ store: storeA, clock, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { block: { run: () => g.wait() }, bye } });
    let b: Runtime | undefined;
    const server = await startServer(a, { host: '127.0.0.1', port: 0, env: {} });
    let client: SseClient | undefined;
    try {
      const blocker = a.start('block');
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its only slot' });
      b = await createRuntime({ store: `sqlite:${file}`, nodeId: 'b', maintenance: false, tasks: { bye } });
      const id = await a.enqueue('bye');
      await waitFor(async () => (await b!.output(id)).some((l) => l.text === 'ready'), { label: 'B runs it', timeout: 20_000 });
      const lines: string[] = [];
      let ended = false;
      const followed = createLocalBackend(a, { closeRuntime: false }).follow(id, { onLine: (line) => lines.push(line.text) });
      void followed.then(() => (ended = true));
      await waitFor(() => lines.includes('ready'), { label: 'the follow read the first line', timeout: 20_000 });
      client = new SseClient(`${server.url}/api/tasks/${id}/output`);
      await client.next((e) => e.event === 'output' && e.data.text === 'ready', 20_000);
      assert.equal(await a.cancel(id), true);
      // B sees the cancel in the store, stops the process, and stores its goodbye; A hears nothing of it.
      await waitFor(async () => (await a.output(id)).some((l) => l.text === 'goodbye'), { label: 'B stored the goodbye', timeout: 20_000 });
      await clock.advance(bye.killGrace + REMOTE_STOP_MARGIN_MS - 1);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(ended, false, 'the follow still waits for the stop');
      assert.equal(client.of('end').length, 0, 'the stream still waits for the stop');
      await clock.advance(1);
      assert.equal((await within(followed, 20_000))?.state, 'cancelled');
      assert.deepEqual(lines, ['ready', 'goodbye'], 'the lines stored meanwhile are read before the end');
      const end = await client.next((e) => e.event === 'end', 20_000);
      assert.equal((end.data as { state: string }).state, 'cancelled');
      assert.deepEqual(client.of('output').map((e) => e.data.text), ['ready', 'goodbye'], "the stream's lines stored meanwhile are read before its end");
    } finally {
      g.open();
      client?.close();
      await server.close();
      await b?.close();
      await a.close();
    }
  });
});

describe('awaiting a task another node runs, told by the node that ends it (PostgreSQL)', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  it('a start() handle and run() settle when the other node commits the end, with no read of their own after the first', async () => {
    const spec = schemaStoreUrl(schemas);
    const schema = new URL(spec).searchParams.get('schema')!;
    // A's reads of the tasks its callers await run on its own clock, which moves only when the test says so.
    const clock = new ManualClock(Date.now());
    const hold = gate();
    const g = gate();
    const a = await createRuntime({ store: spec, clock, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { k: { run: async () => (await hold.wait(), 'a'), retry: { attempts: 1 } } } });
    const b = await createRuntime({ store: spec, nodeId: 'b', concurrency: 4, maintenance: false, tasks: { k: { run: async (input: { n: number }) => (await g.wait(), { ran: 'b', n: input.n }), retry: { attempts: 1 } } } });
    const awaited = async (id: string) =>
      withAdmin(async (c) => (await c.query<{ awaited: boolean | null }>(`SELECT awaited FROM "${schema}".tasks WHERE id = $1`, [id])).rows[0]?.awaited === true);
    try {
      const blocker = a.start('k');
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
      const h = a.start('k', { n: 1 });
      const ran = a.run('k', { n: 2 });
      const onB = async () => (await b.list({ state: 'running' })).tasks.filter((t) => t.owner === 'b');
      await waitFor(async () => (await onB()).length === 2, { label: 'B runs both', timeout: 20_000 });
      // The first read, 200 ms into the wait, marks the two tasks in the store.
      await clock.advance(200);
      await waitFor(() => awaited(h.id), { label: 'the handle\'s task marked' });
      const [other] = (await onB()).filter((t) => t.id !== h.id);
      await waitFor(() => awaited(other!.id), { label: 'the run\'s task marked' });
      assert.equal(await awaited(blocker.id), false, 'a task the waiting node runs itself is not marked');
      // B ends them; A's clock stays where it is, so no read of A's brings the outcomes: B's notification does.
      g.open();
      assert.deepEqual(await within(h.result, 20_000), { ran: 'b', n: 1 });
      assert.deepEqual(await within(ran, 20_000), { ran: 'b', n: 2 });
      assert.equal(h.state, 'succeeded');
    } finally {
      hold.open();
      g.open();
      await b.close();
      await a.close();
    }
  });

  it('tasks queued or delayed at the first read while another node is busy, later claimed and ended by it (one after a retry), settle run() and handles at its commit', async () => {
    const spec = schemaStoreUrl(schemas);
    const schema = new URL(spec).searchParams.get('schema')!;
    const clock = new ManualClock(Date.now());
    const hold = gate();
    const g = gate();
    const busy = gate();
    // One retry, at once: the second attempt must still be marked, so that its settle tells A.
    const retry = { attempts: 2, backoff: 'fixed' as const, delay: 1, jitter: 0 };
    const a = await createRuntime({ store: spec, clock, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { k: { run: async () => (await hold.wait(), 'a'), retry } } });
    const awaited = async (id: string) =>
      withAdmin(async (c) => (await c.query<{ awaited: boolean | null }>(`SELECT awaited FROM "${schema}".tasks WHERE id = $1`, [id])).rows[0]?.awaited === true);
    let b: Runtime | undefined;
    try {
      const blocker = a.start('k');
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
      // B is busy with work of its own and takes no \`k\` yet (a hold of this node only).
      b = await createRuntime({
        store: spec,
        nodeId: 'b',
        concurrency: 5,
        maintenance: false,
        tasks: {
          k: {
            run: async (input: { n: number; failFirst?: boolean }, ctx: { attempt: number }) => {
              await g.wait();
              if (input.failFirst && ctx.attempt === 1) throw new Error('first attempt fails');
              return { ran: 'b', n: input.n };
            },
            retry,
          },
          x: { run: async () => (await busy.wait(), 'x') },
        },
      });
      b.holdIntake(['k']);
      await waitFor(() => b!.heldNames().includes('k'), { label: 'B holds k' });
      const own = b.start('x');
      await waitFor(async () => (await b!.get(own.id))?.state === 'running', { label: 'B runs a task of its own' });
      // The tasks wait in the queue (one of them delayed) when A first reads them.
      const h = a.start('k', { n: 1 });
      const ran = a.run('k', { n: 2 });
      ran.catch(() => undefined);
      const later = a.start('k', { n: 3 }, { delay: 1 });
      const flaky = a.start('k', { n: 4, failFirst: true });
      await waitFor(async () => (await a.list({ name: 'k', state: 'queued' })).tasks.length === 3, { label: 'three queued' });
      assert.equal((await a.get(later.id))?.state, 'scheduled');
      await clock.advance(200);
      const ranId = (await a.list({ name: 'k', state: 'queued' })).tasks.map((t) => t.id).find((id) => id !== h.id && id !== flaky.id)!;
      for (const id of [h.id, ranId, later.id, flaky.id]) await waitFor(() => awaited(id), { label: `task ${id} marked while it waits` });
      // B claims them now; A's clock stays where it is, so no read of A's brings the outcomes: B's notifications do.
      b.holdIntake([]);
      await waitFor(async () => (await b!.list({ name: 'k', state: 'running' })).tasks.filter((t) => t.owner === 'b').length === 4, { label: 'B runs all four', timeout: 20_000 });
      assert.equal(await awaited(h.id), true, 'the claim kept the mark');
      g.open();
      assert.deepEqual(await within(h.result, 20_000), { ran: 'b', n: 1 });
      assert.deepEqual(await within(ran, 20_000), { ran: 'b', n: 2 });
      assert.deepEqual(await within(later.result, 20_000), { ran: 'b', n: 3 });
      assert.deepEqual(await within(flaky.result, 20_000), { ran: 'b', n: 4 });
      assert.equal((await a.get(flaky.id))?.attempts, 2, 'ended by its second attempt');
      assert.equal(h.state, 'succeeded');
    } finally {
      hold.open();
      g.open();
      busy.open();
      await b?.close();
      await a.close();
    }
  });

  it('a node alone on its store marks none of the backlog its callers wait on', async () => {
    const spec = schemaStoreUrl(schemas);
    const schema = new URL(spec).searchParams.get('schema')!;
    const clock = new ManualClock(Date.now());
    const hold = gate();
    const inner = await openStore(spec);
    let asked: TaskId[] = [];
    const store = overrideStore(inner, { awaitEnd: async (ids: readonly TaskId[], owner: string) => {
      const marked = await inner.awaitEnd!(ids, owner);
      asked = asked.concat(ids);
      return marked;
    } });
    const a = await createRuntime({ store, clock, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { k: { run: async () => (await hold.wait(), 'a') } } });
    try {
      const blocker = a.start('k');
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
      const queued = [a.start('k'), a.start('k'), a.start('k', null, { delay: 60_000 })];
      await waitFor(async () => (await a.list({ name: 'k', state: 'queued' })).tasks.length === 2, { label: 'two queued' });
      await clock.advance(200);
      await waitFor(() => queued.every((h) => asked.includes(h.id)), { label: 'A asked to mark the three it waits for' });
      const marks = await withAdmin(async (c) => (await c.query(`SELECT id FROM "${schema}".tasks WHERE awaited`)).rows);
      assert.deepEqual(marks, [], 'no mark: no other node runs anything');
      hold.open();
      for (const h of queued.slice(0, 2)) assert.equal(await within(h.result, 20_000), 'a');
    } finally {
      hold.open();
      await a.close();
    }
  });

  it('a start() handle settles cancelled when its queued task is cancelled on another node, at once', async () => {
    const spec = schemaStoreUrl(schemas);
    const clock = new ManualClock(Date.now());
    const hold = gate();
    const busy = gate();
    const a = await createRuntime({ store: spec, clock, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { k: { run: async () => (await hold.wait(), 'a') } } });
    // B runs a task of its own (so A marks what its callers wait for), and cancels.
    const b = await createRuntime({ store: spec, nodeId: 'b', maintenance: false, tasks: { x: { run: async () => (await busy.wait(), 'x') } } });
    try {
      const own = b.start('x');
      await waitFor(async () => (await b.get(own.id))?.state === 'running', { label: 'B runs a task of its own' });
      const blocker = a.start('k');
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
      const h = a.start('k');
      await waitFor(async () => (await a.get(h.id))?.state === 'queued', { label: 'the task is queued' });
      // A's first read marks it; its clock moves no further.
      await clock.advance(200);
      await waitFor(async () => (await withAdmin(async (c) => (await c.query(`SELECT 1 FROM "${new URL(spec).searchParams.get('schema')}".tasks WHERE id = $1 AND awaited`, [h.id])).rowCount)) === 1, { label: 'the task marked' });
      assert.equal(await b.cancel(h.id), true);
      await assert.rejects(within(h.result, 20_000), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.CANCELLED);
      assert.equal(h.state, 'cancelled');
    } finally {
      hold.open();
      busy.open();
      await b.close();
      await a.close();
    }
  });

  it('a start() handle settles cancelled when the task is cancelled on the node that runs it, at once', async () => {
    const spec = schemaStoreUrl(schemas);
    const clock = new ManualClock(Date.now());
    const hold = gate();
    const a = await createRuntime({ store: spec, clock, nodeId: 'a', concurrency: 1, prefetch: 0, maintenance: false, tasks: { k: { run: async () => (await hold.wait(), 'a') } } });
    const b = await createRuntime({ store: spec, nodeId: 'b', concurrency: 2, maintenance: false, tasks: { k: { run: (_i: unknown, ctx: { signal: AbortSignal }) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))) } } });
    try {
      const blocker = a.start('k');
      await waitFor(async () => (await a.get(blocker.id))?.state === 'running', { label: 'A holds its slot' });
      const h = a.start('k');
      await waitFor(async () => (await b.get(h.id))?.owner === 'b' && (await b.get(h.id))?.state === 'running', { label: 'B runs it', timeout: 20_000 });
      // A's clock never reaches its first read: the cancel's notification alone answers the handle.
      await b.cancel(h.id);
      await assert.rejects(within(h.result, 20_000), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.CANCELLED);
      assert.equal(h.state, 'cancelled');
    } finally {
      hold.open();
      await b.close();
      await a.close();
    }
  });
});
