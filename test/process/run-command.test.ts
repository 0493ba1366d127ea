// runCommand with the spawn server (the default on POSIX): the whole suite, then what only the server path has.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { activeCommandPids, runCommand, type CommandSpec } from '../../src/process/run-command.ts';
import { killSpawnServerForTest, spawnServerInfo } from '../../src/process/spawn-client.ts';
import { createLineWaiter, isRunning, waitUntil } from './pid-probe.ts';
import { runCommandSuite } from './run-command-suite.ts';

runCommandSuite('server');

const FIXTURES = fileURLToPath(new URL('../fixtures/commands/', import.meta.url));

function spec(script: string, args: string[], extra: Partial<CommandSpec> = {}): CommandSpec {
  return { command: process.execPath, args: [join(FIXTURES, script), ...args], killGraceMs: 2000, maxLines: 1000, maxBytes: 100_000, ...extra };
}

/** The parent pid of a live process, from /proc (Linux). */
function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('runCommand: the spawn server', { skip: process.platform !== 'linux' ? 'reads /proc (Linux only)' : false }, () => {
  test('a command is forked by the spawn server, not by this process, and its output is read here', async () => {
    const waiter = createLineWaiter();
    const controller = new AbortController();
    const run = runCommand(spec('forever.js', [], { onLine: waiter.onLine, signal: controller.signal }));
    await waiter.next((text) => text === 'ready');
    const info = spawnServerInfo();
    assert.equal(info.state, 'ready');
    assert.equal(info.running, 1);
    const [pid] = activeCommandPids();
    assert.equal(parentOf(pid!), info.pid, 'the child is the server’s');
    assert.notEqual(info.pid, process.pid);
    controller.abort('done');
    await assert.rejects(run, (error: unknown) => isTroupeError(error) && error.code === ErrorCodes.CANCELLED);
  });

  test('a cancel that comes before the pid is known is carried out once the child exists', async () => {
    const controller = new AbortController();
    let spawned = 0;
    const run = runCommand(spec('forever.js', [], { signal: controller.signal, onSpawn: (pid) => (spawned = pid) }));
    controller.abort('early');
    await assert.rejects(run, (error: unknown) => isTroupeError(error) && error.code === ErrorCodes.CANCELLED && error.cause === 'early');
    assert.ok(spawned > 0, 'the child was started');
    await waitUntil(() => !isRunning(spawned), 'the child is gone');
    assert.deepEqual(activeCommandPids(), []);
  });

  test('options that spawn itself rejects → INVALID_OPTION, nothing started', async () => {
    await assert.rejects(runCommand(spec('echo.js', ['a\u0000b'])), (error: unknown) => isTroupeError(error) && error.code === ErrorCodes.INVALID_OPTION);
    assert.equal(spawnServerInfo().running, 0);
  });

  test('if the server dies, its runs fail with COMMAND_FAILED and their groups end; the next command starts a new server', async () => {
    const waiter = createLineWaiter();
    let child = 0;
    const run = runCommand(spec('forever.js', [], { killGraceMs: 200, onLine: waiter.onLine, onSpawn: (pid) => (child = pid) }));
    await waiter.next((text) => text === 'ready');
    const first = killSpawnServerForTest();
    await assert.rejects(run, (error: unknown) => {
      assert.ok(isTroupeError(error));
      assert.equal(error.code, ErrorCodes.COMMAND_FAILED);
      assert.match(error.message, /was lost: the spawn server \(pid \d+\) was killed by SIGKILL/);
      return true;
    });
    await waitUntil(() => !isRunning(child), 'the lost run’s child is gone');
    const next = await runCommand(spec('echo.js', ['again']));
    assert.equal(next.exitCode, 0);
    assert.notEqual(spawnServerInfo().pid, first, 'a new server');
    assert.equal(spawnServerInfo().state, 'ready');
  });

  test('a host killed by SIGKILL (no hook runs) still has its commands ended: the server ends their groups', { timeout: 30_000 }, async (t) => {
    const host = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'host-exits.ts'), 'wait', 'server'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    host.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    await waitUntil(() => /pid \d+/.test(out) || host.exitCode !== null, 'the host reported its child');
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    assert.ok(pid > 0, `the host reported its child: ${JSON.stringify(out)}`);
    t.after(() => {
      if (isRunning(pid)) process.kill(-pid, 'SIGKILL');
    });
    host.kill('SIGKILL');
    await once(host, 'exit');
    await waitUntil(() => !isRunning(pid), 'the child of the killed host is gone');
  });
});
