// What a restart keeps on the SQLite store: outcomes and history, delayed tasks, schedules with their catch-up
// rule, cancellations, idempotency keys; and what a bad database file gets: a coded error, the file untouched.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { PREPARE_LEAD_MS } from '../../actors/scheduler/scheduler.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { tempDb as tempDbIn } from '../helpers/temp-db.ts';

const tempDb = (): string => tempDbIn('durable');

function open(db: string, extra: CreateRuntimeOptions = {}): Promise<Runtime> {
  return createRuntime({ store: `sqlite:${db}`, maintenance: false, ...extra });
}

describe('durable runtime on SQLite', () => {
  it('outcomes, errors, attempts, history and output survive a restart', async () => {
    const db = tempDb();
    const tasks: CreateRuntimeOptions['tasks'] = {
      ok: { run: (i: { n: number }, ctx) => { ctx.log(`n=${i.n}`); return i.n * 2; } },
      bad: { run: () => { throw new Error('nope'); } },
    };
    let ids: string[];
    {
      const rt = await open(db, { tasks });
      ids = [await rt.enqueue('ok', { n: 21 }), await rt.enqueue('bad')];
      await waitFor(async () => (await rt.counts()).byState.succeeded === 1 && (await rt.counts()).byState.failed === 1);
      await rt.close();
    }
    const rt = await open(db, { tasks });
    try {
      const ok = await rt.get(ids[0]!);
      assert.equal(ok?.state, 'succeeded');
      assert.equal(ok?.result, 42);
      assert.deepEqual(ok?.history?.map((h) => h.to), ['queued', 'running', 'succeeded']);
      assert.deepEqual((await rt.output(ids[0]!)).map((l) => l.text), ['n=21']);
      const bad = await rt.get(ids[1]!);
      assert.equal(bad?.state, 'failed');
      assert.equal(bad?.error?.message, 'nope');
      assert.equal(bad?.attempts, 1);
    } finally {
      await rt.close();
    }
  });

  it('a delayed task survives a restart and runs on time; an idempotency key holds across it', async () => {
    const db = tempDb();
    const clock = new ManualClock();
    let ran = 0;
    const tasks: CreateRuntimeOptions['tasks'] = { later: { run: () => ++ran } };
    let id: string;
    {
      const rt = await open(db, { clock, tasks });
      id = await rt.enqueue('later', {}, { delay: '1h', key: 'once' });
      await rt.close();
    }
    const rt = await open(db, { clock, tasks });
    try {
      assert.equal(await rt.enqueue('later', {}, { key: 'once' }), id);
      assert.equal((await rt.get(id))?.state, 'scheduled');
      await clock.advance(3_599_000);
      await rt.flush();
      assert.equal(ran, 0);
      await clock.advance(1_000);
      await waitFor(async () => (await rt.get(id))?.state === 'succeeded');
      assert.equal(ran, 1);
    } finally {
      await rt.close();
    }
  });

  it('after downtime a schedule runs its most recent missed slot once, then keeps its timetable', async () => {
    const db = tempDb();
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const ticks: number[] = [];
    const tasks: CreateRuntimeOptions['tasks'] = { tick: { run: (_i: unknown, ctx) => void ticks.push(Number(ctx.id.length)) } };
    {
      const rt = await open(db, { clock, tasks });
      await rt.schedule('tick', { every: '1m', id: 'minutely' });
      await clock.advance(30_000);
      await waitFor(() => ticks.length === 1);
      await rt.close();
    }
    // Down for ten slots.
    clock.set(clock.now() + 10 * 60_000 + 5_000);
    const rt = await open(db, { clock, tasks });
    try {
      await clock.advance(0);
      await waitFor(() => ticks.length === 2);
      await rt.flush();
      const slots = (await rt.list({ scheduleId: 'minutely' })).tasks;
      assert.equal(slots.length, 2, 'one catch-up run, not ten');
      await clock.advance(60_000);
      await waitFor(() => ticks.length === 3);
      assert.equal((await rt.schedules())[0]?.id, 'minutely');
    } finally {
      await rt.close();
    }
  });

  it('a slot\'s task written ahead starts on its slot, and a close just before its slot waits for it', async () => {
    const db = tempDb();
    const slot = Date.UTC(2026, 0, 1, 0, 1, 0);
    const clock = new ManualClock(slot - 30_000);
    const runs: number[] = [];
    const tasks: CreateRuntimeOptions['tasks'] = { tick: { run: () => void runs.push(clock.now()) } };
    const rt = await open(db, { clock, tasks });
    await rt.schedule('tick', { every: '1m', id: 'minutely' });
    await clock.advanceTo(slot - PREPARE_LEAD_MS);
    await waitFor(async () => (await rt.list({ scheduleId: 'minutely', state: 'running' })).tasks.length === 1);
    assert.deepEqual(runs, [], 'held until its slot');
    await clock.advanceTo(slot);
    await waitFor(() => runs.length === 1);
    assert.deepEqual(runs, [slot]);
    // The next slot's task is written ahead, then the runtime is closed before that slot: it is a running task.
    await clock.advanceTo(slot + 60_000 - PREPARE_LEAD_MS);
    await waitFor(async () => (await rt.list({ scheduleId: 'minutely', state: 'running' })).tasks.length === 1);
    const closed = rt.close();
    await clock.advanceTo(slot + 60_000);
    await closed;
    assert.deepEqual(runs, [slot, slot + 60_000]);
    const again = await open(db, { clock, tasks });
    try {
      const stored = (await again.list({ scheduleId: 'minutely' })).tasks;
      assert.deepEqual(stored.map((t) => [t.timings.runAt, t.state]), [[slot + 60_000, 'succeeded'], [slot, 'succeeded']]);
    } finally {
      await again.close();
    }
  });

  it('a cancelled task stays cancelled after a restart and is never run', async () => {
    const db = tempDb();
    let ran = 0;
    const tasks: CreateRuntimeOptions['tasks'] = { t: { run: () => ++ran } };
    const clock = new ManualClock();
    let id: string;
    {
      const rt = await open(db, { clock, tasks });
      id = await rt.enqueue('t', {}, { delay: '1m' });
      assert.equal(await rt.cancel(id), true);
      await rt.close();
    }
    const rt = await open(db, { clock, tasks });
    try {
      await clock.advance(120_000);
      await rt.flush();
      assert.equal((await rt.get(id))?.state, 'cancelled');
      assert.equal(ran, 0);
    } finally {
      await rt.close();
    }
  });

  it('a corrupt database file is refused with a coded error and left as it was', async () => {
    const db = tempDb();
    fs.writeFileSync(db, Buffer.from('this is not a database, just some bytes that look nothing like SQLite'.repeat(100)));
    const before = fs.readFileSync(db);
    try {
      await open(db);
      assert.fail('expected an error');
    } catch (error) {
      assert.ok(isTroupeError(error));
      assert.equal(error.code, ErrorCodes.STORE_CORRUPT);
    }
    assert.deepEqual(fs.readFileSync(db), before);
  });
});
