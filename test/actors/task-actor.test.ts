import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TaskActor } from '../../actors/task/task-actor.ts';
import { ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import type { TaskRecord } from '../../src/task.ts';

function record(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = Date.UTC(2026, 0, 1);
  return {
    id: '0190000000000000aabbccddeeff',
    name: 'hash',
    state: 'running',
    input: {},
    priority: 0,
    weight: 1,
    attempts: 2,
    maxAttempts: 3,
    createdAt: now,
    runAt: now,
    updatedAt: now,
    ...overrides,
  };
}

const KILL_GRACE = 5000;

function setup(overrides: Partial<TaskRecord> = {}) {
  const clock = new ManualClock();
  const run = new TaskActor(record(overrides), clock, KILL_GRACE);
  return { clock, run };
}

function codeOf(signal: AbortSignal): string | undefined {
  const reason: unknown = signal.reason;
  return isTroupeError(reason) ? reason.code : undefined;
}

describe('TaskActor', () => {
  it('starts in `running` with the record’s identity and attempt', () => {
    const startedAt = Date.UTC(2026, 0, 1, 12);
    const { run, clock } = setup({ startedAt });
    assert.equal(run.state, 'running');
    assert.equal(run.id, '0190000000000000aabbccddeeff');
    assert.equal(run.name, 'hash');
    assert.equal(run.attempt, 2);
    assert.equal(run.startedAt, startedAt);
    assert.equal(run.reason, undefined);
    assert.equal(run.signal.aborted, false);
    assert.equal(clock.pending, 0, 'no timer until one is armed');
  });

  it('uses the clock for startedAt when the record has none', () => {
    const { run, clock } = setup();
    assert.equal(run.startedAt, clock.now());
  });

  it('moves only through transitions the machine allows', () => {
    const { run } = setup();
    assert.equal(run.send({ type: 'due' }), false);
    assert.equal(run.state, 'running');
    assert.equal(run.send({ type: 'fail', retry: true }), true);
    assert.equal(run.state, 'retrying');
    assert.equal(run.send({ type: 'succeed' }), false);
    assert.equal(run.state, 'retrying');
  });

  for (const [reason, code] of [['cancel', ErrorCodes.CANCELLED], ['timeout', ErrorCodes.TIMEOUT], ['shutdown', ErrorCodes.CLOSED]] as const) {
    it(`end('${reason}') aborts the soft signal at once with ${code}, the hard one only after killGrace`, async () => {
      const { run, clock } = setup();
      run.end(reason);
      assert.equal(run.reason, reason);
      assert.equal(run.signal.aborted, true);
      assert.equal(codeOf(run.signal), code);
      assert.equal(run.hardSignal.aborted, false);
      await clock.advance(KILL_GRACE - 1);
      assert.equal(run.hardSignal.aborted, false);
      await clock.advance(1);
      assert.equal(run.hardSignal.aborted, true);
      assert.equal(run.hardSignal.reason, run.signal.reason, 'the hard signal carries the same reason');
    });
  }

  it('records the FIRST reason only; later ends change nothing and arm no second grace timer', async () => {
    const { run, clock } = setup();
    run.end('cancel');
    const reason = run.signal.reason;
    run.end('timeout');
    run.end('shutdown');
    assert.equal(run.reason, 'cancel');
    assert.equal(run.signal.reason, reason);
    assert.equal(codeOf(run.signal), ErrorCodes.CANCELLED);
    assert.equal(clock.pending, 1);
  });

  it('armTimeout fires end(timeout) when the clock reaches it, not before', async () => {
    const { run, clock } = setup();
    run.armTimeout(1000);
    await clock.advance(999);
    assert.equal(run.signal.aborted, false);
    await clock.advance(1);
    assert.equal(run.reason, 'timeout');
    assert.equal(codeOf(run.signal), ErrorCodes.TIMEOUT);
    await clock.advance(KILL_GRACE);
    assert.equal(run.hardSignal.aborted, true);
  });

  it('armTimeout(0) arms nothing', async () => {
    const { run, clock } = setup();
    run.armTimeout(0);
    assert.equal(clock.pending, 0);
  });

  it('a cancel before the timeout keeps `cancel` as the reason', async () => {
    const { run, clock } = setup();
    run.armTimeout(1000);
    run.end('cancel');
    await clock.advance(1000);
    assert.equal(run.reason, 'cancel');
    assert.equal(codeOf(run.signal), ErrorCodes.CANCELLED);
  });

  it('dispose clears the timeout and the grace timer', async () => {
    const { run, clock } = setup();
    run.armTimeout(1000);
    assert.equal(clock.pending, 1);
    run.dispose();
    assert.equal(clock.pending, 0);
    await clock.advance(10_000);
    assert.equal(run.signal.aborted, false);

    const second = setup();
    second.run.end('cancel');
    assert.equal(second.clock.pending, 1);
    second.run.dispose();
    assert.equal(second.clock.pending, 0);
    await second.clock.advance(KILL_GRACE * 2);
    assert.equal(second.run.hardSignal.aborted, false, 'a disposed run is never hard-stopped');
  });
});
