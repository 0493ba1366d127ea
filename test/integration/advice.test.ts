// The advisor through the runtime: recommendations from measured runs, statistics kept across a restart, and
// adaptive concurrency limits that are validated at registration and visible while tasks run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('advice from history', () => {
  it('advises from measured runs, with evidence, and keeps the statistics across a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-advice-'));
    const db = path.join(dir, 'troupe.db');
    const tasks = { flaky: { retry: { attempts: 2, delay: 1, jitter: 0 }, run: (i: { n: number }) => { if (i.n % 3 === 0) throw new Error('down'); return i.n; } } };
    try {
      {
        await using rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, tasks });
        const thin = await rt.advise('flaky');
        assert.equal(thin.enoughData, false);
        await rt.runAll(Array.from({ length: 40 }, (_, n) => ({ name: 'flaky', input: { n } })), { concurrency: 8 });
        const advice = await rt.advise('flaky');
        assert.equal(advice.enoughData, true);
        assert.ok(advice.basedOn.runs >= 40);
        assert.ok(advice.recommendations.length > 0);
        for (const r of advice.recommendations) assert.equal(typeof r.evidence, 'object');
        assert.ok(advice.recommendations.some((r) => r.topic === 'retry'), JSON.stringify(advice.recommendations.map((r) => r.topic)));
      }
      await using again = await createRuntime({ store: `sqlite:${db}`, maintenance: false, tasks });
      const restored = await again.advise('flaky');
      assert.ok(restored.basedOn.runs >= 40, 'statistics survived the restart');
      await assert.rejects(again.advise('missing'), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.UNKNOWN_TASK);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a name registered after start keeps its stored statistics: they are read, and runs meanwhile are added', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-advice-'));
    const db = path.join(dir, 'troupe.db');
    const io = { run: (n: number) => n };
    const runs = async (rt: Runtime): Promise<number> => (await rt.advise('io')).basedOn.runs;
    try {
      {
        await using rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false });
        rt.register('io', io);
        await rt.runAll(Array.from({ length: 40 }, (_, n) => ({ name: 'io', input: n })));
        assert.equal(await runs(rt), 40);
      }
      {
        await using rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false });
        rt.register('io', io);
        // A run that may end before the stored record is read: it is added to it, not written over it.
        await rt.run('io', 1);
        await waitFor(async () => (await runs(rt)) === 41, { label: 'the stored 40 runs read, plus this one' });
      }
      await using rt = await createRuntime({ store: `sqlite:${db}`, maintenance: false, tasks: { io } });
      assert.equal(await runs(rt), 41, 'all 41 runs were written at close');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('adaptive concurrency: bounds are validated at registration and the limit is visible', async () => {
    await assert.rejects(
      createRuntime({ store: 'memory', maintenance: false, tasks: { x: { concurrency: { adaptive: true, min: 0 }, run: () => 1 } } }),
      (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION,
    );
    await using rt = await createRuntime({ store: 'memory', maintenance: false, concurrency: 64, tasks: { io: { concurrency: { adaptive: true, min: 2, max: 16 }, run: () => new Promise((r) => setImmediate(r)) } } });
    let active = 0;
    let peak = 0;
    rt.on('task.started', () => { active++; peak = Math.max(peak, active); });
    rt.on('task.succeeded', () => active--);
    await Promise.all(Array.from({ length: 300 }, () => rt.run('io')));
    const limits = rt.adaptiveLimits();
    assert.ok(limits.io! >= 2 && limits.io! <= 16, JSON.stringify(limits));
    assert.ok(peak <= 16, `peak ${peak} within the max`);
    const executor = rt.tree().children?.find((c) => c.address === 'executor');
    assert.ok((executor?.info as { adaptive?: Record<string, unknown> }).adaptive?.io, 'the tree shows the adaptive limit');
  });
});
