/** Who is blamed when a run fails, from the slot flags alone (pure; see src/pool/crash-verdict.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlotFlags } from '../../src/pool/batcher.ts';
import { Verdicts, judgeFailedRun } from '../../src/pool/crash-verdict.ts';

const NOT_STARTED = 0;
const LOADING = SlotFlags.STARTED;
const RUNNING = SlotFlags.STARTED | SlotFlags.RUNNING;
const FINISHED = SlotFlags.STARTED | SlotFlags.RUNNING | SlotFlags.DONE;
const crash = { hardStopped: false, cloneFailed: false };

test('a crash blames the job that was running; finished and waiting batch mates may run again', () => {
  assert.deepEqual(judgeFailedRun([FINISHED, RUNNING, NOT_STARTED], crash), [Verdicts.requeue, Verdicts.blame, Verdicts.requeue]);
});

test('a job still loading its module is not blamed while a handler was running', () => {
  assert.deepEqual(judgeFailedRun([LOADING, RUNNING], crash), [Verdicts.requeue, Verdicts.blame]);
});

test('with no handler running, the jobs loading their module are the suspects', () => {
  assert.deepEqual(judgeFailedRun([LOADING, FINISHED, NOT_STARTED], crash), [Verdicts.blame, Verdicts.requeue, Verdicts.requeue]);
  assert.deepEqual(judgeFailedRun([LOADING], crash), [Verdicts.blame]);
});

test('async jobs running together are all suspects', () => {
  assert.deepEqual(judgeFailedRun([RUNNING, RUNNING], crash), [Verdicts.blame, Verdicts.blame]);
});

test('a hard stop sends every other job of the run back', () => {
  const hard = { hardStopped: true, cloneFailed: false };
  assert.deepEqual(judgeFailedRun([RUNNING, LOADING, NOT_STARTED, FINISHED], hard), [Verdicts.requeue, Verdicts.requeue, Verdicts.requeue, Verdicts.requeue]);
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
