// The executor's prefetch buffer on a real SQLite file: claimed tasks held ahead of free slots are cancellable
// without running, go back to the queue on a pause or a close without counting an attempt, keep their leases
// while they wait, and leave per-name limits intact.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { resolveOptions } from '../../src/options.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { tempDb as tempDbIn } from '../helpers/temp-db.ts';

const tempDb = (): string => tempDbIn('prefetch');

/** A task body that waits until the test opens its gate. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const p = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => p, open };
}

/** The executor's own figures (describe()), read from the supervision tree. */
function executorInfo(rt: Runtime): Record<string, unknown> {
  const node = rt.tree().children?.find((c) => c.address === 'executor');
  return (node?.info ?? {}) as Record<string, unknown>;
}

/** Quick tasks each setup runs first, so that the node has a start rate that fills a buffer of 4. */
const WARM = 20;

/**
 * One runtime with concurrency 1 and a buffer of 4, on a manual clock that stands still unless a test moves it.
 * `warm` tasks run first: WARM starts within one rate window make the buffer's size its full 4 (20 starts in the
 * window's 100 ms would fill 4 in 20 ms). Then `block` holds the only slot until the gate opens, and five `work`
 * tasks (recording every run) are enqueued behind it: four wait in the buffer.
 */
async function setup(extra: CreateRuntimeOptions = {}) {
  const db = tempDb();
  const g = gate();
  const ran: string[] = [];
  const tasks: CreateRuntimeOptions['tasks'] = {
    warm: { run: () => 1 },
    block: { run: () => g.wait() },
    work: { run: (_i, ctx) => void ran.push(ctx.id) },
  };
  const rt = await createRuntime({ store: `sqlite:${db}`, clock: new ManualClock(), maintenance: false, concurrency: 1, prefetch: 4, tasks, ...extra });
  await rt.enqueueMany(Array.from({ length: WARM }, () => ({ name: 'warm' })));
  await waitFor(async () => (await rt.counts()).byState.succeeded === WARM, { label: 'warm-up done' });
  const blocker = await rt.enqueue('block');
  await waitFor(async () => (await rt.get(blocker))?.state === 'running');
  const ids = await rt.enqueueMany([1, 2, 3, 4, 5].map((n) => ({ name: 'work', input: { n }, options: { group: n % 2 ? 'odd' : 'even' } })));
  await waitFor(() => executorInfo(rt).buffered === 4, { label: 'four tasks buffered' });
  return { db, rt, g, ran, ids, blocker, tasks };
}

describe('prefetch buffer (SQLite)', () => {
  it('holds claimed tasks ahead of free slots and runs them all in claim order', async () => {
    const { rt, g, ran, ids } = await setup();
    try {
      const info = executorInfo(rt);
      assert.equal(info.prefetch, 4);
      assert.equal(info.running, 1);
      // Buffered tasks are claimed: running in the store, leased to this node, attempt counted.
      const held = await rt.list({ name: 'work', state: 'running' });
      assert.equal(held.tasks.length, 4);
      g.open();
      await waitFor(async () => (await rt.counts()).byState.succeeded === WARM + 6);
      assert.deepEqual(ran, ids);
      for (const id of ids) assert.equal((await rt.get(id))?.attempts, 1);
    } finally {
      await rt.close();
    }
  });

  it('a cancelled buffered task never runs, and is stopped at once', async () => {
    const { rt, g, ran, ids } = await setup();
    try {
      const victim = ids[1]!;
      assert.equal((await rt.get(victim))?.state, 'running');
      const stopped = new Promise<string>((resolve) => rt.on('task.stopped', (f) => resolve(f.id)));
      assert.equal(await rt.cancel(victim), true);
      // Nothing of it ran: the node that held it says so while the slot's task still runs.
      assert.equal(await stopped, victim);
      await waitFor(() => executorInfo(rt).buffered === 3, { label: 'cancelled task left the buffer' });
      g.open();
      await waitFor(async () => (await rt.counts()).byState.succeeded === WARM + 5);
      await rt.flush();
      assert.equal(ran.includes(victim), false);
      assert.equal((await rt.get(victim))?.state, 'cancelled');
    } finally {
      await rt.close();
    }
  });

  it('pausing a name or a group gives its buffered tasks back to the queue without counting an attempt', async () => {
    const { rt, g, ran, ids } = await setup();
    try {
      rt.pauseGroup('odd');
      await waitFor(() => executorInfo(rt).buffered === 2, { label: 'odd tasks given back' });
      await rt.flush();
      const odd = [ids[0]!, ids[2]!, ids[4]!];
      for (const id of [ids[0]!, ids[2]!]) {
        const t = await rt.get(id);
        assert.equal(t?.state, 'queued');
        assert.equal(t?.attempts, 0);
        assert.equal(t?.owner, undefined);
      }
      rt.pause('work');
      await waitFor(() => executorInfo(rt).buffered === 0, { label: 'every work task given back' });
      g.open();
      await waitFor(async () => (await rt.counts()).byState.succeeded === WARM + 1);
      await rt.flush();
      assert.deepEqual(ran, []);
      rt.resume('work');
      // Odd tasks stay held by their group; the others run.
      await waitFor(async () => (await rt.counts()).byState.succeeded === WARM + 3);
      assert.deepEqual(ran.sort(), [ids[1]!, ids[3]!].sort());
      rt.resumeGroup('odd');
      await waitFor(async () => (await rt.counts()).byState.succeeded === WARM + 6);
      for (const id of odd) assert.equal((await rt.get(id))?.attempts, 1);
    } finally {
      await rt.close();
    }
  });

  it('close gives buffered tasks back without counting an attempt', async () => {
    const { db, rt, g, ids, tasks } = await setup();
    const closing = rt.close();
    await waitFor(() => executorInfo(rt).buffered === 0, { label: 'buffer emptied by the drain' });
    g.open();
    await closing;
    const rt2 = await createRuntime({ store: `sqlite:${db}`, maintenance: false, concurrency: 1, prefetch: 4, tasks });
    try {
      // The four buffered tasks were claimed once and given back at shutdown; the fifth was never claimed.
      let released = 0;
      for (const id of ids) {
        const t = await rt2.get(id);
        const back = t?.history?.filter((h) => h.from === 'running' && h.to === 'queued') ?? [];
        if (back.length) {
          assert.deepEqual(back.map((h) => h.reason), ['shutdown']);
          released++;
        }
      }
      assert.equal(released, 4);
      await waitFor(async () => (await rt2.counts()).byState.succeeded === WARM + 6);
      for (const id of ids) assert.equal((await rt2.get(id))?.attempts, 1);
    } finally {
      await rt2.close();
    }
  });

  it('names its buffered tasks with the running one when it renews leases, and renews theirs', async () => {
    const clock = new ManualClock();
    const { db, rt, g, ids, blocker } = await setup({ clock, lease: '3s', heartbeat: '500ms' });
    const peek = createSqliteStore(db);
    await peek.open();
    try {
      const named = new Promise<string[]>((resolve) => {
        const off = rt.inspect((r) => {
          if (r.msg.type !== 'tracker.leases') return;
          off();
          resolve([...r.msg.ids]);
        });
      });
      await clock.advance(500);
      const held = [blocker, ...ids.slice(0, 4)];
      assert.deepEqual((await named).sort(), [...held].sort());
      const renewed = clock.now() + 3000;
      await waitFor(async () => (await Promise.all(held.map((id) => peek.get(id)))).every((t) => t?.leaseUntil === renewed), { label: 'their leases renewed' });
      assert.notEqual((await peek.get(ids[4]!))?.state, 'running', 'the fifth task is not claimed');
    } finally {
      g.open();
      await peek.close();
      await rt.close();
    }
  });

  it('a buffered task that waited a second for a slot goes back to the queue, its attempt not counted, and keeps its lease until then', async () => {
    const clock = new ManualClock();
    const { rt, g, ids } = await setup({ clock, lease: '3s', heartbeat: '1s' });
    try {
      // Less than the wait: still held, still leased to this node.
      await clock.advance(900);
      await rt.flush();
      assert.equal(executorInfo(rt).buffered, 4);
      for (const id of ids.slice(0, 4)) assert.equal((await rt.get(id))?.state, 'running');
      // The check after a second gives all four back (the start rate has fallen: nothing is claimed again).
      await clock.advance(400);
      await waitFor(() => executorInfo(rt).buffered === 0, { label: 'the buffer gave its tasks back' });
      await rt.flush();
      for (const id of ids) {
        const t = await rt.get(id);
        assert.equal(t?.state, 'queued');
        assert.equal(t?.attempts, 0);
      }
      assert.deepEqual(
        (await rt.get(ids[0]!))?.history?.filter((h) => h.from === 'running').map((h) => [h.to, h.reason]),
        [['queued', 'waited for a slot']],
      );
      // Leases pass; no lease recovery touches them, and they run once the slot frees.
      for (let i = 0; i < 10; i++) await clock.advance(1000);
      g.open();
      await waitFor(async () => (await rt.counts()).byState.succeeded === WARM + 6);
      for (const id of ids) {
        const t = await rt.get(id);
        assert.equal(t?.attempts, 1);
        assert.equal(t?.history?.some((h) => /lease/i.test(h.reason ?? '')), false);
      }
    } finally {
      g.open(); // the drain's deadline runs on the manual clock: let the blocker end
      await rt.close();
    }
  });

  it('a node busy with one slow task gives back what its first burst buffered, and another node runs it (two runtimes, one file)', async () => {
    const db = tempDb();
    const g = gate();
    const ranOn: string[] = [];
    const a = await createRuntime({
      store: `sqlite:${db}`, maintenance: false, concurrency: 1, nodeId: 'a',
      tasks: { slow: { run: (i: { n: number }) => (i.n === 0 ? g.wait() : void ranOn.push('a')) } },
    });
    let b: Runtime | undefined;
    try {
      const first = await a.enqueue('slow', { n: 0 });
      await waitFor(async () => (await a.get(first))?.state === 'running');
      // One by one, as a service enqueues: the node's first burst may buffer them, with no slot free for them.
      for (let n = 1; n <= 20; n++) await a.enqueue('slow', { n });
      b = await createRuntime({
        store: `sqlite:${db}`, maintenance: false, concurrency: 4, nodeId: 'b',
        tasks: { slow: { run: () => void ranOn.push('b') } },
      });
      // A second later the buffer gives them back, and the slow rate keeps it from taking them again.
      await waitFor(async () => (await b!.counts()).byState.succeeded === 20, { label: 'the other node ran the twenty', timeout: 10_000 });
      assert.deepEqual([...new Set(ranOn)], ['b']);
      assert.equal(executorInfo(a).buffered, 0);
      assert.equal(executorInfo(a).prefetchNow, 0);
      const done = (await b.list({ name: 'slow', state: 'succeeded', limit: 100 })).tasks;
      assert.deepEqual(done.map((t) => t.attempts), done.map(() => 1), 'a task given back was not counted an attempt');
    } finally {
      g.open();
      await b?.close();
      await a.close();
    }
  });

  it('respects per-name concurrency with a buffer', async () => {
    const db = tempDb();
    let now = 0;
    let peak = 0;
    const tasks: CreateRuntimeOptions['tasks'] = {
      capped: {
        concurrency: 2,
        run: async () => {
          now++;
          peak = Math.max(peak, now);
          await new Promise((resolve) => setImmediate(resolve));
          now--;
        },
      },
      free: { run: () => 1 },
    };
    const rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, concurrency: 8, prefetch: 16, tasks });
    try {
      await rt.enqueueMany([...Array.from({ length: 40 }, () => ({ name: 'capped' })), ...Array.from({ length: 40 }, () => ({ name: 'free' }))]);
      await waitFor(async () => (await rt.counts()).byState.succeeded === 80, { timeout: 10_000 });
      assert.ok(peak <= 2, `capped ran ${peak} at once`);
    } finally {
      await rt.close();
    }
  });

  it('respects a rate limit: tasks claimed ahead still start at most max per window', async () => {
    const clock = new ManualClock();
    let started = 0;
    const tasks: CreateRuntimeOptions['tasks'] = { call: { rateLimit: { max: 3, per: '1s' }, run: () => void started++ } };
    const rt = await createRuntime({ store: `sqlite:${tempDb()}`, clock, maintenance: false, concurrency: 4, prefetch: 16, tasks });
    try {
      await rt.enqueueMany(Array.from({ length: 7 }, () => ({ name: 'call' })));
      await waitFor(() => started === 3);
      await rt.flush();
      await clock.advance(999);
      await rt.flush();
      assert.equal(started, 3);
      assert.equal(executorInfo(rt).buffered, 0);
      await clock.advance(1);
      await waitFor(() => started === 6);
      await clock.advance(500);
      assert.equal(started, 6);
      await clock.advance(500);
      await waitFor(() => started === 7);
    } finally {
      await rt.close();
    }
  });

  it('claims and settles a burst in few transactions', async () => {
    // A manual clock that stands still: every start falls in one rate window, so the buffer stays at its full size.
    const clock = new ManualClock();
    const rt = await createRuntime({ store: `sqlite:${tempDb()}`, clock, maintenance: false, concurrency: 8, prefetch: 32, tasks: { t: { run: () => 1 } } });
    try {
      await rt.enqueueMany(Array.from({ length: 400 }, (_, i) => ({ name: 't', input: { i } })));
      await waitFor(async () => (await rt.counts()).byState.succeeded === 400, { timeout: 10_000 });
      const node = (a: string) => rt.tree().children?.find((c) => c.address === a)?.info as Record<string, number>;
      // Without the buffer a claim takes at most the 8 free slots (≥ 50 claims); outcomes share transactions.
      assert.ok(node('scheduler').claims <= 30, `${node('scheduler').claims} claims`);
      assert.ok(node('tracker').batches <= 100, `${node('tracker').batches} settle transactions`);
    } finally {
      await rt.close();
    }
  });

  it('does not buffer when starts are sparse (slow work)', async () => {
    const clock = new ManualClock();
    const gates = [gate(), gate()];
    const tasks: CreateRuntimeOptions['tasks'] = {
      slow: { run: (i: { n: number }) => gates[i.n]!.wait() },
      work: { run: () => 1 },
    };
    const rt = await createRuntime({ store: `sqlite:${tempDb()}`, clock, maintenance: false, concurrency: 1, prefetch: 4, tasks });
    try {
      const first = await rt.enqueue('slow', { n: 0 });
      await waitFor(async () => (await rt.get(first))?.state === 'running');
      await clock.advance(1000);
      gates[0]!.open();
      await waitFor(async () => (await rt.get(first))?.state === 'succeeded');
      // Two starts a second apart: a start rate far below what the buffer is for.
      const second = await rt.enqueue('slow', { n: 1 });
      await waitFor(async () => (await rt.get(second))?.state === 'running');
      assert.equal(executorInfo(rt).prefetchNow, 0);
      await rt.enqueueMany([1, 2, 3].map((i) => ({ name: 'work', input: { i } })));
      await rt.flush();
      await waitFor(async () => (await rt.counts()).byState.queued === 3);
      assert.equal(executorInfo(rt).buffered, 0);
      gates[1]!.open();
      await waitFor(async () => (await rt.counts()).byState.succeeded === 5);
    } finally {
      for (const g of gates) g.open();
      await rt.close();
    }
  });

  it('validates the option and picks none for the memory store', async () => {
    for (const bad of [-1, 1.5, 'lots', 10_001]) {
      assert.throws(() => resolveOptions({ prefetch: bad as never }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION && /prefetch/.test(e.message));
    }
    assert.equal(resolveOptions({ prefetch: 0 }).prefetch, 0);
    assert.equal(resolveOptions({}).prefetch, 'auto');
    const rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { t: { run: () => 1 } } });
    try {
      assert.equal(executorInfo(rt).prefetch, 0);
    } finally {
      await rt.close();
    }
    const sq = await createRuntime({ store: `sqlite:${tempDb()}`, maintenance: false, concurrency: 8, tasks: { t: { run: () => 1 } } });
    try {
      assert.equal(executorInfo(sq).prefetch, 128);
    } finally {
      await sq.close();
    }
  });
});
