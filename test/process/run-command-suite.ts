import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, isTroupeError, type TroupeError } from '../../src/errors.ts';
import type { OutputLine } from '../../src/process/line-capture.ts';
import type { CommandProgress } from '../../src/process/progress-protocol.ts';
import { activeCommandPids, runCommand, type CommandSpec, type CommandStops } from '../../src/process/run-command.ts';
import type { StopWatcher } from '../../src/pool/thread-pool.ts';
import { createLineWaiter, isRunning, waitUntil } from './pid-probe.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/commands/', import.meta.url));

/**
 * The runCommand suite, run once per way of spawning (run-command.test.ts: the spawn server; run-command-direct.test.ts:
 * execa in this process). Both ways must give every guarantee below.
 */
export function runCommandSuite(way: 'server' | 'direct'): void {

  function spec(script: string, args: string[] = [], extra: Partial<CommandSpec> = {}): CommandSpec {
    return {
      command: process.execPath,
      args: [join(FIXTURES, script), ...args],
      killGraceMs: 2000,
      signal: new AbortController().signal,
      spawn: way,
      maxLines: 10_000,
      maxBytes: 1_000_000,
      ...extra,
    };
  }

  /** A run's stop watch, as a task actor keeps it: a level, a reason, one watcher told of each stop. */
  class Stops implements CommandStops {
    stopLevel = 0;
    stopReason: unknown = undefined;
    watcher: StopWatcher | undefined = undefined;
    watchStops(watcher: StopWatcher | undefined): void {
      this.watcher = watcher;
    }
    stop(reason: unknown, level: 1 | 2 = 1): void {
      this.stopLevel = level;
      this.stopReason = reason;
      this.watcher?.onStop(undefined, level === 2);
    }
  }

  /** Runs a command that must fail; returns its error after checking it is a troupe error with `code`. */
  async function rejection(promise: Promise<unknown>, code: string): Promise<TroupeError> {
    try {
      await promise;
    } catch (error) {
      assert.ok(isTroupeError(error), `expected a TroupeError, got ${String(error)}`);
      assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
      return error;
    }
    assert.fail(`expected a rejection with ${code}`);
  }

  /** Runs a fixture collecting lines per stream. */
  async function collect(script: string, args: string[] = [], extra: Partial<CommandSpec> = {}) {
    const lines: OutputLine[] = [];
    const result = await runCommand(spec(script, args, { onLine: (line) => lines.push(line), ...extra }));
    const of = (stream: string) => lines.filter((l) => l.stream === stream).map((l) => l.text);
    return { result, lines, stdout: of('stdout'), stderr: of('stderr') };
  }

  const tempDirs: string[] = [];
  after(() => {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(activeCommandPids(), [], 'no command process may outlive the tests');
  });

  describe(`runCommand (${way}): success and output`, () => {
    test('lines arrive in order on both streams, counted, with the pid reported', async () => {
      const spawned: number[] = [];
      const { result, stdout, stderr } = await collect('print-lines.js', ['1000', '0', 'both'], {
        onSpawn: (pid) => spawned.push(pid),
      });
      const expected = Array.from({ length: 1000 }, (_, i) => `line ${i + 1}`);
      assert.deepEqual(stdout, expected);
      assert.deepEqual(stderr, expected);
      assert.equal(result.exitCode, 0);
      assert.deepEqual(spawned, [result.pid]);
      assert.deepEqual(result.lines, { stdout: 1000, stderr: 1000, dropped: 0 });
      assert.ok(result.durationMs > 0);
      assert.equal('value' in result, false);
    });

    test('unicode and shell metacharacters pass through untouched (no shell)', async () => {
      const args = ['你好世界 🎉 café', 'a b; echo "c" | cat > /dev/null && `id`'];
      const { stdout } = await collect('echo.js', args);
      assert.deepEqual(stdout, args);
    });

    test('invalid UTF-8 is replaced with U+FFFD; CRLF and a last line without newline are handled', async () => {
      const { result, stdout } = await collect('bad-utf8.js');
      assert.deepEqual(stdout, ['ok \uFFFD\uFFFD end', 'a\uFFFDb', 'café 你好', 'z\uFFFD']);
      assert.equal(result.lines.stdout, 4);
    });

    test('the last line without a newline is delivered before the promise settles', async () => {
      const { stdout } = await collect('echo.js', ['first', 'last', '--no-eol']);
      assert.deepEqual(stdout, ['first', 'last']);
    });

    test('cwd is used and env is merged over process.env', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'troupe-cmd-'));
      tempDirs.push(dir);
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const { stdout } = await collect('echo.js', ['@cwd', '$TROUPE_TEST_VALUE', '$PATH'], {
        cwd: dir,
        env: { TROUPE_TEST_VALUE: 'from-spec' },
      });
      assert.deepEqual(stdout, [realpathSync(dir), 'from-spec', String(process.env.PATH)]);
    });

    test('without env the child sees process.env as it is at the run, changes included', async (t) => {
      process.env.TROUPE_TEST_LATE = 'set-late';
      t.after(() => delete process.env.TROUPE_TEST_LATE);
      const first = await collect('echo.js', ['$TROUPE_TEST_LATE']);
      assert.deepEqual(first.stdout, ['set-late']);
      process.env.TROUPE_TEST_LATE = 'changed';
      const second = await collect('echo.js', ['$TROUPE_TEST_LATE']);
      assert.deepEqual(second.stdout, ['changed']);
    });

    test('lines longer than maxBytes are cut; dropped counts what a buffer with the caps would drop', async () => {
      const { result, stdout } = await collect('print-lines.js', ['3', '2500'], { maxBytes: 1000, maxLines: 4 });
      assert.equal(stdout.length, 9);
      assert.ok(stdout.every((l) => Buffer.byteLength(l) <= 1000));
      assert.equal(stdout.slice(0, 3).join(''), 'line 1'.padEnd(2500, '.'));
      // The byte cap binds first: a 1000-byte piece fills the whole window, so only the last piece fits.
      assert.deepEqual(result.lines, { stdout: 9, stderr: 0, dropped: 8 });
      const capped = await collect('print-lines.js', ['100'], { maxLines: 10 });
      assert.deepEqual(capped.result.lines, { stdout: 100, stderr: 0, dropped: 90 });
    });

    test('progress and result protocol: consumed, not passed on; malformed lines stay output', async () => {
      const progress: CommandProgress[] = [];
      const { result, stdout } = await collect('progress.js', [], { onProgress: (p) => progress.push(p) });
      assert.deepEqual(progress, [
        { fraction: 0.25 },
        { fraction: 0.3, done: 3, total: 10 },
        { fraction: 1, done: 10, total: 10 },
      ]);
      assert.deepEqual(result.value, { ok: true, rows: [1, 2, 3] });
      assert.deepEqual(stdout, ['working', '::progress 1.5', '::progress 3/0', '::progress', '::result {bad', 'done']);
      assert.equal(result.lines.stdout, 6);
    });

    test('onLines hands over the same lines as onLine, per pipe chunk, in order, never empty', async () => {
      const perLine: OutputLine[] = [];
      const batches: Array<{ stream: string; texts: string[] }> = [];
      const result = await runCommand(spec('print-lines.js', ['20000', '0', 'both'], {
        onLine: (line) => perLine.push(line),
        onLines: (stream, texts) => batches.push({ stream, texts }),
      }));
      const of = (stream: string) => batches.filter((b) => b.stream === stream).flatMap((b) => b.texts);
      const expected = Array.from({ length: 20_000 }, (_, i) => `line ${i + 1}`);
      assert.deepEqual(of('stdout'), expected);
      assert.deepEqual(of('stderr'), expected);
      assert.ok(batches.every((b) => b.texts.length > 0));
      // fewer calls than lines: a chunk's lines come in one call
      assert.ok(batches.length < 40_000 / 10, `${batches.length} calls for 40,000 lines`);
      // each batch is a consecutive slice of what onLine saw, in the same interleaving of the streams
      assert.deepEqual(batches.flatMap((b) => b.texts.map((text) => ({ stream: b.stream, text }))), perLine);
      assert.deepEqual(result.lines, { stdout: 20_000, stderr: 20_000, dropped: 30_000 }); // maxLines 10,000
    });

    test('onLines: the lines before a progress line are handed over before it, and the last line without newline', async () => {
      const events: unknown[] = [];
      await runCommand(spec('progress.js', [], {
        onLines: (stream, texts) => events.push(...texts.map((t) => `${stream}:${t}`)),
        onProgress: (p) => events.push(p),
      }));
      assert.deepEqual(events, [
        { fraction: 0.25 },
        'stdout:working',
        { fraction: 0.3, done: 3, total: 10 },
        'stdout:::progress 1.5',
        'stdout:::progress 3/0',
        'stdout:::progress',
        'stdout:::result {bad',
        { fraction: 1, done: 10, total: 10 },
        'stdout:done',
      ]);
      const tail: string[] = [];
      await runCommand(spec('echo.js', ['first', 'last', '--no-eol'], { onLines: (_s, texts) => tail.push(...texts) }));
      assert.deepEqual(tail, ['first', 'last']);
    });

    test('an onLines callback that throws ends the run with INTERNAL', async () => {
      const boom = new Error('consumer broke');
      let calls = 0;
      const error = await rejection(runCommand(spec('print-lines.js', ['100000'], {
        onLines: () => {
          calls++;
          throw boom;
        },
      })), ErrorCodes.INTERNAL);
      assert.equal(error.cause, boom);
      assert.equal(calls, 1);
    });

    test('a child flooding stderr never deadlocks: both pipes are read concurrently', { timeout: 30_000 }, async () => {
      let stderrLines = 0;
      const { result, stdout } = await collect('chatty-stderr.js', ['4000000'], {
        onLine: (line) => {
          if (line.stream === 'stderr') stderrLines++;
          else assert.equal(line.text, 'done');
        },
      });
      assert.deepEqual(stdout, []); // onLine was replaced above; the counts tell the story
      assert.equal(stderrLines, 40_000);
      assert.deepEqual(result.lines, { stdout: 1, stderr: 40_000, dropped: 30_001 });
    });
  });

  describe(`runCommand (${way}): failures`, () => {
    test('non-zero exit → COMMAND_FAILED with exit code and the last five stderr lines', async () => {
      const error = await rejection(runCommand(spec('exit-code.js', ['3'])), ErrorCodes.COMMAND_FAILED);
      assert.equal(error.details?.exitCode, 3);
      assert.equal(error.details?.signal, null);
      assert.equal(error.details?.stderrTail, ['3', '4', '5', '6', '7'].map((n) => `error line ${n}`).join('\n'));
    });

    test('a missing program → COMMAND_FAILED caused by ENOENT, nothing left running', async () => {
      let spawned = false;
      const error = await rejection(
        runCommand({ ...spec('echo.js'), command: '/nonexistent/troupe-no-such-program', onSpawn: () => (spawned = true) }),
        ErrorCodes.COMMAND_FAILED,
      );
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
      assert.equal(spawned, false);
      assert.doesNotMatch(error.message, /working directory/, 'the program is what is missing');
    });

    test('a missing working directory → COMMAND_FAILED (ENOENT) that names the directory, not the program', async () => {
      const cwd = join(tmpdir(), 'troupe-no-such-dir', 'jobs');
      const error = await rejection(runCommand({ ...spec('echo.js'), cwd }), ErrorCodes.COMMAND_FAILED);
      assert.equal(error.details?.code, 'ENOENT');
      assert.ok(error.message.includes(`its working directory ${cwd} does not exist`), error.message);
    });

    test('a file that is not executable → COMMAND_FAILED caused by EACCES', async (t) => {
      if (process.platform === 'win32') {
        t.skip('Windows has no execute permission bit');
        return;
      }
      const dir = mkdtempSync(join(tmpdir(), 'troupe-cmd-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'not-executable');
      writeFileSync(file, '#!/bin/sh\necho hi\n');
      chmodSync(file, 0o644);
      const error = await rejection(runCommand({ ...spec('echo.js'), command: file, args: [] }), ErrorCodes.COMMAND_FAILED);
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'EACCES');
    });

    test('a callback that throws ends the child → INTERNAL with the thrown error as cause', async () => {
      const boom = new Error('consumer broke');
      let pid = 0;
      const error = await rejection(
        runCommand(spec('forever.js', [], {
          onSpawn: (p) => (pid = p),
          onLine: () => {
            throw boom;
          },
        })),
        ErrorCodes.INTERNAL,
      );
      assert.equal(error.cause, boom);
      await waitUntil(() => !isRunning(pid), 'the child is gone');
    });
  });

  describe(`runCommand (${way}): timeout and cancel end the whole tree`, { timeout: 20_000 }, () => {
    test('timeout ends a forever child → TIMEOUT', async () => {
      let pid = 0;
      const error = await rejection(
        runCommand(spec('forever.js', [], { timeoutMs: 300, onSpawn: (p) => (pid = p) })),
        ErrorCodes.TIMEOUT,
      );
      assert.equal(error.details?.signal, 'SIGTERM');
      await waitUntil(() => !isRunning(pid), 'the child is gone');
      assert.ok(!activeCommandPids().includes(pid));
    });

    test('cancel via the signal ends it → CANCELLED with cause = signal.reason', async () => {
      const controller = new AbortController();
      const waiter = createLineWaiter();
      let pid = 0;
      const run = runCommand(spec('forever.js', [], {
        signal: controller.signal,
        onLine: waiter.onLine,
        onSpawn: (p) => (pid = p),
      }));
      await waiter.next((text) => text === 'ready');
      assert.ok(activeCommandPids().includes(pid), 'a running child is listed for the health check');
      const reason = new Error('user asked');
      controller.abort(reason);
      const error = await rejection(run, ErrorCodes.CANCELLED);
      assert.equal(error.cause, reason);
      assert.ok(!isRunning(pid));
      assert.ok(!activeCommandPids().includes(pid));
    });

    test('the first termination reason wins: cancel after a timeout still reports TIMEOUT', async () => {
      const controller = new AbortController();
      const waiter = createLineWaiter();
      const run = runCommand(spec('ignore-sigterm.js', [], {
        signal: controller.signal,
        timeoutMs: 200,
        killGraceMs: 300,
        onLine: waiter.onLine,
      }));
      const waiting = rejection(run, ErrorCodes.TIMEOUT);
      // Normally the timeout's SIGTERM reaches the handler and the child lives on through the grace: cancel then.
      // On a loaded machine the timeout can fire before the child has installed its handler; the run then ends
      // at once, and the cancel below comes after the end, which must not change the outcome either.
      const sawSigterm = await Promise.race([
        waiter.next((text) => text === 'got SIGTERM').then(() => true),
        waiting.then(() => false),
      ]);
      controller.abort(new Error('late cancel'));
      const error = await waiting;
      assert.equal(error.details?.signal, sawSigterm ? 'SIGKILL' : 'SIGTERM');
    });

    test('a signal aborted before the start → CANCELLED, nothing spawned', async () => {
      const controller = new AbortController();
      controller.abort('early');
      let spawned = false;
      const error = await rejection(
        runCommand(spec('forever.js', [], { signal: controller.signal, onSpawn: () => (spawned = true) })),
        ErrorCodes.CANCELLED,
      );
      assert.equal(error.cause, 'early');
      assert.equal(spawned, false);
    });

    test('cancel through a stop watch (no AbortSignal) ends it → CANCELLED with cause = the stop reason', async () => {
      const stops = new Stops();
      const waiter = createLineWaiter();
      let pid = 0;
      const run = runCommand(spec('forever.js', [], { signal: undefined, stops, onLine: waiter.onLine, onSpawn: (p) => (pid = p) }));
      await waiter.next((text) => text === 'ready');
      assert.ok(stops.watcher !== undefined, 'the run watches its stops');
      const reason = new Error('user asked');
      stops.stop(reason);
      stops.stop(new Error('hard stop'), 2);
      const error = await rejection(run, ErrorCodes.CANCELLED);
      assert.equal(error.cause, reason);
      assert.equal(error.details?.signal, 'SIGTERM');
      assert.ok(!isRunning(pid));
      assert.equal(stops.watcher, undefined, 'the watch ends with the run');
    });

    test('a stop watch already stopped before the start → CANCELLED, nothing spawned', async () => {
      const stops = new Stops();
      stops.stop('early');
      let spawned = false;
      const error = await rejection(
        runCommand(spec('forever.js', [], { signal: undefined, stops, onSpawn: () => (spawned = true) })),
        ErrorCodes.CANCELLED,
      );
      assert.equal(error.cause, 'early');
      assert.equal(spawned, false);
    });

    test('a run that ends by itself is not cancelled by a stop that comes later', async () => {
      const stops = new Stops();
      const result = await runCommand(spec('echo.js', ['done'], { signal: undefined, stops }));
      assert.equal(result.exitCode, 0);
      stops.stop('late');
      assert.equal(stops.watcher, undefined);
    });

    test('a child ignoring SIGTERM is SIGKILLed after the grace', async () => {
      const controller = new AbortController();
      const waiter = createLineWaiter();
      const run = runCommand(spec('ignore-sigterm.js', [], {
        signal: controller.signal,
        killGraceMs: 200,
        onLine: waiter.onLine,
      }));
      await waiter.next((text) => text === 'ready');
      controller.abort();
      const error = await rejection(run, ErrorCodes.CANCELLED);
      assert.equal(error.details?.signal, 'SIGKILL');
      assert.ok(waiter.seen.includes('got SIGTERM'), 'SIGTERM came first');
    });

    test('cancel also ends the grandchild (process group kill)', async () => {
      const controller = new AbortController();
      const waiter = createLineWaiter();
      const run = runCommand(spec('spawn-grandchild.js', ['wait'], { signal: controller.signal, onLine: waiter.onLine }));
      const line = await waiter.next((text) => text.startsWith('grandchild '));
      const grandchild = Number(line.split(' ')[1]);
      const child = Number((await waiter.next((text) => text.startsWith('child '))).split(' ')[1]);
      assert.ok(isRunning(grandchild));
      controller.abort();
      await rejection(run, ErrorCodes.CANCELLED);
      await waitUntil(() => !isRunning(grandchild) && !isRunning(child), 'child and grandchild are gone');
    });

    test('descendants left behind by a child that exits 0 are ended, and the run does not hang on their pipes', async () => {
      const waiter = createLineWaiter();
      const result = await runCommand(spec('spawn-grandchild.js', ['exit'], { killGraceMs: 200, onLine: waiter.onLine }));
      assert.equal(result.exitCode, 0);
      const grandchild = Number((await waiter.next((text) => text.startsWith('grandchild '))).split(' ')[1]);
      await waitUntil(() => !isRunning(grandchild), 'the leftover grandchild is gone');
    });

    test('a descendant that left the group and holds the pipes cannot hang the run', async (t) => {
      const waiter = createLineWaiter();
      let grandchild = 0;
      t.after(() => {
        if (grandchild > 0 && isRunning(grandchild)) process.kill(grandchild, 'SIGKILL');
      });
      const result = await runCommand(spec('spawn-grandchild.js', ['escape'], {
        killGraceMs: 50,
        onLine: (line) => {
          waiter.onLine(line);
          if (line.text.startsWith('grandchild ')) grandchild = Number(line.text.split(' ')[1]);
        },
      }));
      assert.equal(result.exitCode, 0);
      assert.ok(grandchild > 0);
    });
  });

  describe(`runCommand (${way}): the host exits`, () => {
    test('children still running when the host process exits are killed with their group', { timeout: 30_000 }, async (t) => {
      const host = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'host-exits.ts'), 'exit', way], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      host.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const [code] = (await once(host, 'exit')) as [number | null];
      assert.equal(code, 0);
      const pid = Number(/pid (\d+)/.exec(out)?.[1]);
      assert.ok(pid > 0, `the host reported its child: ${JSON.stringify(out)}`);
      t.after(() => {
        if (isRunning(pid)) process.kill(pid, 'SIGKILL');
      });
      await waitUntil(() => !isRunning(pid), 'the orphaned child is gone');
    });

    /** Starts the host-exits fixture in `mode` and resolves with it once it printed its child's pid. */
    async function startHost(mode: 'signal' | 'handled'): Promise<{ host: ChildProcess; pid: number; out: () => string }> {
      const host = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'host-exits.ts'), mode, way], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      host.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      await waitUntil(() => /pid \d+/.test(out) || host.exitCode !== null, 'the host reported its child');
      const pid = Number(/pid (\d+)/.exec(out)?.[1]);
      assert.ok(pid > 0, `the host reported its child: ${JSON.stringify(out)}`);
      return { host, pid, out: () => out };
    }

    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      test(`a host ended by ${signal} it does not handle: its children are killed with their group, and it dies of the signal`, { timeout: 30_000 }, async (t) => {
        const { host, pid } = await startHost('signal');
        t.after(() => {
          if (isRunning(pid)) process.kill(pid, 'SIGKILL');
        });
        assert.ok(isRunning(pid));
        host.kill(signal);
        const [code, died] = (await once(host, 'exit')) as [number | null, NodeJS.Signals | null];
        assert.deepEqual([code, died], [null, signal], 'the signal still ends the host as it would have');
        await waitUntil(() => !isRunning(pid), 'the orphaned child is gone');
      });
    }

    test('a command that closes its pipes and runs on keeps the host alive until it exits, and its exit is reported', { timeout: 30_000 }, async () => {
      const host = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'closed-pipes-host.ts'), way], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      host.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const [code] = (await once(host, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.equal(out.trim(), 'ended: TROUPE_ERR_COMMAND_FAILED 7');
    });

    test('a host that handles SIGTERM itself keeps its children through the signal; they end when it exits', { timeout: 30_000 }, async (t) => {
      const { host, pid, out } = await startHost('handled');
      t.after(() => {
        if (isRunning(pid)) process.kill(pid, 'SIGKILL');
      });
      host.kill('SIGTERM');
      const [code] = (await once(host, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.match(out(), /term alive/, 'the child still ran when the host handled the signal');
      await waitUntil(() => !isRunning(pid), 'the child is gone once the host exited');
    });
  });

  describe(`runCommand (${way}): usage`, () => {
    const linux = process.platform === 'linux';

    test('onUsage is told once, before the run settles, the peak memory and CPU time of the command', { skip: !linux && 'Linux only (/proc)' }, async () => {
      const told: Array<{ cpuMs: number | undefined; peakRssMb: number | undefined; settled: boolean }> = [];
      let settled = false;
      await runCommand(spec('allocate.js', ['64'], { onUsage: (cpuMs, peakRssMb) => told.push({ cpuMs, peakRssMb, settled }) })).then(() => (settled = true));
      assert.equal(told.length, 1);
      const { cpuMs, peakRssMb } = told[0]!;
      assert.equal(told[0]!.settled, false, 'told before the promise settled');
      assert.ok(peakRssMb !== undefined && peakRssMb >= 64 && peakRssMb < 1024, `peak ${peakRssMb} MiB`);
      assert.ok(cpuMs !== undefined && cpuMs > 0, `cpu ${cpuMs} ms`);
    });

    test('a failing command is measured too; a program that never started is not', { skip: !linux && 'Linux only (/proc)' }, async () => {
      let told = 0;
      await rejection(runCommand(spec('exit-code.js', ['3'], { onUsage: () => told++ })), ErrorCodes.COMMAND_FAILED);
      assert.equal(told, 1);
      // A spawn that fails starts no child: nothing to tell.
      await rejection(runCommand({ ...spec('exit-code.js'), command: '/nonexistent/troupe-no-such-program', onUsage: () => told++ }), ErrorCodes.COMMAND_FAILED);
      assert.equal(told, 1);
    });
  });

  describe(`runCommand (${way}): scale`, () => {
    test('a million lines: all counted, memory bounded, never killed', { timeout: 60_000 }, async (t) => {
      const before = process.memoryUsage().rss;
      let peak = before;
      let count = 0;
      let last = '';
      const result = await runCommand(spec('print-lines.js', ['1000000', '60'], {
        maxLines: 1000,
        maxBytes: 10_000_000,
        onLine: (line) => {
          count++;
          last = line.text;
          if (count % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
        },
      }));
      assert.equal(count, 1_000_000);
      assert.equal(last, 'line 1000000'.padEnd(60, '.'));
      assert.deepEqual(result.lines, { stdout: 1_000_000, stderr: 0, dropped: 999_000 });
      // 61 MB went through; keeping it would grow the heap by far more than this.
      const growthMb = (peak - before) / 1e6;
      t.diagnostic(`RSS growth ${growthMb.toFixed(1)} MB`);
      assert.ok(growthMb < 48, `RSS grew by ${growthMb.toFixed(1)} MB`);
    });

    test('50 concurrent commands all succeed with their own output', { timeout: 60_000 }, async () => {
      // `seq` (coreutils) rather than a Node fixture: 50 Node start-ups would take seconds on two cores.
      const runs = Array.from({ length: 50 }, (_, i) => collect('print-lines.js', [], { command: 'seq', args: [String(100 + i)] }));
      const results = await Promise.all(runs);
      results.forEach(({ result, stdout }, i) => {
        assert.equal(result.lines.stdout, 100 + i);
        assert.equal(stdout.at(-1), String(100 + i));
      });
      assert.equal(new Set(results.map((r) => r.result.pid)).size, 50);
    });
  });
}
