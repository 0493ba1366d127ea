// The task list's RUN column: a finished attempt's duration, a clock only while a run is under way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStyle } from '../../src/cli/format.ts';
import { notCancelledLine, renderTaskAdvice, renderTaskList } from '../../src/cli/render.ts';
import type { TaskView } from '../../src/runtime.ts';

const NOW = 1_800_000_000_000;

function view(fields: Partial<TaskView> & Pick<TaskView, 'state' | 'timings'>): TaskView {
  return { id: `01a${fields.state}`.padEnd(28, '0'), name: 'job', input: null, attempts: 1, maxAttempts: 2, priority: 0, weight: 1, ...fields };
}

test('the RUN column runs a clock for a running task only, not for one back in the queue with its last start', () => {
  const started = { createdAt: NOW - 10_000, runAt: NOW - 10_000, startedAt: NOW - 2_500 };
  const out = renderTaskList(
    [
      view({ state: 'running', timings: started }),
      view({ state: 'queued', timings: started }),
      view({ state: 'succeeded', timings: { ...started, finishedAt: NOW - 1_000, runMs: 1_500 } }),
    ],
    createStyle(false),
    NOW,
  );
  const [, running, queued, succeeded] = out.split('\n');
  assert.match(running!, /2\.5\d* s…$/);
  assert.doesNotMatch(queued!, /…/);
  assert.match(succeeded!, /1\.5\d* s$/);
});

test("cancel of a task already ended says so, and for a flow parent that its children were cancelled with it", () => {
  assert.equal(notCancelledLine('01a', { state: 'succeeded' }), '01a was not cancelled: it had already ended (succeeded)');
  assert.match(notCancelledLine('01a', { state: 'failed', flow: { pending: 1, policy: 'fail' } }), /already ended \(failed\); its children that had not ended were cancelled with it$/);
});

test('task advice shows the measured duration, CPU with its share of run time, and memory', () => {
  const p = (p50: number, p95: number, max = p95) => ({ samples: 30, mean: p50, p50, p95, p99: p95, max });
  const out = renderTaskAdvice(
    { name: 'hash', basedOn: { runs: 30, window: 30 }, enoughData: true, measured: { durationMs: p(200, 400), cpuMs: p(180, 390), cpuPerSecond: 0.9, peakRssMb: p(40, 60, 75) }, recommendations: [] },
    createStyle(false),
  );
  assert.match(out, /^measured: duration p50 200 ms p95 400 ms · cpu p50 180 ms p95 390 ms \(90% of run time\) · memory p50 40 MiB max 75 MiB$/m);
  const bare = renderTaskAdvice({ name: 'hash', basedOn: { runs: 0, window: 0 }, enoughData: false, recommendations: [] }, createStyle(false));
  assert.doesNotMatch(bare, /measured:/);
});
