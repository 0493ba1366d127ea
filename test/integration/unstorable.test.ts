/**
 * Values a store cannot keep never reach a write batch: a result the store would refuse fails its own task
 * (permanently, with the reason) and the runtime goes on; such an input is refused at enqueue with nothing
 * stored; text PostgreSQL refuses in output lines and error messages is stored with U+FFFD in its place.
 * Before, one such value failed the tracker's whole settle batch, which it retried forever: every later task of
 * the runtime hung.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ErrorCodes } from '../../src/errors.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { PG_SKIP, asyncCommitUrl, trackSchemas, withAdmin } from '../helpers/pg.ts';
import { tempDb } from '../helpers/temp-db.ts';

const schemas = trackSchemas('unst');
after(() => schemas.dropAll());

const TASKS = {
  big: { run: () => 10n },
  cycle: {
    run: () => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    },
  },
  nul: { run: () => ({ text: 'a\u0000b' }) },
  lossy: { run: () => ({ m: new Map([['a', 1]]), nan: Number.NaN, list: [1, Infinity], kept: 'yes' }) },
  nan: { run: () => Number.NaN },
  ok: { run: (input: unknown) => ({ echo: input ?? 'fine' }) },
  throwsNul: {
    run: () => {
      throw new Error('bad\u0000message');
    },
  },
  logs: {
    run: (_input: unknown, ctx: { log(line: string): void }) => {
      ctx.log('lone \ud800 surrogate');
      ctx.log('nul \u0000 here');
      return 'logged';
    },
  },
  prints: { command: process.execPath, args: ['-e', 'process.stdout.write("x\\u0000y\\n")'] },
} as const;

async function withStore(store: CreateRuntimeOptions['store'], fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await createRuntime({ store, maintenance: false, tasks: TASKS as unknown as CreateRuntimeOptions['tasks'] });
  try {
    await fn(rt);
  } finally {
    await rt.close({ timeout: 2000 });
  }
}

async function assertUnstorableResult(rt: Runtime, name: string, pattern: RegExp): Promise<void> {
  await assert.rejects(rt.run(name, undefined, { retry: { attempts: 3, backoff: 'fixed', delay: 0 } }), (error: { code?: string; message: string }) => {
    assert.equal(error.code, ErrorCodes.TASK_FAILED);
    assert.match(error.message, pattern);
    return true;
  });
  const [failed] = (await rt.list({ name, state: 'failed' })).tasks;
  assert.ok(failed, `the ${name} task is stored as failed`);
  assert.equal(failed.attempts, 1, 'a result that cannot be stored is not retried');
  assert.deepEqual(await rt.run('ok', 'after'), { echo: 'after' }, 'the next task runs and settles');
}

describe('unstorable values on SQLite', () => {
  it('a BigInt or cyclic result fails its task, and the runtime goes on', async () => {
    await withStore(`sqlite:${tempDb('unstorable')}`, async (rt) => {
      await assertUnstorableResult(rt, 'big', /result of `big` cannot be stored: .*BigInt/);
      await assertUnstorableResult(rt, 'cycle', /result of `cycle` cannot be stored: .*JSON/);
    });
  });

  it('a result JSON would change (a Map, NaN) is awaited as it is stored, the same on every node and every read', async () => {
    await withStore(`sqlite:${tempDb('unstorable-lossy')}`, async (rt) => {
      const stored = { m: {}, nan: null, list: [1, null], kept: 'yes' };
      const h = rt.start('lossy');
      assert.deepEqual(await h.result, stored);
      assert.deepEqual((await rt.get(h.id))?.result, stored);
      const nan = rt.start('nan');
      assert.equal(await nan.result, null, 'NaN itself is stored, and awaited, as null');
      assert.equal((await rt.get(nan.id))?.result, null);
    });
  });

  it('an input JSON cannot carry is refused at enqueue, and nothing is stored', async () => {
    await withStore(`sqlite:${tempDb('unstorable-input')}`, async (rt) => {
      await assert.rejects(rt.enqueue('ok', { n: 1n }), { code: ErrorCodes.INVALID_INPUT, message: /Input of `ok` cannot be stored: .*BigInt/ });
      // What JSON would change: a Map or Set (back as {}), NaN or Infinity (back as null).
      await assert.rejects(rt.enqueue('ok', { m: new Map([[1, 2]]) }), { code: ErrorCodes.INVALID_INPUT, message: /a Map cannot be stored as JSON/ });
      await assert.rejects(rt.enqueue('ok', [new Set([1])]), { code: ErrorCodes.INVALID_INPUT, message: /a Set cannot be stored/ });
      await assert.rejects(rt.enqueue('ok', { n: NaN }), { code: ErrorCodes.INVALID_INPUT, message: /NaN cannot be stored as JSON/ });
      await assert.rejects(rt.enqueue('ok', -Infinity), { code: ErrorCodes.INVALID_INPUT, message: /-Infinity/ });
      assert.equal((await rt.list()).tasks.length, 0);
      // A Date has its own JSON form (an ISO string), as JSON.stringify writes it.
      const id = await rt.enqueue('ok', { d: new Date(0) });
      assert.deepEqual((await rt.get(id))?.input, { d: '1970-01-01T00:00:00.000Z' });
    });
  });

  it('start times beyond what a store keeps, and a delay with a runAt, are refused at the door', async () => {
    await withStore(`sqlite:${tempDb('unstorable-times')}`, async (rt) => {
      await assert.rejects(rt.enqueue('ok', 1, { delay: 1e300 }), { code: ErrorCodes.INVALID_OPTION, message: /options\.delay.*at most 100 years/ });
      await assert.rejects(rt.enqueue('ok', 1, { runAt: 1e20 }), { code: ErrorCodes.INVALID_OPTION, message: /options\.runAt.*at most 100 years ahead/ });
      await assert.rejects(rt.enqueue('ok', 1, { delay: 5000, runAt: Date.now() + 100 }), { code: ErrorCodes.INVALID_OPTION, message: /options\.runAt.*absent when `delay`/ });
      await assert.rejects(rt.schedule('ok', { every: 1e300 }), { code: ErrorCodes.INVALID_SCHEDULE, message: /every.*at most 100 years/ });
      assert.equal((await rt.list()).tasks.length, 0);
      assert.deepEqual(await rt.schedules(), []);
    });
  });
});

describe('the memory store keeps values as they are', () => {
  it('a BigInt result still succeeds', async () => {
    await withStore('memory', async (rt) => {
      assert.equal(await rt.run('big'), 10n);
      assert.deepEqual(await rt.run('nul'), { text: 'a\u0000b' });
      const lossy = (await rt.run('lossy')) as { m: unknown; nan: unknown };
      assert.ok(lossy.m instanceof Map && Number.isNaN(lossy.nan), 'the memory store keeps the value itself');
    });
  });
});

describe('unstorable values on PostgreSQL', { skip: PG_SKIP }, () => {
  const pgStore = () => createPostgresStore(asyncCommitUrl(), { schema: schemas.next() });

  it('a result holding NUL fails its task, and the runtime goes on', async () => {
    await withStore(pgStore(), async (rt) => {
      await assertUnstorableResult(rt, 'nul', /NUL character .* PostgreSQL cannot store/);
      await assertUnstorableResult(rt, 'big', /BigInt/);
    });
  });

  it('an input holding NUL or an unpaired surrogate is refused at enqueue, and nothing is stored', async () => {
    await withStore(pgStore(), async (rt) => {
      await assert.rejects(rt.enqueue('ok', { s: 'a\u0000b' }), { code: ErrorCodes.INVALID_INPUT, message: /Input of `ok` cannot be stored: .*NUL/ });
      await assert.rejects(rt.enqueue('ok', '\udc00'), { code: ErrorCodes.INVALID_INPUT });
      await assert.rejects(rt.enqueue('ok', { ['k\u0000']: 1 }), { code: ErrorCodes.INVALID_INPUT });
      assert.equal((await rt.list()).tasks.length, 0);
      await assert.rejects(rt.schedule('ok', { every: '1h' }, { s: 'a\u0000b' }), { code: ErrorCodes.INVALID_INPUT }, 'a schedule is refused at creation, not at every slot');
      assert.deepEqual(await rt.schedules(), []);
      assert.deepEqual(await rt.run('ok', { s: 'a\\u0000b 😀' }), { echo: { s: 'a\\u0000b 😀' } }, 'a backslash followed by u0000 is plain text');
    });
  });

  it('a key holding NUL or an unpaired surrogate is refused at the door, and nothing is stored', async () => {
    await withStore(pgStore(), async (rt) => {
      await assert.rejects(rt.enqueue('ok', 'a', { key: 'bad\u0000key' }), { code: ErrorCodes.INVALID_OPTION, message: /options\.key/ });
      await assert.rejects(rt.run('ok', 'b', { dedup: { key: 'x\ud800', mode: 'throttle', window: '1m' } }), { code: ErrorCodes.INVALID_OPTION, message: /dedup\.key/ });
      assert.equal((await rt.list()).tasks.length, 0);
    });
  });

  it('a task the store refuses at enqueue fails only its own caller', async () => {
    const schema = schemas.next();
    const store = createPostgresStore(asyncCommitUrl(), { schema });
    await withStore(store, async (rt) => {
      // The database refuses one key (a constraint a DBA added, say): the batch it rides in fails as a whole.
      await withAdmin((admin) => admin.query(`ALTER TABLE "${schema}".tasks ADD CONSTRAINT no_refused_keys CHECK (key IS NULL OR key NOT LIKE 'refused%')`));
      // Runs of one microtask share one enqueue, and so do enqueues arriving while one is written.
      const runs = Promise.allSettled([rt.run('ok', 'a'), rt.run('ok', 'b', { key: 'refused-1' }), rt.run('ok', 'c')]);
      const enqueues = Promise.allSettled([rt.enqueue('ok', 'd', { key: 'refused-2' }), rt.enqueue('ok', 'e')]);
      const [a, b, c] = await runs;
      assert.deepEqual([a.status, c.status], ['fulfilled', 'fulfilled']);
      assert.equal(b.status, 'rejected');
      assert.equal((b as PromiseRejectedResult).reason.code, ErrorCodes.STORE);
      const [d, e] = await enqueues;
      assert.equal(d.status, 'rejected');
      assert.equal(e.status, 'fulfilled');
      const inputs = (await rt.list()).tasks.map((t) => t.input).sort();
      assert.deepEqual(inputs, ['a', 'c', 'e']);
    });
  });

  it('NUL and unpaired surrogates in errors, log lines, and command output are stored as U+FFFD', async () => {
    await withStore(pgStore(), async (rt) => {
      await assert.rejects(rt.run('throwsNul'), { code: ErrorCodes.TASK_FAILED });
      const [failed] = (await rt.list({ name: 'throwsNul' })).tasks;
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.error?.message, 'bad\ufffdmessage');

      assert.equal(await rt.run('logs'), 'logged');
      const [logged] = (await rt.list({ name: 'logs' })).tasks;
      assert.deepEqual((await rt.output(logged!.id)).map((l) => l.text), ['lone \ufffd surrogate', 'nul \ufffd here']);

      const handle = rt.start('prints');
      await handle.result;
      assert.deepEqual((await rt.output(handle.id)).map((l) => l.text), ['x\ufffdy']);

      assert.deepEqual(await rt.run('ok', 'after'), { echo: 'after' });
    });
  });
});
