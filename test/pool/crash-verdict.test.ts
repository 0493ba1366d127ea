/** Who is blamed when a run fails, from the slot flags alone (pure; see src/pool/crash-verdict.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlotFlags } from '../../src/pool/batcher.ts';
import { Verdicts, judgeFailedRun } from '../../src/pool/crash-verdict.ts';

const NOT_STARTED = 0;
const RUNNING = SlotFlags.STARTED;
const FINISHED = SlotFlags.STARTED | SlotFlags.DONE;
const crash = { hardStopped: false, cloneFailed: false };

test('a crash blames the job that was running; finished and waiting batch mates may run again', () => {
  assert.deepEqual(judgeFailedRun([FINISHED, RUNNING, NOT_STARTED], crash), [Verdicts.requeue, Verdicts.blame, Verdicts.requeue]);
});

test('async jobs running together are all suspects', () => {
  assert.deepEqual(judgeFailedRun([RUNNING, RUNNING], crash), [Verdicts.blame, Verdicts.blame]);
});

test('a hard stop sends every other job of the run back', () => {
  const hard = { hardStopped: true, cloneFailed: false };
  assert.deepEqual(judgeFailedRun([RUNNING, RUNNING, NOT_STARTED, FINISHED], hard), [Verdicts.requeue, Verdicts.requeue, Verdicts.requeue, Verdicts.requeue]);
});

test('a batch with no suspect is sent again job by job', () => {
  assert.deepEqual(judgeFailedRun([FINISHED, FINISHED], crash), [Verdicts.resend, Verdicts.resend]);
  assert.deepEqual(judgeFailedRun([NOT_STARTED, NOT_STARTED], { hardStopped: false, cloneFailed: true }), [Verdicts.resend, Verdicts.resend]);
});

test('a lone job: input that cannot be cloned, a result that cannot come back, a thread lost before it started', () => {
  assert.deepEqual(judgeFailedRun([NOT_STARTED], { hardStopped: false, cloneFailed: true }), [Verdicts.invalidInput]);
  assert.deepEqual(judgeFailedRun([FINISHED], crash), [Verdicts.blame]);
  assert.deepEqual(judgeFailedRun([NOT_STARTED], crash), [Verdicts.requeue]);
  assert.deepEqual(judgeFailedRun([RUNNING], crash), [Verdicts.blame]);
});
