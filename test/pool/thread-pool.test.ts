/**
 * The handler thread pool on real worker threads: results, live progress/log, error fidelity across the thread
 * boundary, crashes, resource limits, soft and hard stops (also inside a batch), batching, load failures, close.
 * Waits are on events (callbacks, shared memory), never on time; timeouts are safety nets only.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { ErrorCodes, TroupeError, isTroupeError } from '../../src/errors.ts';
import { createThreadPool, type HandlerJob, type ThreadPool } from '../../src/pool/thread-pool.ts';
import { TaskActor } from '../../actors/task/task-actor.ts';
import { ManualClock } from '../../src/clock.ts';

const fixture = (name: string) => new URL(`../fixtures/handlers/${name}.ts`, import.meta.url).href;

interface JobControl {
  job: HandlerJob;
  soft: AbortController;
  hard: AbortController;
  logs: string[];
  progress: { fraction: number; done?: number; total?: number }[];
  /** Resolves with the first log line. */
  firstLog: Promise<string>;
}

let seq = 0;
function makeJob(name: string, input: unknown = {}, handler = fixture(name)): JobControl {
  const soft = new AbortController();
  const hard = new AbortController();
  const logs: string[] = [];
  const progress: JobControl['progress'] = [];
  let onFirst!: (line: string) => void;
  const firstLog = new Promise<string>((resolve) => (onFirst = resolve));
  const job: HandlerJob = {
    id: `job-${++seq}`, name, handler, input, attempt: 1, signal: soft.signal, hardSignal: hard.signal,
    onLog: (line) => {
      logs.push(line);
      if (logs.length === 1) onFirst(line);
    },
    onProgress: (p) => progress.push(p),
  };
  return { job, soft, hard, logs, progress, firstLog };
}

/** Resolves with the rejection of `promise`; fails the test if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<TroupeError> {
  try {
    const value = await promise;
    assert.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as TroupeError;
  }
}

/** Polls on setImmediate until `check` holds; the timeout is only a safety net. */
async function until(check: () => boolean, label: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function newPool(extra: Partial<Parameters<typeof createThreadPool>[0]> = {}): ThreadPool {
  return createThreadPool({ minThreads: 1, maxThreads: 2, idleTimeoutMs: 30_000, maxQueue: Infinity, ...extra });
}

describe('thread pool', () => {
  let pool: ThreadPool;
  const poolErrors: unknown[] = [];
  before(() => {
    pool = newPool({ onError: (error) => poolErrors.push(error) });
  });
  after(() => pool.close({ force: true }));

  test('a handler result comes back, and ctx carries id, name and attempt', async () => {
    assert.equal(await pool.run(makeJob('add', { a: 2, b: 3 }).job), 5);
    const { job } = makeJob('echo-ctx', { hello: 'world' });
    job.attempt = 3;
    assert.deepEqual(await pool.run(job), { input: { hello: 'world' }, id: job.id, name: 'echo-ctx', attempt: 3, aborted: false });
  });

  test('results of every shape come back as returned, bare or in the replies array', async () => {
    // A lone job's plain result comes back bare, an array result in the replies array (see WireReply): both ways
    // must give the handler's value, including arrays shaped like replies and an undefined result.
    const values: unknown[] = [0, 7, 'text', null, undefined, { a: [1, 2] }, [], [0, 1], [0, undefined], [[0, 'x']], [1, { code: 'E' }]];
    const echo = (value: unknown): HandlerJob => ({ ...makeJob('echo').job, input: value });
    for (const value of values) assert.deepEqual(await pool.run(echo(value)), value, `result ${JSON.stringify(value)}`);
    const batch = await Promise.all(values.map((value) => pool.run(echo(value))));
    assert.deepEqual(batch, values);
  });

  test('submit() hands the outcome to job.done, never synchronously: a result, an error, a refusal', async () => {
    const outcome = (c: JobControl): { sync: boolean; settled: Promise<[boolean, unknown]> } => {
      let returned = false;
      let sync = false;
      const settled = new Promise<[boolean, unknown]>((resolve) => {
        pool.submit({ ...c.job, done: (ok, value) => { sync = !returned; resolve([ok, value]); } });
      });
      returned = true;
      return { get sync() { return sync; }, settled };
    };
    const good = outcome(makeJob('add', { a: 2, b: 3 }));
    assert.deepEqual(await good.settled, [true, 5]);
    const bad = outcome(makeJob('throw'));
    const [ok, error] = await bad.settled;
    assert.equal(ok, false);
    assert.ok(isTroupeError(error));
    const stopped = makeJob('add', { a: 1, b: 1 });
    stopped.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'before submit'));
    const refused = outcome(stopped);
    const [refusedOk, reason] = await refused.settled;
    assert.equal(refusedOk, false);
    assert.equal((reason as TroupeError).code, ErrorCodes.CANCELLED);
    assert.equal(refused.sync, false, 'a refusal comes after submit returned');
  });

  test('a default export object with run() is accepted', async () => {
    assert.equal(await pool.run(makeJob('object-run', 21).job), 42);
  });

  test('progress and log lines arrive while the handler still runs, and all before the result', async () => {
    const gate = new SharedArrayBuffer(4);
    const c = makeJob('progress', { gate });
    let settled = false;
    const result = pool.run(c.job).finally(() => (settled = true));
    assert.equal(await c.firstLog, 'quarter');
    await until(() => c.progress.length === 1, 'first progress');
    assert.deepEqual(c.progress[0], { fraction: 0.25, done: 1, total: 4 });
    assert.equal(settled, false, 'the handler is still waiting on the gate');
    const cell = new Int32Array(gate);
    Atomics.store(cell, 0, 1);
    Atomics.notify(cell, 0);
    assert.equal(await result, 'done');
    assert.deepEqual(c.progress.map((p) => p.fraction), [0.25, 1], 'the last report is delivered before the result');
  });

  test('every log line is delivered before the result, even when the result arrives first', async () => {
    for (let round = 0; round < 3; round++) {
      const c = makeJob('chatty', { lines: 3000 });
      const result = await pool.run(c.job);
      assert.equal(result, 3000);
      assert.equal(c.logs.length, 3000, 'all lines arrived before the promise resolved');
      assert.equal(c.logs.at(-1), 'line 2999');
    }
  });

  test('a throwing progress/log callback is reported to onError and does not fail the job', async () => {
    const c = makeJob('chatty', { lines: 2 });
    c.job.onLog = () => {
      throw new Error('callback bug');
    };
    const before = poolErrors.length;
    assert.equal(await pool.run(c.job), 2);
    assert.equal(poolErrors.length - before, 2);
  });

  test('a thrown TroupeError keeps its code, name, details and stack', async () => {
    const error = await rejectionOf(pool.run(makeJob('throw', { field: 'email' }).job));
    assert.ok(isTroupeError(error));
    assert.equal(error.code, ErrorCodes.INVALID_INPUT);
    assert.equal(error.name, 'TroupeError');
    assert.deepEqual(error.details, { field: 'email' });
    assert.match(error.stack ?? '', /throw\.ts/);
  });

  test('the PermanentError hint survives the thread boundary', async () => {
    const error = await rejectionOf(pool.run(makeJob('permanent').job));
    assert.equal(error.code, ErrorCodes.TASK_FAILED);
    assert.equal(error.name, 'PermanentError');
    assert.equal((error as TroupeError & { permanent?: boolean }).permanent, true);
  });

  test('process.exit in a handler rejects with WORKER_CRASHED and the next job runs', async () => {
    const error = await rejectionOf(pool.run(makeJob('exit', { code: 3 }).job));
    assert.equal(error.code, ErrorCodes.WORKER_CRASHED);
    assert.equal(error.details?.requeue, false);
    assert.equal(await pool.run(makeJob('add', { a: 1, b: 1 }).job), 2);
  });

  test('an endless loop is ended by hardSignal: the thread goes, the reason comes back, the pool goes on', async () => {
    const c = makeJob('forever-loop');
    const result = pool.run(c.job);
    assert.equal(await c.firstLog, 'looping');
    const before = pool.threadIds();
    c.hard.abort(new TroupeError(ErrorCodes.TIMEOUT, 'hard stop'));
    const error = await rejectionOf(result);
    assert.equal(error.code, ErrorCodes.TIMEOUT);
    await until(() => pool.threadIds().length < before.length || pool.threadIds().some((id) => !before.includes(id)), 'the looping thread to be replaced');
    assert.equal(await pool.run(makeJob('add', { a: 4, b: 4 }).job), 8);
  });

  test('soft cancel aborts ctx.signal with the reason, and the handler\'s rejection is returned', async () => {
    const c = makeJob('until-aborted');
    const result = pool.run(c.job);
    assert.equal(await c.firstLog, 'waiting');
    c.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'cancelled by the test'));
    const error = await rejectionOf(result);
    assert.equal(error.code, ErrorCodes.CANCELLED);
    assert.ok(isTroupeError(error));
  });

  test('a job whose signal is already aborted is refused with the reason', async () => {
    const c = makeJob('add', { a: 1, b: 2 });
    c.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'too late'));
    assert.equal((await rejectionOf(pool.run(c.job))).code, ErrorCodes.CANCELLED);
  });

  test('200 jobs at once go in batches; each result reaches its own promise; one is cancelled inside a batch', async () => {
    const runsBefore = pool.stats.runs;
    // One module for all 200, fast on average: job 100 waits for its signal inside a batch.
    const controls = Array.from({ length: 200 }, (_, i) => makeJob('add-or-wait', i === 100 ? { wait: true } : { a: i, b: 1000 }));
    const queuedCancel = makeJob('add', { a: 0, b: 0 });
    const results = controls.map((c) => pool.run(c.job).then((value) => ({ value }), (error: TroupeError) => ({ error })));
    const cancelledWhileQueued = rejectionOf(pool.run(queuedCancel.job));
    queuedCancel.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'never started'));
    await controls[100]!.firstLog;
    controls[100]!.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'cancelled inside a batch'));
    const settled = await Promise.all(results);
    settled.forEach((outcome, i) => {
      if (i === 100) assert.equal((outcome as { error: TroupeError }).error.code, ErrorCodes.CANCELLED);
      else assert.deepEqual(outcome, { value: i + 1000 });
    });
    assert.equal((await cancelledWhileQueued).code, ErrorCodes.CANCELLED);
    const runs = pool.stats.runs - runsBefore;
    assert.ok(runs < 100, `200 jobs took ${runs} Piscina runs: they were not batched`);
  });

  test('jobs sharing one signal put one listener on it, and its abort reaches running and waiting jobs', async () => {
    const soft = new AbortController();
    const hard = new AbortController();
    const shared = Array.from({ length: 30 }, () => {
      const c = makeJob('until-aborted');
      c.job.signal = soft.signal;
      c.job.hardSignal = hard.signal;
      return c;
    });
    const results = shared.map((c) => rejectionOf(pool.run(c.job)));
    await Promise.all([shared[0]!.firstLog, shared[1]!.firstLog]);
    await until(() => getEventListeners(soft.signal, 'abort').length > 0 && getEventListeners(hard.signal, 'abort').length > 0, 'a sweep to watch the signals');
    assert.equal(getEventListeners(soft.signal, 'abort').length, 1);
    assert.equal(getEventListeners(hard.signal, 'abort').length, 1);
    soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'shutdown'));
    for (const error of await Promise.all(results)) assert.equal(error.code, ErrorCodes.CANCELLED);
    assert.equal(getEventListeners(soft.signal, 'abort').length, 0);
    assert.equal(getEventListeners(hard.signal, 'abort').length, 0);
  });

  test('jobs stopped through `stops` (a task run, no AbortSignal): refused, dropped while waiting, soft then hard', async () => {
    const clock = new ManualClock();
    const now = clock.now();
    const actorFor = (c: JobControl): TaskActor => {
      const run = new TaskActor({ id: c.job.id, name: c.job.name, state: 'running', input: c.job.input, priority: 0, weight: 1, attempts: 1, maxAttempts: 1, createdAt: now, runAt: now, updatedAt: now }, clock, 1000);
      c.job.signal = undefined;
      c.job.hardSignal = undefined;
      c.job.stops = run;
      return run;
    };
    // Stopped before submit: refused with the reason.
    const early = makeJob('add', { a: 1, b: 2 });
    actorFor(early).end('cancel');
    assert.equal((await rejectionOf(pool.run(early.job))).code, ErrorCodes.CANCELLED);
    // Waiting behind busy runs: dropped at once with the reason.
    const blockers = [makeJob('until-aborted'), makeJob('until-aborted')];
    const blockerRuns = blockers.map(actorFor);
    const blocked = blockers.map((b) => rejectionOf(pool.run(b.job)));
    await Promise.all(blockers.map((b) => b.firstLog));
    const waiting = makeJob('add', { a: 0, b: 0 });
    const waitingRun = actorFor(waiting);
    const dropped = rejectionOf(pool.run(waiting.job));
    waitingRun.end('timeout');
    assert.equal((await dropped).code, ErrorCodes.TIMEOUT);
    // Running: the soft stop reaches ctx.signal; the handler rejects with the reason.
    blockerRuns[0]!.end('cancel');
    assert.equal((await blocked[0]!).code, ErrorCodes.CANCELLED);
    assert.equal(blockerRuns[0]!.signal.aborted, true, 'a signal read after the stop is already aborted');
    // The hard stop ends the thread of a handler that ignores the soft one.
    const loop = makeJob('forever-loop');
    const loopRun = actorFor(loop);
    const looping = rejectionOf(pool.run(loop.job));
    assert.equal(await loop.firstLog, 'looping');
    loopRun.end('timeout');
    await clock.advance(1000);
    assert.equal((await looping).code, ErrorCodes.TIMEOUT);
    blockerRuns[1]!.end('shutdown');
    assert.equal((await blocked[1]!).code, ErrorCodes.CLOSED);
    assert.equal(await pool.run(makeJob('add', { a: 2, b: 2 }).job), 4);
  });

  test('a hard stop inside a batch ends that job; its unfinished batch mates come back with requeue', async () => {
    const blockers = [makeJob('until-aborted'), makeJob('until-aborted')];
    const blocked = blockers.map((b) => pool.run(b.job).catch(() => undefined));
    await Promise.all(blockers.map((b) => b.firstLog));
    // One module for the loop and its mates: whether cached or not, the loop is called first and never yields.
    const loop = makeJob('loop-or-add', { loop: true });
    const mates = Array.from({ length: 5 }, (_, i) => makeJob('loop-or-add', { a: i, b: 0 }));
    const loopResult = pool.run(loop.job);
    const mateResults = mates.map((m) => rejectionOf(pool.run(m.job)));
    const cancelledMate = makeJob('loop-or-add', { a: 0, b: 0 });
    const cancelledMateResult = rejectionOf(pool.run(cancelledMate.job));
    assert.equal(pool.stats.queued, 7);
    blockers[0]!.soft.abort('free one thread');
    assert.equal(await loop.firstLog, 'looping');
    cancelledMate.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'sent, never called'));
    assert.equal((await cancelledMateResult).code, ErrorCodes.CANCELLED, 'a job behind the loop in its batch is dropped at once');
    loop.hard.abort(new TroupeError(ErrorCodes.TIMEOUT, 'hard stop in a batch'));
    assert.equal((await rejectionOf(loopResult)).code, ErrorCodes.TIMEOUT);
    for (const error of await Promise.all(mateResults)) {
      assert.equal(error.code, ErrorCodes.WORKER_CRASHED);
      assert.equal(error.details?.requeue, true);
    }
    blockers[1]!.soft.abort('done');
    await Promise.all(blocked);
    assert.equal(await pool.run(makeJob('add', { a: 2, b: 2 }).job), 4);
  });

  test('ready results do not wait for a slow batch mate, async or sync', async () => {
    await using solo = newPool({ minThreads: 1, maxThreads: 1 });
    assert.equal(await solo.run(makeJob('add', { a: 0, b: 0 }).job), 0, 'warm: add is loaded and known to be fast');
    const stragglers = [
      { name: 'until-aborted', stop: (c: JobControl) => c.soft.abort(new TroupeError(ErrorCodes.CANCELLED, 'stop')), code: ErrorCodes.CANCELLED },
      { name: 'forever-loop', stop: (c: JobControl) => c.hard.abort(new TroupeError(ErrorCodes.TIMEOUT, 'stop')), code: ErrorCodes.TIMEOUT },
    ];
    for (const { name, stop, code } of stragglers) {
      const blocker = makeJob('until-aborted');
      const blocked = solo.run(blocker.job).catch(() => undefined);
      await blocker.firstLog;
      const fast = [1, 2, 3].map((a) => solo.run(makeJob('add', { a, b: 10 }).job));
      const straggler = makeJob(name);
      const stragglerResult = rejectionOf(solo.run(straggler.job));
      blocker.soft.abort('free the thread');
      await blocked;
      assert.deepEqual(await Promise.all(fast), [11, 12, 13], `results came back while ${name} still ran`);
      await straggler.firstLog;
      stop(straggler);
      assert.equal((await stragglerResult).code, code);
    }
  });

  test('a crash inside a batch blames the job that ran; the ones that had not started come back with requeue', async () => {
    const blockers = [makeJob('until-aborted'), makeJob('until-aborted')];
    const blocked = blockers.map((b) => pool.run(b.job).catch(() => undefined));
    await Promise.all(blockers.map((b) => b.firstLog));
    const crash = pool.run(makeJob('loop-or-add', { exit: 9 }).job);
    const mates = Array.from({ length: 3 }, (_, i) => rejectionOf(pool.run(makeJob('loop-or-add', { a: i, b: 0 }).job)));
    blockers[0]!.soft.abort('free one thread');
    const error = await rejectionOf(crash);
    assert.equal(error.code, ErrorCodes.WORKER_CRASHED);
    assert.equal(error.details?.requeue, false);
    for (const mate of await Promise.all(mates)) {
      assert.equal(mate.code, ErrorCodes.WORKER_CRASHED);
      assert.equal(mate.details?.requeue, true);
    }
    blockers[1]!.soft.abort('done');
    await Promise.all(blocked);
  });

  test('input that cannot be cloned is INVALID_INPUT; its batch mates still run', async () => {
    assert.equal((await rejectionOf(pool.run(makeJob('add', { a: () => 1 }).job))).code, ErrorCodes.INVALID_INPUT);
    const blockers = [makeJob('until-aborted'), makeJob('until-aborted')];
    const blocked = blockers.map((b) => pool.run(b.job).catch(() => undefined));
    await Promise.all(blockers.map((b) => b.firstLog));
    const good = [pool.run(makeJob('add', { a: 1, b: 1 }).job), pool.run(makeJob('add', { a: 2, b: 2 }).job)];
    const bad = rejectionOf(pool.run(makeJob('add', { a: Symbol('x') }).job));
    blockers[0]!.soft.abort('free one thread');
    assert.deepEqual(await Promise.all(good), [2, 4]);
    assert.equal((await bad).code, ErrorCodes.INVALID_INPUT);
    blockers[1]!.soft.abort('done');
    await Promise.all(blocked);
  });

  test('a result that cannot leave the thread fails that job only', async () => {
    assert.equal((await rejectionOf(pool.run(makeJob('bad-result', { nested: false }).job))).code, ErrorCodes.TASK_FAILED);
    const single = await rejectionOf(pool.run(makeJob('bad-result', { nested: true }).job));
    assert.equal(single.code, ErrorCodes.WORKER_CRASHED);
    assert.equal(single.details?.requeue, false);
    const blockers = [makeJob('until-aborted'), makeJob('until-aborted')];
    const blocked = blockers.map((b) => pool.run(b.job).catch(() => undefined));
    await Promise.all(blockers.map((b) => b.firstLog));
    const good = [pool.run(makeJob('add', { a: 1, b: 1 }).job), pool.run(makeJob('add', { a: 2, b: 2 }).job)];
    const bad = rejectionOf(pool.run(makeJob('bad-result', { nested: true }).job));
    blockers[0]!.soft.abort('free one thread');
    assert.deepEqual(await Promise.all(good), [2, 4], 'batch mates succeed (sent ahead, or sent again one by one)');
    // Sent ahead of its batch's reply, the result fails alone (TASK_FAILED); in the reply, it takes the thread down.
    assert.ok([ErrorCodes.TASK_FAILED, ErrorCodes.WORKER_CRASHED].includes((await bad).code as never));
    blockers[1]!.soft.abort('done');
    await Promise.all(blocked);
  });

  test('a handler module that cannot be loaded rejects with HANDLER_LOAD', async () => {
    for (const name of ['does-not-exist', 'no-default', 'load-throws']) {
      const error = await rejectionOf(pool.run(makeJob(name).job));
      assert.equal(error.code, ErrorCodes.HANDLER_LOAD, name);
    }
    assert.equal(await pool.run(makeJob('add', { a: 1, b: 2 }).job), 3);
  });

  test('a bad ctx.progress() value fails the job with INVALID_OPTION', async () => {
    const { job } = makeJob('add', {}, `data:text/javascript,export default (i, ctx) => ctx.progress('half')`);
    assert.equal((await rejectionOf(pool.run(job))).code, ErrorCodes.INVALID_OPTION);
  });
});

describe('thread pool limits and lifecycle', () => {
  test('a handler over the heap limit rejects with RESOURCE_LIMIT and the pool recovers', async () => {
    await using pool = newPool({ maxThreads: 1, resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 } });
    const error = await rejectionOf(pool.run(makeJob('oom').job));
    assert.equal(error.code, ErrorCodes.RESOURCE_LIMIT);
    assert.equal(await pool.run(makeJob('add', { a: 20, b: 22 }).job), 42);
  });

  test('a full queue refuses with POOL_EXHAUSTED', async () => {
    await using pool = newPool({ maxThreads: 1, maxQueue: 1 });
    const blocker = makeJob('until-aborted');
    const running = pool.run(blocker.job).catch(() => undefined);
    const waiting = pool.run(makeJob('add', { a: 1, b: 1 }).job);
    assert.equal((await rejectionOf(pool.run(makeJob('add', { a: 1, b: 1 }).job))).code, ErrorCodes.POOL_EXHAUSTED);
    await blocker.firstLog;
    blocker.soft.abort('done');
    await running;
    assert.equal(await waiting, 2);
  });

  test('close drains, is idempotent, and refuses new jobs with CLOSED', async () => {
    const pool = newPool();
    const pending = pool.run(makeJob('add', { a: 1, b: 1 }).job);
    const first = pool.close();
    assert.equal(pool.close(), first);
    assert.equal(pool.status, 'stopping');
    assert.equal(await pending, 2);
    await first;
    assert.equal(pool.status, 'stopped');
    assert.equal((await rejectionOf(pool.run(makeJob('add', { a: 1, b: 1 }).job))).code, ErrorCodes.CLOSED);
    assert.equal(pool.threadIds().length, 0);
  });

  test('close({ force }) rejects running and waiting jobs with CLOSED', async () => {
    const pool = newPool({ maxThreads: 1 });
    const running = makeJob('until-aborted');
    const runningResult = rejectionOf(pool.run(running.job));
    const waitingResult = rejectionOf(pool.run(makeJob('add', { a: 1, b: 1 }).job));
    await running.firstLog;
    await pool.close({ force: true });
    assert.equal((await runningResult).code, ErrorCodes.CLOSED);
    assert.equal((await waitingResult).code, ErrorCodes.CLOSED);
    assert.equal(pool.status, 'stopped');
  });
});
