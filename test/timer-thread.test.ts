// The timer thread behind precise timers: a real worker thread, real time. Tests wait for firings and thread state
// (events), never for time; the due times are a few milliseconds ahead so that the timers really wait.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { preciseTimeoutAt, systemClock, THREAD_BACKSTOP_MS } from '../src/clock.ts';
import { sharedTimerThread, TIMER_THREAD_SOURCE, TimerThread, WARM_STEP_MS } from '../src/timer-thread.ts';
import { waitFor } from './helpers/wait-for.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Arms a precise timer on `thread`; resolves with `Date.now()` as seen inside the callback. */
function firedAt(at: number, thread: TimerThread | undefined): Promise<number> {
  return new Promise((resolve) => preciseTimeoutAt(() => resolve(Date.now()), at, thread));
}

async function onlineThread(options?: ConstructorParameters<typeof TimerThread>[0]): Promise<TimerThread> {
  const thread = new TimerThread(options);
  assert.equal(await thread.started(), 'online');
  return thread;
}

/** Runs `fn` with a started timer thread, and terminates the thread whatever happens. */
async function withThread(fn: (thread: Awaited<ReturnType<typeof onlineThread>>) => Promise<void>): Promise<void> {
  const thread = await onlineThread();
  try {
    await fn(thread);
  } finally {
    await thread.terminate();
  }
}

describe('TimerThread', () => {
  it('wakes the main thread for armed timers, never before Date.now() reads their due time', () =>
    withThread(async (thread) => {
      for (const ahead of [0, 1, 2, 5, 20]) {
        const at = Date.now() + ahead;
        const fired = firedAt(at, thread);
        // Still more than 1 ms ahead once armed (a busy machine can take this thread off its core in between).
        if (ahead > 1 && at - Date.now() > 1) assert.equal(thread.pending, 1, 'armed on the thread, not polled on the main thread');
        const seen = await fired;
        assert.ok(seen >= at, `fired at ${seen}, due ${at}`);
        assert.equal(thread.pending, 0);
      }
    }));

  it('fires many timers in due order; an earlier one armed later interrupts the wait; cleared ones never fire', () =>
    withThread(async (thread) => {
      const base = Date.now() + 30;
      const fired: Array<[string, number]> = [];
      const arm = (label: string, at: number) => preciseTimeoutAt(() => fired.push([label, Date.now() - at]), at, thread);
      arm('c', base + 20);
      arm('b', base + 10);
      const cleared = arm('x', base + 5);
      const last = new Promise<void>((resolve) => preciseTimeoutAt(resolve, base + 25, thread));
      arm('a', base);
      arm('a2', base);
      assert.equal(thread.pending, 6);
      systemClock.clearTimeout(cleared);
      assert.equal(thread.pending, 5);
      await last;
      assert.deepEqual(fired.map(([label]) => label), ['a', 'a2', 'b', 'c']);
      for (const [label, late] of fired) assert.ok(late >= 0, `${label} fired ${late} ms early`);
      assert.equal(thread.pending, 0);
    }));

  it('a warmed-up thread serves its own timers first, unseen: callers\' timers among them fire in order, once', async () => {
    const thread = await onlineThread({ warmUp: 3 });
    try {
      assert.equal(thread.pending, 0, 'its warm-up timers are not counted');
      const start = Date.now();
      const fired: string[] = [];
      const arm = (label: string, at: number) => new Promise<void>((resolve) => preciseTimeoutAt(() => resolve(void fired.push(label)), at, thread));
      // one before, one among and one after the warm-up timers (WARM_STEP_MS apart from the start)
      const all = Promise.all([arm('among', start + WARM_STEP_MS * 2 + 1), arm('first', start + 1), arm('after', start + WARM_STEP_MS * 3 + 20)]);
      await all;
      assert.deepEqual(fired, ['first', 'among', 'after']);
      assert.equal(thread.pending, 0);
      assert.equal(thread.warming, 0, 'all served');
      const late = arm('later', Date.now() + 10);
      assert.equal(thread.pending, 1);
      await late;
      assert.equal(thread.pending, 0);
    } finally {
      await thread.terminate();
    }
  });

  it('clearing a timer after it fired is harmless', () =>
    withThread(async (thread) => {
      let calls = 0;
      let handle: ReturnType<typeof preciseTimeoutAt> | undefined;
      await new Promise<void>((resolve) => {
        handle = preciseTimeoutAt(() => {
          calls++;
          resolve();
        }, Date.now() + 3, thread);
      });
      systemClock.clearTimeout(handle);
      await new Promise<void>((resolve) => preciseTimeoutAt(resolve, Date.now() + 3, thread));
      assert.equal(calls, 1);
    }));

  it('a worker that cannot start leaves timers to the main thread (they still fire, never early)', async () => {
    const thread = new TimerThread({ source: 'throw new Error("no timer thread here")' });
    const at = Date.now() + 5;
    const fired = firedAt(at, thread);
    assert.equal(await thread.started(), 'failed');
    assert.ok((await fired) >= at);
    assert.equal(thread.add({ at, due() {}, orphaned() {}, ahead() {} }), false, 'a failed thread takes no timers');
    assert.ok((await firedAt(Date.now() + 5, thread)) > 0);
  });

  it('a worker that dies with timers armed hands them back: none is lost, none fires early', async () => {
    // This thread exits the moment its first timer falls due.
    const thread = await onlineThread({ source: TIMER_THREAD_SOURCE.replace('parentPort.postMessage(at);', 'process.exit(3);') });
    const base = Date.now() + 10;
    const fired = [firedAt(base, thread), firedAt(base + 15, thread)];
    assert.equal(thread.pending, 2);
    const seen = await Promise.all(fired);
    assert.ok(seen[0]! >= base && seen[1]! >= base + 15, `fired at ${seen.join(', ')}`);
    // On a slow machine the backstop timers may fire both before the thread's exit is seen: wait for it.
    await waitFor(() => thread.state === 'failed', { label: 'the dead thread to be seen as failed', timeout: 10_000 });
    assert.equal(thread.pending, 0);
  });

  it('terminate() hands armed timers back to the main thread', async () => {
    const thread = await onlineThread();
    const at = Date.now() + 20;
    const fired = firedAt(at, thread);
    assert.equal(thread.pending, 1);
    await thread.terminate();
    assert.equal(thread.state, 'failed');
    assert.ok((await fired) >= at);
  });

  it('a message that comes before the main thread reads the due time falls back to polling, not to firing early', async () => {
    // This thread reports every due time the moment it is armed.
    const thread = await onlineThread({ source: TIMER_THREAD_SOURCE.replace('const left = at - now;', 'const left = 0;') });
    try {
      const at = Date.now() + 15;
      assert.ok((await firedAt(at, thread)) >= at);
      assert.equal(thread.pending, 0);
    } finally {
      await thread.terminate();
    }
  });

  it(`a thread that never reports is covered by the backstop (${THREAD_BACKSTOP_MS} ms after the due time)`, async () => {
    const thread = await onlineThread({ source: 'require("node:worker_threads").parentPort.postMessage("ready"); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);' });
    try {
      const at = Date.now() + 5;
      const fired = firedAt(at, thread);
      assert.equal(thread.pending, 1);
      assert.ok((await fired) >= at);
      assert.equal(thread.pending, 0, 'taken off the thread when it fired');
    } finally {
      await thread.terminate();
    }
  });

  it('systemClock.setTimeoutAt shares one thread, started lazily', async () => {
    const thread = sharedTimerThread();
    assert.equal(sharedTimerThread(), thread);
    assert.equal(await thread.started(), 'online');
    const at = Date.now() + 10;
    const seen = await new Promise<number>((resolve) => systemClock.setTimeoutAt!(() => resolve(Date.now()), at));
    assert.ok(seen >= at);
  });
});

describe('timer thread and process lifetime', () => {
  /** Runs `code` (an ES module importing src/clock.ts as `clock`) in a fresh Node process under tsx. */
  function runChild(code: string): Promise<{ stdout: string; ms: number }> {
    const script = `import * as clock from ${JSON.stringify(path.join(root, 'src/clock.ts'))};\nimport { sharedTimerThread } from ${JSON.stringify(path.join(root, 'src/timer-thread.ts'))};\n${code}`;
    const started = performance.now();
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, timeout: 20_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve({ stdout, ms: performance.now() - started });
      });
    });
  }

  it('an unref’d precise timer on the thread does not keep the process alive', async () => {
    const { stdout } = await runChild(`
      // Not started(), which holds the process while the thread starts: poll its state instead.
      const thread = sharedTimerThread();
      while (thread.state === 'starting') await new Promise((resolve) => setTimeout(resolve, 5));
      const state = thread.state;
      clock.systemClock.setTimeoutAt(() => console.log('fired'), Date.now() + 3_600_000).unref();
      console.log(state, sharedTimerThread().pending);
    `);
    assert.equal(stdout.trim(), 'online 1', 'the process exited with the timer armed on the thread');
  });

  it('a ref’d precise timer keeps the process alive until it fires, then lets it exit', async () => {
    const { stdout } = await runChild(`
      await sharedTimerThread().started();
      const at = Date.now() + 50;
      clock.systemClock.setTimeoutAt(() => console.log(Date.now() >= at ? 'fired on time' : 'fired early'), at);
    `);
    assert.equal(stdout.trim(), 'fired on time');
  });
});
