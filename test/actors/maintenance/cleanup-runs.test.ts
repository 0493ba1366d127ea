import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanupRuns, parseCleanupRunsInput } from '../../../actors/maintenance/cleanup-runs.ts';
import { ManualClock } from '../../../src/clock.ts';
import { ErrorCodes } from '../../../src/errors.ts';
import { createMemoryStore } from '../../../src/store/memory-store.ts';
import { addTask } from './fixtures/finished-tasks.ts';

const HOUR = 3_600_000;

describe('cleanupRuns', () => {
  it('purges final tasks finished before now − maxAgeHours, and nothing else', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 10));
    const now = clock.now();
    await using store = createMemoryStore();
    const oldDone = await addTask(store, { outcome: 'succeeded', createdAt: now - 50 * HOUR });
    const oldFailed = await addTask(store, { outcome: 'failed', createdAt: now - 49 * HOUR });
    const oldCancelled = await addTask(store, { outcome: 'cancelled', createdAt: now - 30 * HOUR, finishedAt: now - 25 * HOUR });
    // Created long ago but finished recently: judged by finish time, kept.
    const lateFinish = await addTask(store, { outcome: 'timed_out', createdAt: now - 80 * HOUR, startedAt: now - HOUR });
    const recent = await addTask(store, { outcome: 'succeeded', createdAt: now - 2 * HOUR });
    // Exactly on the threshold is not older than it: kept.
    const onEdge = await addTask(store, { outcome: 'succeeded', createdAt: now - 24 * HOUR });
    // Never finished: never purged, however old.
    const oldQueued = await addTask(store, { outcome: 'queued', createdAt: now - 100 * HOUR });
    const oldRunning = await addTask(store, { outcome: 'running', createdAt: now - 100 * HOUR });

    const result = await cleanupRuns({ maxAgeHours: 24 }, { store, clock });
    assert.deepEqual(result, { removed: 3, maxAgeHours: 24, before: now - 24 * HOUR });
    for (const id of [oldDone, oldFailed, oldCancelled]) assert.equal(await store.get(id), undefined);
    for (const id of [lateFinish, recent, onEdge, oldQueued, oldRunning]) assert.ok(await store.get(id), id);

    assert.equal((await cleanupRuns({ maxAgeHours: 24 }, { store, clock })).removed, 0, 'a second run finds nothing');
    assert.equal((await cleanupRuns({ maxAgeHours: 0.5 }, { store, clock })).removed, 3, 'fractional hours');
  });

  it('uses 24 hours when no input is given', async () => {
    const clock = new ManualClock();
    await using store = createMemoryStore();
    const result = await cleanupRuns(undefined, { store, clock });
    assert.equal(result.maxAgeHours, 24);
    assert.equal(result.before, clock.now() - 24 * HOUR);
  });
});

describe('parseCleanupRunsInput', () => {
  it('accepts positive hours up to ten years, as numbers or decimal strings', () => {
    assert.deepEqual(parseCleanupRunsInput({}), { maxAgeHours: 24 });
    assert.deepEqual(parseCleanupRunsInput(null), { maxAgeHours: 24 });
    assert.deepEqual(parseCleanupRunsInput({ maxAgeHours: 87_600 }), { maxAgeHours: 87_600 });
    assert.deepEqual(parseCleanupRunsInput({ maxAgeHours: '12' }), { maxAgeHours: 12 });
    assert.deepEqual(parseCleanupRunsInput({ maxAgeHours: 0.25 }), { maxAgeHours: 0.25 });
  });

  it('rejects anything else with INVALID_INPUT', () => {
    const bad: unknown[] = [
      { maxAgeHours: 0 },
      { maxAgeHours: -1 },
      { maxAgeHours: 87_601 },
      { maxAgeHours: Number.NaN },
      { maxAgeHours: Number.POSITIVE_INFINITY },
      { maxAgeHours: '1e3' },
      { maxAgeHours: '-5' },
      { maxAgeHours: 'abc' },
      { maxAgeHours: true },
      { max_age_hours: 24 },
      JSON.parse('{"__proto__": {"maxAgeHours": 1}}'),
      [],
      'x',
      24,
    ];
    for (const raw of bad) {
      assert.throws(() => parseCleanupRunsInput(raw), { code: ErrorCodes.INVALID_INPUT }, JSON.stringify(raw));
    }
  });
});
