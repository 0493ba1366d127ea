// CPU time and memory of runs, as the executor records them for the advisor: real worker threads, real
// subprocesses. The figures are read back through `rt.advise(name).measured` (one run per name: p50 = the run).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import type { Percentiles } from '../../src/advice/percentiles.ts';

const handler = (file: string): URL => new URL(`../fixtures/handlers/${file}`, import.meta.url);
const script = (file: string): string => fileURLToPath(new URL(`../fixtures/commands/${file}`, import.meta.url));
const linux = process.platform === 'linux';

/** The one figure of a name's single run (throws when the run carried none: the measure is missing). */
async function only(rt: Runtime, name: string, key: 'cpuMs' | 'peakRssMb'): Promise<number> {
  const figure = (await rt.advise(name)).measured?.[key] as Percentiles | undefined;
  assert.ok(figure, `${name}: no ${key} recorded`);
  assert.equal(figure.samples, 1);
  return figure.p50;
}

describe('run usage', () => {
  let rt: Runtime;
  before(async () => {
    rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      pool: { minThreads: 1, maxThreads: 1 },
      tasks: {
        'spin-handler': { handler: handler('spin.ts') },
        'work-handler': { handler: handler('work.ts') },
        'idle-handler': { handler: handler('idle.ts') },
        'spin-command': { command: process.execPath, args: (i: { ms: number }) => [script('spin.js'), String(i.ms)] },
        'sleep-command': { command: 'sleep', args: (i: { s: string }) => [i.s] },
        'nap-command': { command: 'sleep', args: () => ['0.1'] },
        'allocate-command': { command: process.execPath, args: (i: { mb: number }) => [script('allocate.js'), String(i.mb)] },
        'busy-inline': { run: (i: { ms: number }) => { const t = performance.now(); while (performance.now() - t < i.ms); return i.ms; } },
      },
    });
  });
  after(() => rt.close());

  it('a CPU-bound handler gets about the CPU time it used; its thread memory is recorded', async () => {
    // The handler stops once the process used 150 ms more CPU; with the main thread idle that is mostly its thread's.
    const processCpu = (await rt.run('spin-handler', { ms: 150 })) as number;
    const cpu = await only(rt, 'spin-handler', 'cpuMs');
    assert.ok(cpu >= processCpu * 0.5 - 5 && cpu <= processCpu + 10, `thread CPU ${cpu} ms against the process's ${processCpu} ms`);
    assert.ok((await only(rt, 'spin-handler', 'peakRssMb')) > 1, 'the thread holds a heap');
  });

  it('short CPU-bound handler jobs (≈1.5 ms each) are not under-counted', async () => {
    // The same work calibrated on this thread first (warm), by the process's CPU clock: the thread must show about
    // as much per job. The fixture reads no clock itself (a getrusage in the job would hide a stale reading).
    const { default: work } = await import('../fixtures/handlers/work.ts');
    const cpuOf = (n: number): number => {
      const start = process.cpuUsage();
      for (let k = 0; k < 20; k++) work({ n });
      const d = process.cpuUsage(start);
      return (d.user + d.system) / 1000 / 20;
    };
    let n = 100_000;
    for (let i = 0; i < 5; i++) n = Math.round(n * (1.5 / Math.max(0.01, cpuOf(n))));
    const perJob = cpuOf(n);
    for (let i = 0; i < 30; i++) await rt.run('work-handler', { n });
    const cpu = (await rt.advise('work-handler')).measured?.cpuMs;
    assert.ok(cpu, 'no cpuMs recorded');
    assert.ok(cpu.p50 >= perJob * 0.6 && cpu.p50 <= perJob * 2 + 0.5, `p50 ${cpu.p50.toFixed(3)} ms a job on the thread, ${perJob.toFixed(3)} ms calibrated`);
  });

  it('a handler that waits gets a small CPU time', async () => {
    await rt.run('idle-handler', { ms: 300 });
    const cpu = await only(rt, 'idle-handler', 'cpuMs');
    assert.ok(cpu < 30, `${cpu} ms of CPU for a 300 ms wait`);
  });

  it('a CPU-bound command gets the CPU time its process used', { skip: !linux && 'Linux only (/proc)' }, async () => {
    // The child prints its whole CPU time (start-up included) just before it exits.
    const childCpu = (await rt.run('spin-command', { ms: 200 })) as number;
    const cpu = await only(rt, 'spin-command', 'cpuMs');
    assert.ok(cpu >= childCpu - 20 && cpu <= childCpu + 100, `${cpu} ms recorded, the child saw ${childCpu} ms`);
  });

  it('a sleeping command gets almost no CPU time', { skip: !linux && 'Linux only (/proc)' }, async () => {
    await rt.run('sleep-command', { s: '0.3' });
    const cpu = await only(rt, 'sleep-command', 'cpuMs');
    assert.ok(cpu <= 20, `${cpu} ms of CPU for sleep 0.3`);
  });

  it('a command that fills 200 MiB gets a peak resident memory of at least that', { skip: !linux && 'Linux only (/proc)' }, async () => {
    await rt.run('allocate-command', { mb: 200 });
    const peak = await only(rt, 'allocate-command', 'peakRssMb');
    assert.ok(peak >= 200 && peak < 1024, `peak ${peak} MiB`);
  });

  it('the rules that read CPU fire from a live runtime: busy inline code → a handler; sleeping commands → more at once', async () => {
    for (let i = 0; i < 20; i++) await rt.run('busy-inline', { ms: 5 });
    const inline = await rt.advise('busy-inline');
    assert.ok(inline.measured?.cpuPerSecond !== undefined && inline.measured.cpuPerSecond >= 0.5, JSON.stringify(inline.measured));
    const executor = inline.recommendations.find((r) => r.topic === 'executor');
    assert.equal(executor?.value, 'handler', JSON.stringify(inline.recommendations));

    if (!linux) return;
    await rt.runAll(Array.from({ length: 20 }, () => ({ name: 'nap-command' })), { concurrency: 10 });
    const sleeping = await rt.advise('nap-command');
    const concurrency = sleeping.recommendations.find((r) => r.topic === 'concurrency');
    assert.ok(concurrency, JSON.stringify(sleeping.recommendations));
    assert.ok((concurrency.evidence.cpuPerSecond as number) < 0.3, JSON.stringify(concurrency.evidence));
    assert.ok((concurrency.value as { concurrency: number }).concurrency > 2, JSON.stringify(concurrency.value));
  });
});
