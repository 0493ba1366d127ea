// An idle node claims a new task in the enqueue's own write (the scheduler's claim offer, Store.enqueueAndClaim):
// the task starts without a wake-up round trip, and nothing about limits, pauses or exactly-once changes.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PREPARE_LEAD_MS } from '../../actors/scheduler/scheduler.ts';
import { ManualClock } from '../../src/clock.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { Store } from '../../src/store/store.ts';
import type { NewTask } from '../../src/task.ts';
import { PG_SKIP, PG_URL, trackSchemas } from '../helpers/pg.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { latch } from '../helpers/latch.ts';
import { overrideStore } from '../helpers/store-override.ts';
import { waitFor } from '../helpers/wait-for.ts';

const STORES = ['memory', 'sqlite', 'postgres'] as const;
const schemas = trackSchemas('enqclaim');
after(() => schemas.dropAll());

function openStore(store: (typeof STORES)[number]): string | Store {
  if (store === 'memory') return 'memory';
  if (store === 'sqlite') return `sqlite:${tempDb('enqueue-claim')}`;
  return createPostgresStore(PG_URL!, { schema: schemas.next(), poolSize: 2 });
}

async function withRuntime(store: (typeof STORES)[number], options: CreateRuntimeOptions, fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await createRuntime({ maintenance: false, ...options, store: openStore(store) });
  try {
    await fn(rt);
  } finally {
    await rt.close({ timeout: 2000, force: true });
  }
}

function schedulerInfo(rt: Runtime): { claims: number; emptyClaims: number; offerClaims: number; claimed: number; hungry: boolean } {
  return (rt.tree().children?.find((c) => c.address === 'scheduler')?.info ?? {}) as never;
}

function executorInfo(rt: Runtime): { cancelledAhead?: number; rechecking?: number; started?: number; paused?: string[]; running?: number } {
  return (rt.tree().children?.find((c) => c.address === 'executor')?.info ?? {}) as never;
}

/**
 * Holds the store's enqueue-and-claim calls that `when` picks until `gate` opens: before the store makes the
 * claim, or with `after`, once it has made it (the answer is then on its way). `held()` counts the calls held.
 */
function holdClaims(store: Store, when: (tasks: readonly NewTask[]) => boolean, after = false): { gate: ReturnType<typeof latch>; held: () => number } {
  const gate = latch();
  let held = 0;
  const enqueueAndClaim = store.enqueueAndClaim!.bind(store);
  store.enqueueAndClaim = async (tasks, request) => {
    if (!when(tasks)) return enqueueAndClaim(tasks, request);
    if (!after) {
      held++;
      await gate.opened;
    }
    const result = await enqueueAndClaim(tasks, request);
    if (after) {
      held++;
      await gate.opened;
    }
    return result;
  };
  return { gate, held: () => held };
}

/**
 * A memory runtime that runs `a` (the ids of its runs in `ran`), idle past its first claim, whose next enqueue's
 * claim is held (see holdClaims) until `open()`; `enqueued` is that enqueue's id.
 */
async function withHeldEnqueue(
  after: boolean,
  fn: (rt: Runtime, held: { store: Store; ran: string[]; enqueued: Promise<string>; open: () => void }) => Promise<void>,
): Promise<void> {
  const store = createMemoryStore();
  let armed = false;
  const { gate, held } = holdClaims(store, () => {
    const take = armed;
    armed = false;
    return take;
  }, after);
  const ran: string[] = [];
  const rt = await createRuntime({ maintenance: false, store, concurrency: 4, tasks: { a: { run: (_input, ctx) => void ran.push(ctx.id) } } });
  try {
    await waitFor(() => schedulerInfo(rt).hungry && schedulerInfo(rt).claims >= 1, { label: 'scheduler idle' });
    armed = true;
    const enqueued = rt.enqueue('a');
    await waitFor(() => held() === 1, { label: after ? 'claimed, not dispatched yet' : "the enqueue's claim is on its way" });
    await fn(rt, { store, ran, enqueued, open: gate.open });
  } finally {
    gate.open();
    await rt.close({ timeout: 2000, force: true });
  }
}

/** Waits until the scheduler is idle past its first claim (its offer then stands), then schedules `tick` every minute. */
async function scheduleOnIdle(rt: Runtime): Promise<void> {
  // On PostgreSQL the first claim waits for new connections.
  await waitFor(() => schedulerInfo(rt).hungry && !(schedulerInfo(rt) as { claiming?: boolean }).claiming && schedulerInfo(rt).claims >= 1, { label: 'scheduler idle' });
  await rt.schedule('tick', { every: '1m', id: 'minutely' });
  // The scheduler hears of the schedule after the store wrote it: its timers are armed then.
  await waitFor(() => (schedulerInfo(rt) as { schedules?: number }).schedules === 1, { label: 'schedule armed' });
}

/**
 * The slot's task of the `minutely` schedule, given back while `tick` is paused: it waits `scheduled` for its slot
 * (no attempt counted, the pause its reason) and takes no slot here; after a resume it runs on its slot, once.
 */
async function resumedRunsOnSlot(rt: Runtime, clock: ManualClock, slot: number, runs: Array<[string, number]>): Promise<void> {
  await waitFor(async () => (await rt.list({ scheduleId: 'minutely', state: 'scheduled' })).tasks.length === 1, { label: 'given back for its slot' });
  const [given] = (await rt.list({ scheduleId: 'minutely' })).tasks;
  assert.deepEqual([given?.state, given?.timings.runAt, given?.attempts], ['scheduled', slot, 0]);
  const last = (await rt.get(given!.id))?.history?.at(-1);
  assert.deepEqual([last?.from, last?.to, last?.reason], ['running', 'scheduled', 'paused']);
  assert.equal(executorInfo(rt).running, 0, 'its slot is free');
  assert.deepEqual(runs, []);
  rt.resume('tick');
  await waitFor(() => (schedulerInfo(rt) as { wakeAt?: number }).wakeAt === slot, { label: 'wake armed at the slot' });
  await clock.advanceTo(slot);
  await waitFor(async () => (await rt.get(given!.id))?.state === 'succeeded', { label: 'run at its slot' });
  assert.deepEqual(runs, [[given!.id, slot]]);
  assert.equal((await rt.list({ scheduleId: 'minutely' })).tasks.length, 1, 'the slot made no second task');
}

/**
 * A task of `a` (paused meanwhile; the caller resumes it) that was cancelled while it ran on another node, so that
 * this executor keeps the cancel in mind, and then retried: it is `queued` again.
 */
async function cancelledElsewhereThenRetried(rt: Runtime, store: Store): Promise<string> {
  rt.pause('a');
  const id = await rt.enqueue('a');
  assert.equal((await store.claim({ owner: 'elsewhere', limit: 1, leaseMs: 60_000, now: Date.now(), names: ['a'] })).length, 1);
  assert.equal(await rt.cancel(id), true);
  await waitFor(() => executorInfo(rt).cancelledAhead === 1, { label: 'the cancel kept in mind' });
  assert.equal((await rt.retry(id))?.state, 'queued');
  return id;
}

/** Resolves once `n` tasks have succeeded (counted from the call). */
function succeeded(rt: Runtime, n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const off = rt.on('task.succeeded', () => {
      if (++seen === n) {
        off();
        resolve();
      }
    });
  });
}

describe('enqueue and claim in one write', () => {
  for (const store of STORES) {
    const skip = store === 'postgres' && PG_SKIP ? { skip: PG_SKIP } : {};
    it(`${store}: on an idle node each new task is claimed by its enqueue, not by a scheduler claim`, skip, async () => {
      await withRuntime(store, { concurrency: 4, tasks: { job: { run: (i: number) => i * 2 } } }, async (rt) => {
        // the first demand is met by the scheduler's own (empty) claim; from then on it offers
        await waitFor(() => schedulerInfo(rt).offerClaims === 0 && schedulerInfo(rt).hungry && schedulerInfo(rt).claims >= 1, { label: 'scheduler idle' });
        const { claims: claimsBefore, emptyClaims: emptyBefore, claimed: claimedBefore } = schedulerInfo(rt);
        for (let i = 0; i < 10; i++) {
          const done = succeeded(rt, 1);
          const id = await rt.enqueue('job', i);
          await done;
          const record = await rt.get(id);
          assert.equal(record?.state, 'succeeded');
          assert.equal(record?.result, i * 2);
          assert.equal(record?.attempts, 1);
        }
        const info = schedulerInfo(rt);
        assert.equal(info.offerClaims, 10, 'every enqueue claimed its own task');
        assert.equal(info.claimed - claimedBefore, 10, 'and only it');
        // A store shared with other nodes is drained on its word (its start in the insert found nothing else due):
        // the scheduler makes no claim of its own after an offer either, but for its poll (one a second while idle).
        const own = info.claims - claimsBefore;
        assert.equal(own, info.emptyClaims - emptyBefore, 'any claim of its own found nothing');
        if (store === 'postgres') assert.ok(own <= 2, `no claim after each offer (${own} claims for 10 tasks)`);
        else assert.equal(own, 0, 'the scheduler made no claim of its own');
      });
    });

    it(`${store}: enqueues racing the scheduler's own claims never run more than the concurrency, and run each task once`, skip, async () => {
      let running = 0;
      let most = 0;
      const runs = new Map<number, number>();
      const tasks: CreateRuntimeOptions['tasks'] = {
        job: {
          run: async (i: number) => {
            runs.set(i, (runs.get(i) ?? 0) + 1);
            most = Math.max(most, ++running);
            // end on a later turn, so that ends (the scheduler's claims) and new enqueues interleave
            await new Promise((resolve) => setImmediate(resolve));
            running--;
          },
        },
      };
      await withRuntime(store, { concurrency: 2, tasks }, async (rt) => {
        const total = 200;
        const done = succeeded(rt, total);
        // the race starts from an idle scheduler, past its first claim, so the first enqueues meet a standing offer
        // (a PostgreSQL runtime's first claim waits for its connections; under load the callers could outrun it)
        await waitFor(() => schedulerInfo(rt).hungry && schedulerInfo(rt).claims >= 1, { label: 'scheduler idle' });
        const callers = Array.from({ length: 4 }, async (_, c) => {
          for (let i = c; i < total; i += 4) await rt.enqueue('job', i);
        });
        await Promise.all(callers);
        await done;
        assert.equal(runs.size, total);
        assert.ok([...runs.values()].every((n) => n === 1), 'each task ran once');
        assert.ok(most <= 2, `at most 2 at once (saw ${most})`);
        assert.equal((await rt.counts()).byState.succeeded, total);
        assert.ok(schedulerInfo(rt).offerClaims > 0, 'some tasks were claimed by their enqueue');
      });
    });

    it(`${store}: a paused name is not claimed by an enqueue; a delayed task waits for its time`, skip, async () => {
      const ran: string[] = [];
      const tasks: CreateRuntimeOptions['tasks'] = {
        a: { run: () => void ran.push('a') },
        b: { run: () => void ran.push('b') },
      };
      await withRuntime(store, { concurrency: 4, tasks }, async (rt) => {
        await waitFor(() => schedulerInfo(rt).hungry, { label: 'scheduler idle' });
        rt.pause('a');
        const a = await rt.enqueue('a');
        const later = await rt.enqueue('b', undefined, { delay: '1h' });
        const done = succeeded(rt, 1);
        const b = await rt.enqueue('b');
        await done;
        assert.deepEqual(ran, ['b']);
        assert.equal((await rt.get(b))?.state, 'succeeded');
        // A claim the scheduler started before the pause may still take it; the executor then gives it back
        // unstarted (PostgreSQL: the first claim waits for its connections, so this happens there). It never runs.
        await waitFor(async () => (await rt.get(a))?.state === 'queued', { label: 'the paused task is queued' });
        assert.equal((await rt.get(later))?.state, 'scheduled');
        const resumed = succeeded(rt, 1);
        rt.resume('a');
        await resumed;
        assert.deepEqual(ran, ['b', 'a']);
      });
    });
    it(`${store}: a slot's task is written ahead on an idle node, claimed as of its slot, and starts on it`, skip, async () => {
      const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
      const clock = new ManualClock(slot - 30_000);
      const runs: number[] = [];
      await withRuntime(store, { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
        await scheduleOnIdle(rt);
        await clock.advanceTo(slot - PREPARE_LEAD_MS);
        await waitFor(async () => (await rt.list({ scheduleId: 'minutely', state: 'running' })).tasks.length === 1, { label: 'written ahead' });
        const [early] = (await rt.list({ scheduleId: 'minutely' })).tasks;
        assert.equal(early?.timings.startedAt, slot);
        assert.deepEqual(runs, [], 'its code waits for the slot');
        await clock.advanceTo(slot);
        await waitFor(async () => (await rt.get(early!.id))?.state === 'succeeded', { label: 'run on its slot' });
        assert.deepEqual(runs, [slot]);
        const task = await rt.get(early!.id);
        assert.deepEqual(task?.history?.map((h) => [h.to, h.at]), [['scheduled', slot - PREPARE_LEAD_MS], ['queued', slot], ['running', slot], ['succeeded', slot]]);
      });
    });

    it(`${store}: a claim in flight when a slot is prepared does not keep its task from being written ahead`, skip, async () => {
      const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
      const clock = new ManualClock(slot - 30_000);
      const runs: number[] = [];
      await withRuntime(store, { clock, tasks: { tick: { run: () => void runs.push(clock.now()) } } }, async (rt) => {
        await scheduleOnIdle(rt);
        const claims = schedulerInfo(rt).claims;
        // A registration wakes the scheduler: its claim (its offer withdrawn meanwhile) is on the way as the slot is prepared.
        rt.register('other', { run: () => null });
        await clock.advanceTo(slot - PREPARE_LEAD_MS);
        await waitFor(async () => (await rt.list({ scheduleId: 'minutely', state: 'running' })).tasks.length === 1, { label: 'written ahead' });
        assert.ok(schedulerInfo(rt).claims > claims, 'the scheduler claimed meanwhile');
        assert.deepEqual(runs, []);
        await clock.advanceTo(slot);
        await waitFor(() => runs.length === 1, { label: 'run on its slot' });
        assert.deepEqual(runs, [slot]);
      });
    });
  }

  for (const store of ['sqlite', 'postgres'] as const) {
    const skip = store === 'postgres' && PG_SKIP ? { skip: PG_SKIP } : {};
    it(`${store}: a slot's task written ahead and given back by a close waits \`scheduled\` for its slot, and the next node runs it then, once`, skip, async () => {
      const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
      const clock = new ManualClock(slot - 30_000);
      const runs: Array<[string, number]> = [];
      const file = tempDb('enqueue-claim');
      const schema = schemas.next();
      const open = () => createRuntime({
        maintenance: false,
        clock,
        tasks: { tick: { run: (_input, ctx) => void runs.push([ctx.id, clock.now()]) } },
        store: store === 'sqlite' ? `sqlite:${file}` : createPostgresStore(PG_URL!, { schema, poolSize: 2 }),
      });
      const first = await open();
      let id: string;
      try {
        await scheduleOnIdle(first);
        await clock.advanceTo(slot - PREPARE_LEAD_MS);
        await waitFor(async () => (await first.list({ scheduleId: 'minutely', state: 'running' })).tasks.length === 1, { label: 'written ahead' });
        id = (await first.list({ scheduleId: 'minutely' })).tasks[0]!.id;
      } finally {
        await first.close({ force: true });
      }
      assert.deepEqual(runs, [], 'stopped before its slot');
      const next = await open();
      try {
        const given = await next.get(id);
        assert.deepEqual([given?.state, given?.timings.runAt, given?.attempts], ['scheduled', slot, 0]);
        assert.deepEqual(given?.history?.at(-1) && [given.history.at(-1)!.from, given.history.at(-1)!.to, given.history.at(-1)!.reason], ['running', 'scheduled', 'shutdown']);
        // The next node's first claim finds nothing due and arms its wake for the task's time.
        await waitFor(() => (schedulerInfo(next) as { wakeAt?: number }).wakeAt === slot, { label: 'wake armed at the slot' });
        await clock.advanceTo(slot);
        await waitFor(async () => (await next.get(id))?.state === 'succeeded', { label: 'run at its slot' });
        assert.deepEqual(runs, [[id, slot]]);
        assert.equal((await next.list({ scheduleId: 'minutely' })).tasks.length, 1, 'the slot made no second task');
      } finally {
        await next.close({ force: true });
      }
    });
  }

  it('memory: a slot\'s task written ahead that reaches a draining executor is given back `scheduled` for its slot, and the next runtime runs it then, once', async () => {
    const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
    const clock = new ManualClock(slot - 30_000);
    const runs: Array<[string, number]> = [];
    const store = createMemoryStore();
    // The write ahead's claim is held until the executor drains: its task then arrives at a draining executor.
    const { gate, held } = holdClaims(store, (tasks) => tasks.some((t) => t.scheduleId !== undefined));
    const close = store.close.bind(store);
    store.close = async () => {}; // the next runtime opens the same store
    const open = () => createRuntime({ maintenance: false, clock, store, tasks: { tick: { run: (_input, ctx) => void runs.push([ctx.id, clock.now()]) } } });
    const first = await open();
    let closing: Promise<void> | undefined;
    try {
      await scheduleOnIdle(first);
      await clock.advanceTo(slot - PREPARE_LEAD_MS);
      await waitFor(() => held() === 1, { label: 'write ahead in flight' });
      closing = first.close({ timeout: 5000 });
      await waitFor(() => (first.tree().children?.find((c) => c.address === 'executor')?.info as { draining?: boolean } | undefined)?.draining === true, { label: 'executor draining' });
      gate.open();
      await closing;
    } finally {
      gate.open();
      if (closing === undefined) await first.close({ force: true });
    }
    assert.deepEqual(runs, [], 'stopped before its slot');
    const [given] = (await store.list({ scheduleId: 'minutely' })).tasks;
    assert.deepEqual([given?.state, given?.runAt, given?.attempts], ['scheduled', slot, 0], 'back in the store, due at its slot');
    const next = await open();
    try {
      await waitFor(() => (schedulerInfo(next) as { wakeAt?: number }).wakeAt === slot, { label: 'wake armed at the slot' });
      await clock.advanceTo(slot);
      await waitFor(async () => (await next.get(given!.id))?.state === 'succeeded', { label: 'run at its slot' });
      assert.deepEqual(runs, [[given!.id, slot]]);
      assert.equal((await next.list({ scheduleId: 'minutely' })).tasks.length, 1, 'the slot made no second task');
    } finally {
      await next.close({ force: true });
      await close();
    }
  });

  it('memory: a task taken by a claim on its way when its name is paused does not start: it goes back `queued`, and runs after the resume', () =>
    withHeldEnqueue(false, async (rt, { ran, enqueued, open }) => {
      rt.pause('a');
      await waitFor(() => executorInfo(rt).paused?.includes('a'), { label: 'the executor knows of the pause' });
      open();
      const id = await enqueued;
      await waitFor(async () => (await rt.get(id))?.state === 'queued', { label: 'given back' });
      const task = await rt.get(id);
      assert.deepEqual([task?.attempts, task?.history?.at(-1)?.from, task?.history?.at(-1)?.reason], [0, 'running', 'paused']);
      assert.deepEqual(ran, [], 'it did not start');
      const done = succeeded(rt, 1);
      rt.resume('a');
      await done;
      assert.deepEqual(ran, [id]);
    }));

  it("memory: a slot's task written ahead that arrives after its name was paused waits `scheduled` for its slot, and runs on it after the resume", async () => {
    const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
    const clock = new ManualClock(slot - 30_000);
    const runs: Array<[string, number]> = [];
    const store = createMemoryStore();
    // The write ahead's claim is held until the pause is in: its task then arrives at an executor that will not start it.
    const { gate, held } = holdClaims(store, (tasks) => tasks.some((t) => t.scheduleId !== undefined));
    const rt = await createRuntime({ maintenance: false, store, clock, tasks: { tick: { run: (_input, ctx) => void runs.push([ctx.id, clock.now()]) } } });
    try {
      await scheduleOnIdle(rt);
      await clock.advanceTo(slot - PREPARE_LEAD_MS);
      await waitFor(() => held() === 1, { label: 'write ahead in flight' });
      rt.pause('tick');
      await waitFor(() => executorInfo(rt).paused?.includes('tick'), { label: 'the executor knows of the pause' });
      gate.open();
      await resumedRunsOnSlot(rt, clock, slot, runs);
    } finally {
      await rt.close({ timeout: 2000, force: true });
    }
  });

  it("memory: a slot's task written ahead and waiting for its slot goes back `scheduled` when its name is paused, and runs on its slot after the resume", async () => {
    const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
    const clock = new ManualClock(slot - 30_000);
    const runs: Array<[string, number]> = [];
    const rt = await createRuntime({ maintenance: false, store: 'memory', clock, tasks: { tick: { run: (_input, ctx) => void runs.push([ctx.id, clock.now()]) } } });
    try {
      await scheduleOnIdle(rt);
      await clock.advanceTo(slot - PREPARE_LEAD_MS);
      await waitFor(async () => (await rt.list({ scheduleId: 'minutely', state: 'running' })).tasks.length === 1, { label: 'written ahead, waiting for its slot' });
      rt.pause('tick');
      await resumedRunsOnSlot(rt, clock, slot, runs);
    } finally {
      await rt.close({ timeout: 2000, force: true });
    }
  });

  it('memory: a task cancelled between its claim and its dispatch never starts', () =>
    withHeldEnqueue(true, async (rt, { store, ran, enqueued, open }) => {
      const [task] = (await store.list({})).tasks;
      assert.equal(task?.state, 'running');
      assert.deepEqual(await rt.cancel(task!.id), true);
      await waitFor(() => executorInfo(rt).cancelledAhead === 1, { label: 'the executor keeps the cancel in mind' });
      open();
      assert.equal(await enqueued, task!.id);
      await waitFor(() => executorInfo(rt).cancelledAhead === undefined && executorInfo(rt).rechecking === undefined, { label: 'the dispatch met the cancel, and the store confirmed it' });
      // Anything that would start it has happened: a run starts in the dispatch's turn (no prefetch here).
      await rt.flush();
      assert.deepEqual(ran, []);
      assert.equal((await rt.get(task!.id))?.state, 'cancelled');
      assert.equal(executorInfo(rt).started ?? 0, 0);
      // The slot is free again: the next task runs.
      const done = succeeded(rt, 1);
      const next = await rt.enqueue('a');
      await done;
      assert.deepEqual(ran, [next]);
    }));

  it('memory: a task cancelled, retried and claimed again within a lease runs: a remembered cancel only names an earlier claim', async () => {
    const store = createMemoryStore();
    const ran: string[] = [];
    const rt = await createRuntime({ maintenance: false, store, tasks: { a: { run: (_input, ctx) => void ran.push(ctx.id) } } });
    try {
      const id = await cancelledElsewhereThenRetried(rt, store);
      rt.resume('a');
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded', { label: 'the retried task ran' });
      assert.deepEqual(ran, [id]);
      assert.equal(executorInfo(rt).cancelledAhead, undefined, 'the claim met the cancel');
      assert.deepEqual((await rt.get(id))?.history?.map((h) => h.to), ['queued', 'running', 'cancelled', 'queued', 'running', 'succeeded']);
    } finally {
      await rt.close({ timeout: 2000, force: true });
    }
  });

  it('memory: a cancel that comes while the store is read about a remembered one is heeded too', async () => {
    const store = createMemoryStore();
    // The executor's next read is answered as the store was before the test's second cancel.
    const gate = latch();
    let armed = false;
    let held = 0;
    const get = store.get.bind(store);
    store.get = async (id) => {
      if (!armed) return get(id);
      armed = false;
      const before = await get(id);
      held++;
      await gate.opened;
      return before;
    };
    const ran: string[] = [];
    const rt = await createRuntime({ maintenance: false, store, tasks: { a: { run: (_input, ctx) => void ran.push(ctx.id) } } });
    try {
      const id = await cancelledElsewhereThenRetried(rt, store);
      armed = true;
      rt.resume('a');
      await waitFor(() => held === 1 && executorInfo(rt).rechecking === 1, { label: "the executor's read of the store is held" });
      // Claimed here now; cancelled again before the read's answer arrives.
      assert.equal(await rt.cancel(id), true);
      await waitFor(() => executorInfo(rt).cancelledAhead === 1, { label: 'the second cancel kept in mind' });
      gate.open();
      await waitFor(() => executorInfo(rt).rechecking === undefined && executorInfo(rt).cancelledAhead === undefined, { label: 'read again, and dropped' });
      await rt.flush();
      assert.deepEqual(ran, []);
      assert.equal((await rt.get(id))?.state, 'cancelled');
    } finally {
      gate.open();
      await rt.close({ timeout: 2000, force: true });
    }
  });

  it('postgres: a cancel made on another node while this node\'s claim is on its way: the task never starts', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    const schema = schemas.next();
    const storeA = createPostgresStore(PG_URL!, { schema, poolSize: 2 });
    // Once node A is idle, the answer of its next claim is held back after the store made it.
    const gate = latch();
    let gating = false;
    let held = 0;
    for (const method of ['claim', 'enqueueAndClaim'] as const) {
      const real = storeA[method]!.bind(storeA) as (...args: unknown[]) => Promise<unknown>;
      (storeA as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
        const result = await real(...args);
        if (gating && (Array.isArray(result) ? result.length > 0 : ((result as { claimed: unknown[] }).claimed.length > 0))) {
          held++;
          await gate.opened;
        }
        return result;
      };
    }
    const ran: string[] = [];
    const rtA = await createRuntime({ maintenance: false, store: storeA, tasks: { a: { run: (_input, ctx) => void ran.push(ctx.id) } } });
    // Node B registers nothing: it cannot claim the task, only see and cancel it.
    const rtB = await createRuntime({ maintenance: false, store: createPostgresStore(PG_URL!, { schema, poolSize: 2 }) });
    try {
      await waitFor(() => schedulerInfo(rtA).hungry && schedulerInfo(rtA).claims >= 1, { label: 'node A idle', timeout: 10_000 });
      gating = true;
      const enqueued = rtA.enqueue('a');
      await waitFor(() => held === 1, { label: "node A's claim made, its answer held", timeout: 10_000 });
      const [task] = (await rtB.list({ name: 'a' })).tasks;
      const id = task!.id;
      assert.deepEqual([task?.state, (await rtB.get(id))?.owner], ['running', rtA.nodeId]);
      assert.equal(await rtB.cancel(id), true);
      await waitFor(() => executorInfo(rtA).cancelledAhead === 1, { label: 'node A heard of the cancel', timeout: 10_000 });
      gating = false;
      gate.open();
      assert.equal(await enqueued, id);
      await waitFor(() => executorInfo(rtA).cancelledAhead === undefined && executorInfo(rtA).rechecking === undefined, { label: 'the dispatch met the cancel, and the store confirmed it', timeout: 10_000 });
      await rtA.flush();
      assert.deepEqual(ran, []);
      assert.equal((await rtA.get(id))?.state, 'cancelled');
      // Node A goes on running tasks.
      const next = await rtA.enqueue('a');
      await waitFor(async () => (await rtB.get(next))?.state === 'succeeded', { label: 'node A ran the next task', timeout: 10_000 });
      assert.deepEqual(ran, [next]);
    } finally {
      gate.open();
      await rtB.close({ timeout: 2000, force: true });
      await rtA.close({ timeout: 2000, force: true });
    }
  });

  it('memory: cancels of tasks the executor does not hold are kept in mind for a lease, then forgotten', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const store = createMemoryStore();
    const rt = await createRuntime({ maintenance: false, store, clock, lease: '10s', tasks: { a: { run: () => null } } });
    try {
      // Three tasks running on another node (claimed straight from the store).
      rt.pause('a');
      const ids = [await rt.enqueue('a'), await rt.enqueue('a'), await rt.enqueue('a')];
      const claimed = await store.claim({ owner: 'elsewhere', limit: 3, leaseMs: 60_000, now: clock.now(), names: ['a'] });
      assert.deepEqual(claimed.map((t) => t.id).sort(), [...ids].sort());
      const [x, y, z] = ids as [string, string, string];
      assert.equal(await rt.cancel(x), true);
      await waitFor(() => executorInfo(rt).cancelledAhead === 1, { label: 'the first cancel kept' });
      await clock.advance(10_001);
      assert.equal(await rt.cancel(y), true);
      assert.equal(await rt.cancel(z), true);
      // The first one is older than a lease: forgotten as the next comes in (all three kept would read 3).
      await waitFor(() => executorInfo(rt).cancelledAhead === 2, { label: 'the last two kept, the first forgotten' });
      for (const id of ids) assert.equal((await rt.get(id))?.state, 'cancelled');
    } finally {
      await rt.close({ timeout: 2000, force: true });
    }
  });

  it('postgres: claims the enqueue cannot make in its own statement are not offered to it (weighted-random, rate limits)', PG_SKIP ? { skip: PG_SKIP } : {}, async () => {
    for (const variant of ['weighted-random', 'rate limit'] as const) {
      const store = createPostgresStore(PG_URL!, { schema: schemas.next(), poolSize: 2, ...(variant === 'weighted-random' ? { strategy: 'weighted-random' as const } : {}) });
      const job = variant === 'rate limit' ? { run: (i: number) => i * 2, rateLimit: { max: 1000, per: '1s' as const } } : { run: (i: number) => i * 2 };
      const rt = await createRuntime({ maintenance: false, concurrency: 4, store, tasks: { job } });
      try {
        await waitFor(() => schedulerInfo(rt).hungry && schedulerInfo(rt).claims >= 1, { label: 'scheduler idle' });
        for (let i = 0; i < 3; i++) {
          const done = succeeded(rt, 1);
          const id = await rt.enqueue('job', i);
          await done;
          assert.equal((await rt.get(id))?.result, i * 2);
        }
        assert.equal(schedulerInfo(rt).offerClaims, 0, `${variant}: no offer was made`);
        assert.equal(schedulerInfo(rt).claimed, 3, `${variant}: the scheduler's claims took the tasks`);
      } finally {
        await rt.close({ timeout: 2000, force: true });
      }
    }
  });

  it('a claim of the scheduler that races an enqueue\'s claim adds no run beyond the concurrency: the rest waits, leased', async () => {
    const inner = createMemoryStore();
    let hold: Promise<void> | undefined;
    let release!: () => void;
    let writes = 0;
    // The real store, except that the answer of an enqueue-and-claim can be held back: the claim is made (in the
    // store) but the tracker hears of it only when the test says so.
    const store: Store = overrideStore(inner, {
      enqueueAndClaim: async (...args: Parameters<NonNullable<Store['enqueueAndClaim']>>) => {
        const result = await inner.enqueueAndClaim!(...args);
        writes++;
        if (hold) await hold;
        return result;
      },
    });
    let running = 0;
    let most = 0;
    const ends: Array<() => void> = [];
    const tasks: CreateRuntimeOptions['tasks'] = {
      job: {
        run: () => {
          most = Math.max(most, ++running);
          return new Promise<void>((resolve) => ends.push(() => {
            running--;
            resolve();
          }));
        },
      },
    };
    const rt = await createRuntime({ store, concurrency: 2, maintenance: false, tasks });
    try {
      await waitFor(() => schedulerInfo(rt).hungry && schedulerInfo(rt).claims >= 1, { label: 'scheduler idle' });
      hold = new Promise((resolve) => (release = resolve));
      const enqueued = rt.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ name: 'job', input: i })));
      await waitFor(() => writes === 1, { label: 'the enqueue claimed 2 in its write' });
      // the scheduler claims for the same demand meanwhile (a resume wakes it): it takes the other 2
      const claims = schedulerInfo(rt).claims;
      rt.resume('job');
      await waitFor(() => schedulerInfo(rt).claims > claims && running === 2, { label: 'the scheduler claimed and started 2' });
      release();
      await enqueued;
      const counts = await waitFor<Awaited<ReturnType<Runtime["counts"]>>>(async () => {
        const c = await rt.counts();
        return c.byState.running === 4 ? c : undefined;
      }, { label: 'all 4 leased' });
      assert.equal(counts.byState.running, 4, 'the 2 extra stay claimed (leased) in the buffer');
      assert.equal(running, 2, 'only 2 run');
      // each end frees a slot for one buffered task
      while (ends.length > 0) ends.shift()!();
      await waitFor(() => running === 2, { label: 'the buffered 2 started' });
      while (ends.length > 0) ends.shift()!();
      await waitFor(async () => (await rt.counts()).byState.succeeded === 4, { label: 'all 4 succeeded' });
      assert.equal(most, 2);
    } finally {
      release?.();
      await rt.close({ timeout: 2000, force: true });
    }
  });
});
