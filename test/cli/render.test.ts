// The task list's RUN column: a finished attempt's duration, a clock only while a run is under way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStyle } from '../../src/cli/format.ts';
import { notCancelledLine, renderTaskList } from '../../src/cli/render.ts';
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
