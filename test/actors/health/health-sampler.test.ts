import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type pidusageModule from 'pidusage';
import { createHealthSampler } from '../../../actors/health/health-sampler.ts';
import { ManualClock } from '../../../src/clock.ts';

const children = new Set<ChildProcess>();
after(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});

/** Starts a child and resolves once it printed its first line (so it is running, not merely spawned). */
async function startChild(script: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  await once(child.stdout!, 'data');
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

describe('createHealthSampler (real processes)', () => {
  it('samples the runtime process, the host, the disk and the event loop', async (t) => {
    const clock = new ManualClock();
    const sampler = createHealthSampler({ clock, diskPath: tmpdir() });
    t.after(() => sampler.close());
    // Let the histogram's timer start, block the loop for a moment so it records a delay, then let it run.
    await delay(20);
    const start = performance.now();
    while (performance.now() - start < 40);
    await delay(20);

    const s = await sampler.sample({ runtime: process.pid, threads: [1, 2], subprocesses: [] });
    assert.equal(s.at, clock.now());
    assert.deepEqual(s.errors, []);
    assert.equal(s.process.pid, process.pid);
    assert.deepEqual(s.process.threads, [1, 2], 'thread ids are reported as given');
    assert.ok(s.process.cpu !== undefined && s.process.cpu >= 0 && s.process.cpu <= 100);
    assert.ok(s.process.cpu > 0, 'the first sample already shows the CPU used since start');
    assert.ok(s.process.memoryRss > 1e6);
    assert.ok(s.host.totalMemMb > 0 && s.host.freeMemMb <= s.host.totalMemMb);
    assert.ok(s.host.memoryPercentUsed > 0 && s.host.memoryPercentUsed < 100);
    assert.equal(s.host.loadavg.length, 3);
    assert.ok(s.host.cores >= 1);
    assert.ok(s.disk !== undefined && s.disk.path === tmpdir());
    assert.ok(s.disk.totalGb > 0 && s.disk.percentUsed >= 0 && s.disk.percentUsed <= 100);
    assert.ok(s.eventLoop !== undefined, 'the histogram recorded the blocked loop');
    assert.ok(s.eventLoop.maxMs >= 20, `max delay ${s.eventLoop.maxMs} ms`);
    assert.deepEqual(s.subprocesses, []);
  });

  it('samples a real child process, and a busy one shows CPU', async (t) => {
    const sampler = createHealthSampler({ clock: new ManualClock() });
    t.after(() => sampler.close());
    const idle = await startChild("console.log('ready'); setInterval(() => {}, 60_000);");
    const busy = await startChild("const s = Date.now(); while (Date.now() - s < 150); console.log('ready'); for (;;);");
    t.after(() => Promise.all([stopChild(idle), stopChild(busy)]));

    const s = await sampler.sample({ runtime: process.pid, threads: [], subprocesses: [idle.pid!, busy.pid!] });
    assert.deepEqual(s.vanished, []);
    assert.deepEqual(s.errors, []);
    const byPid = new Map(s.subprocesses.map((r) => [r.pid, r]));
    assert.ok(byPid.get(idle.pid!)!.memory > 1e6, 'rss of the idle child');
    assert.ok(byPid.get(busy.pid!)!.cpu > byPid.get(idle.pid!)!.cpu, 'the busy child uses more CPU');
    assert.ok(byPid.get(busy.pid!)!.cpu <= 100);
  });

  it('a pid that vanished between listing and sampling is reported, not an error', async (t) => {
    const sampler = createHealthSampler({ clock: new ManualClock() });
    t.after(() => sampler.close());
    const alive = await startChild("console.log('ready'); setInterval(() => {}, 60_000);");
    const gone = await startChild("console.log('ready'); setInterval(() => {}, 60_000);");
    t.after(() => stopChild(alive));
    const gonePid = gone.pid!;
    await stopChild(gone);

    const s = await sampler.sample({ runtime: process.pid, threads: [], subprocesses: [alive.pid!, gonePid] });
    assert.deepEqual(s.vanished, [gonePid]);
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.subprocesses.map((r) => r.pid), [alive.pid]);
    assert.ok(s.process.cpu !== undefined);

    // Also when the vanished pid is the only subprocess.
    const only = await sampler.sample({ runtime: process.pid, threads: [], subprocesses: [gonePid] });
    assert.deepEqual(only.vanished, [gonePid]);
    assert.deepEqual(only.errors, []);
  });
});

describe('createHealthSampler (injected pidusage)', () => {
  it('calls pidusage once for all pids and derives CPU from ctime deltas, normalised by cores', async (t) => {
    const calls: number[][] = [];
    let ctime = 1000;
    let timestamp = 10_000;
    const fake = (async (pids: number[]) => {
      calls.push([...pids]);
      const out: Record<string, pidusageModule.Status> = {};
      for (const pid of pids) {
        if (pid === 999) continue; // vanished
        out[pid] = { pid, ppid: 1, cpu: 0, memory: 5e6, ctime, elapsed: 4000, timestamp };
      }
      return out;
    }) as unknown as typeof pidusageModule;
    const sampler = createHealthSampler({ clock: new ManualClock(), pidusage: fake, cores: 2, diskPath: tmpdir() });
    t.after(() => sampler.close());

    const first = await sampler.sample({ runtime: 10, threads: [3], subprocesses: [20, 999, 20, 10] });
    assert.deepEqual(calls, [[10, 20, 999]], 'one call, runtime first, duplicates and the runtime removed from subprocesses');
    // First sight: 1000 ms CPU over 4000 ms of life = 25 % of a core = 12.5 % of two cores.
    assert.equal(first.process.cpu, 12.5);
    assert.deepEqual(first.subprocesses, [{ pid: 20, cpu: 12.5, memory: 5e6 }]);
    assert.deepEqual(first.vanished, [999]);

    // 500 ms of CPU in the next 1000 ms = 50 % of a core = 25 % of the host.
    ctime = 1500;
    timestamp = 11_000;
    const second = await sampler.sample({ runtime: 10, threads: [], subprocesses: [20] });
    assert.equal(second.process.cpu, 25);
    assert.equal(second.subprocesses[0]?.cpu, 25);
    assert.equal(calls.length, 2);
  });

  it('a failing pidusage leaves CPU unknown and names the error, without throwing', async (t) => {
    const failing = (async () => {
      throw Object.assign(new Error('No matching pid found'), { code: 'ENOENT' });
    }) as unknown as typeof pidusageModule;
    const sampler = createHealthSampler({ clock: new ManualClock(), pidusage: failing, diskPath: '/definitely/not/here' });
    t.after(() => sampler.close());
    const s = await sampler.sample({ runtime: process.pid, threads: [], subprocesses: [123] });
    assert.equal(s.process.cpu, undefined);
    assert.equal(s.disk, undefined);
    assert.deepEqual(s.errors, [
      { reading: 'pidusage', code: 'ENOENT' },
      { reading: 'disk', code: 'ENOENT' },
    ]);
    assert.deepEqual(s.vanished, [123]);
  });
});
