// The runtime's `spawn` option and the spawn server's life around it: started with a runtime that has a command
// task, used by default, bypassed by `spawn: 'direct'`, and replaced by direct spawning when it cannot start.
// Its own file (its own process): it starts from a process with no spawn server yet.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createRuntime } from '../../src/index.ts';
import { resetSpawnServerForTest, spawnServerInfo, warmSpawnServer } from '../../src/process/spawn-client.ts';

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
