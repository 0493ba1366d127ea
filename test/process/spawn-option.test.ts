// The runtime's `spawn` option and the spawn server's life around it: started with a runtime that has a command
// task, used by default, bypassed by `spawn: 'direct'`, and replaced by direct spawning when it cannot start.
// Its own file (its own process): it starts from a process with no spawn server yet.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { createRuntime } from '../../src/index.ts';
import { runCommand } from '../../src/process/run-command.ts';
import { resetSpawnServerForTest, spawnServerInfo, warmSpawnServer } from '../../src/process/spawn-client.ts';
import { isRunning, waitUntil } from './pid-probe.ts';

/** A command that prints its parent's pid. */
const PARENT = { command: 'sh', args: ['-c', 'echo "::result $PPID"'] };

const dir = mkdtempSync(join(tmpdir(), 'troupe-spawn-option-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('runtime option spawn', { skip: process.platform === 'win32' ? 'Windows always spawns directly' : false }, () => {
  test('a runtime with a command task starts the spawn server, and its commands are forked there', async () => {
    assert.equal(spawnServerInfo().state, 'idle', 'no server before a runtime needs one');
    const rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { parent: PARENT } });
    try {
      assert.notEqual(spawnServerInfo().state, 'idle', 'the start warms it up');
      const parent = await rt.run('parent');
      assert.equal(spawnServerInfo().state, 'ready');
      assert.equal(parent, spawnServerInfo().pid);
      assert.notEqual(parent, process.pid);
      const executor = rt.tree().children?.find((c) => c.address === 'executor');
      assert.deepEqual(executor?.info?.spawnServer, { state: 'ready', pid: parent, running: 0 }, 'the tree shows the server');
    } finally {
      await rt.close();
    }
  });

  test('a command task registered on a running runtime warms the server up too', async () => {
    resetSpawnServerForTest();
    const rt = await createRuntime({ store: 'memory', maintenance: false });
    try {
      assert.equal(spawnServerInfo().state, 'idle', 'no command task, no server');
      rt.register('parent', PARENT);
      assert.equal(spawnServerInfo().state, 'starting');
      assert.equal(await rt.run('parent'), spawnServerInfo().pid);
    } finally {
      await rt.close();
    }
  });

  test("spawn: 'direct' forks from this process", async () => {
    const rt = await createRuntime({ store: 'memory', maintenance: false, spawn: 'direct', tasks: { parent: PARENT } });
    try {
      assert.equal(await rt.run('parent'), process.pid);
      const executor = rt.tree().children?.find((c) => c.address === 'executor');
      assert.equal(executor?.info?.spawnServer, undefined, 'no server in the tree of a direct runtime');
    } finally {
      await rt.close();
    }
  });

  test('a server that hands over a child without its pipe: the run fails, its child is ended, and commands fork from this process', async () => {
    // A stand-in for a runtime that cannot pass file descriptors over IPC: it starts the child but sends no pipe.
    const fake = join(dir, 'no-pipes-server.mjs');
    writeFileSync(fake, [
      "import { spawn } from 'node:child_process';",
      'const pids = [];',
      "process.on('message', (m) => {",
      "  if (m.t !== 'spawn') return;",
      "  const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });",
      '  pids.push(child.pid);',
      "  process.send({ t: 'stdout', id: m.id, pid: child.pid });",
      "  process.send({ t: 'stderr', id: m.id });",
      '});',
      "process.on('disconnect', () => process.exit(0));",
      "process.send({ t: 'ready' });",
    ].join('\n'));
    resetSpawnServerForTest(fake);
    try {
      let child = 0;
      const run = runCommand({ command: 'sleep', args: ['30'], killGraceMs: 200, maxLines: 10, maxBytes: 1000, onSpawn: (pid) => (child = pid) });
      await assert.rejects(run, (error: unknown) => {
        assert.ok(isTroupeError(error));
        assert.equal(error.code, ErrorCodes.COMMAND_FAILED);
        assert.match(error.message, /was lost: the spawn server \(pid \d+\) handed over a child without its pipe/);
        return true;
      });
      await waitUntil(() => !isRunning(child), 'the child is ended');
      assert.equal(spawnServerInfo().state, 'failed');
      const rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { parent: PARENT } });
      try {
        assert.equal(await rt.run('parent'), process.pid, 'later commands fork here');
      } finally {
        await rt.close();
      }
    } finally {
      resetSpawnServerForTest();
    }
  });

  test('a server that cannot start: commands fork from this process, and the info says why', async () => {
    const broken = join(dir, 'broken-server.mjs');
    writeFileSync(broken, 'process.exit(3);\n');
    resetSpawnServerForTest(broken);
    try {
      assert.equal(await warmSpawnServer(), false);
      const info = spawnServerInfo();
      assert.equal(info.state, 'failed');
      assert.match(info.error ?? '', /exited with code 3 before it was ready/);
      const warnings: Array<[string, unknown]> = [];
      const logger = { debug() {}, info() {}, error() {}, warn: (message: string, data?: unknown) => warnings.push([message, data]) };
      const rt = await createRuntime({ store: 'memory', maintenance: false, logger, tasks: { parent: PARENT } });
      try {
        assert.equal(await rt.run('parent'), process.pid, 'the command still runs, forked here');
        assert.deepEqual(warnings, [['the spawn server could not start: command tasks fork from this process', { error: 'it exited with code 3 before it was ready' }]]);
      } finally {
        await rt.close();
      }
    } finally {
      resetSpawnServerForTest();
    }
    assert.equal(await warmSpawnServer(), true, 'the real server starts again after a reset');
  });
});
