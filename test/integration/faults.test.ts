// Fault injection through the whole runtime: crashing threads, runaway handlers, stubborn and forking commands,
// and a supervision tree pushed past its restart intensity.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { createRuntime } from '../../src/runtime.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { isRunning } from '../process/pid-probe.ts';

const fixture = (p: string) => new URL(`../fixtures/${p}`, import.meta.url);
const node = process.execPath;

/** Zombies (this sandbox's PID 1 does not reap orphans) count as gone. */
const alive = isRunning;

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return isTroupeError(error) ? error.code : `not a TroupeError: ${String(error)}`;
  }
}

describe('faults', () => {
  it('a handler that calls process.exit or runs out of memory fails its task; later tasks still run', async () => {
    await using rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      pool: { maxThreads: 1, resourceLimits: { maxOldGenerationSizeMb: 32 } },
      tasks: {
        exit: { handler: fixture('handlers/exit.ts') },
        oom: { handler: fixture('handlers/oom.ts') },
        add: { handler: fixture('handlers/add.ts') },
      },
    });
    assert.equal(await codeOf(rt.run('exit', { code: 3 })), ErrorCodes.WORKER_CRASHED);
    assert.equal(await rt.run('add', { a: 1, b: 2 }), 3);
    assert.equal(await codeOf(rt.run('oom')), ErrorCodes.RESOURCE_LIMIT);
    assert.equal(await rt.run('add', { a: 2, b: 2 }), 4);
    const failed = (await rt.list({ state: 'failed' })).tasks.map((t) => t.name).sort();
    assert.deepEqual(failed, ['exit', 'oom']);
  });

  it('a command that ignores SIGTERM is SIGKILLed after the grace when cancelled', async () => {
    await using rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { stubborn: { command: node, args: [fixture('commands/ignore-sigterm.js').pathname], killGrace: 300 } } });
    const h = rt.start('stubborn');
    for await (const line of h.output) if (line.text === 'ready') void h.cancel();
    assert.equal(await codeOf(h.result), ErrorCodes.CANCELLED);
    await waitFor(() => rt.pids().subprocesses.length === 0, { timeout: 5000 });
    await rt.flush();
    const lines = (await rt.output(h.id)).map((l) => l.text);
    assert.ok(lines.includes('got SIGTERM'), `it was asked nicely first: ${JSON.stringify(lines)}`);
  });

  it("a command's grandchild does not outlive a timeout", async () => {
    await using rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { forky: { command: node, args: [fixture('commands/spawn-grandchild.js').pathname, 'wait'], timeout: '2s', killGrace: 200 } } });
    const h = rt.start('forky');
    let grandchild = 0;
    for await (const line of h.output) {
      const m = /^grandchild (\d+)$/.exec(line.text);
      if (m) grandchild = Number(m[1]);
    }
    assert.equal(await codeOf(h.result), ErrorCodes.TIMEOUT);
    assert.ok(grandchild > 0);
    await waitFor(() => !alive(grandchild), { timeout: 5000, label: 'grandchild gone' });
  });

  it('a command printing a million lines keeps memory bounded and is not killed for it', async () => {
    await using rt = await createRuntime({ store: 'memory', maintenance: false, output: { maxLines: 1000 }, tasks: { chatty: { command: node, args: [fixture('commands/print-lines.js').pathname, '1000000'] } } });
    const before = process.memoryUsage().rss;
    const result = (await rt.run('chatty')) as { exitCode: number; lines: { stdout: number } };
    assert.equal(result.exitCode, 0);
    assert.equal(result.lines.stdout, 1_000_000);
    const [task] = (await rt.list()).tasks;
    const kept = await rt.output(task!.id, { limit: 5000 });
    assert.ok(kept.length <= 1001, `kept ${kept.length} lines`);
    assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'RSS grew less than 200 MB');
  });

  it('an actor crashing past its restart intensity escalates: the runtime stops and says why', async () => {
    const rt = await createRuntime({ store: 'memory', maintenance: false, supervisor: { maxRestarts: 2, within: '10s' }, tasks: { ok: { run: () => 1 } } });
    const escalated = new Promise((resolve) => rt.on('actor.escalated', resolve));
    const poison = () => rt.bus.tell('test', 'tracker', { type: 'tracker.query', query: { kind: 'get', get id(): string { throw new Error('poison'); } } as never, replyTo: 'nobody' });
    for (let i = 0; i < 3; i++) {
      const restartedOrEscalated = new Promise((resolve) => { rt.on('actor.restarted', resolve); rt.on('actor.escalated', resolve); });
      poison();
      await restartedOrEscalated;
    }
    await escalated;
    await waitFor(() => rt.status === 'stopped', { timeout: 5000 });
    assert.equal(await codeOf(rt.run('ok')), ErrorCodes.ESCALATED);
    assert.match(rt.liveness().escalated ?? '', /tracker/);
  });
});
