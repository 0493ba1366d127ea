// Schedules and queues over real HTTP: create, list, pause, resume, trigger, delete; pause and resume a task
// name; bad input refused with its 4xx and nothing stored (issue 4).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes } from '../../src/errors.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { startHarness, type Harness } from './helpers.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

describe('schedules', () => {
  it('creates, lists, pauses, resumes, triggers and deletes a schedule', async () => {
    const created = await h.request('POST', '/api/schedules', { body: { task: 'echo', every: '1h', id: 'hourly-echo', input: { from: 'schedule' } } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.id, 'hourly-echo');
    assert.equal(created.body.everyMs, 3_600_000);
    assert.equal(created.body.paused, false);
    const cron = await h.request('POST', '/api/schedules', { body: { task: 'echo', cron: '0 3 * * *', overlap: 'queue' } });
    assert.equal(cron.status, 201);
    assert.equal(cron.body.id, 'echo');

    const list = await h.request('GET', '/api/schedules');
    assert.deepEqual(list.body.schedules.map((s: { id: string }) => s.id).sort(), ['echo', 'hourly-echo']);

    const paused = await h.request('POST', '/api/schedules/hourly-echo/pause');
    assert.equal(paused.status, 200);
    assert.equal(paused.body.paused, true);
    const resumed = await h.request('POST', '/api/schedules/hourly-echo/resume');
    assert.equal(resumed.body.paused, false);

    const triggered = await h.request('POST', '/api/schedules/hourly-echo/trigger');
    assert.equal(triggered.status, 202);
    await waitFor(async () => (await h.rt.get(triggered.body.id))?.state === 'succeeded', { timeout: 5000 });
    const task = await h.rt.get(triggered.body.id);
    assert.deepEqual(task?.result, { from: 'schedule' });
    assert.equal(task?.scheduleId, 'hourly-echo');

    assert.deepEqual((await h.request('DELETE', '/api/schedules/hourly-echo')).body, { removed: true });
    assert.equal((await h.request('DELETE', '/api/schedules/hourly-echo')).status, 404);
    assert.equal((await h.request('DELETE', '/api/schedules/echo')).status, 200);
    assert.deepEqual((await h.request('GET', '/api/schedules')).body.schedules, []);
  });

  it('refuses bad schedules with their 4xx and stores nothing', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ['unknown task', { task: 'nope', every: '1h' }, 404, ErrorCodes.UNKNOWN_TASK],
      ['neither cron nor every', { task: 'echo' }, 400, ErrorCodes.INVALID_OPTION],
      ['both cron and every', { task: 'echo', cron: '* * * * *', every: '1m' }, 400, ErrorCodes.INVALID_OPTION],
      ['bad cron', { task: 'echo', cron: 'every day' }, 400, ErrorCodes.INVALID_SCHEDULE],
      ['bad every', { task: 'echo', every: 'often' }, 400, ErrorCodes.INVALID_SCHEDULE],
      ['bad overlap', { task: 'echo', every: '1h', overlap: 'sometimes' }, 400, ErrorCodes.INVALID_OPTION],
      ['bad id', { task: 'echo', every: '1h', id: '../x' }, 400, ErrorCodes.INVALID_OPTION],
      ['unknown field', { task: 'echo', every: '1h', when: 'now' }, 400, ErrorCodes.INVALID_OPTION],
      ['invalid input', { task: 'typed', every: '1h', input: { n: 'x' } }, 422, ErrorCodes.INVALID_INPUT],
    ];
    for (const [label, body, status, code] of cases) {
      const res = await h.request('POST', '/api/schedules', { body });
      assert.equal(res.status, status, `${label}: ${res.text}`);
      assert.equal(res.body.error.code, code, label);
    }
    assert.deepEqual((await h.request('GET', '/api/schedules')).body.schedules, []);
    for (const action of ['pause', 'resume', 'trigger']) {
      assert.equal((await h.request('POST', `/api/schedules/missing/${action}`)).status, 404, action);
      assert.equal((await h.request('POST', `/api/schedules/${encodeURIComponent('../etc')}/${action}`)).status, 404, action);
    }
  });
});

describe('queues', () => {
  it('lists per-name activity, and pauses and resumes a name', async () => {
    const paused = await h.request('POST', '/api/queues/echo/pause');
    assert.deepEqual(paused.body, { name: 'echo', paused: true });
    await waitFor(() => h.rt.pausedNames().includes('echo'), { timeout: 3000 });
    const { body } = await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 'waits' } });
    // Queued behind the pause: still queued after everything pending is written.
    await h.rt.flush();
    assert.equal((await h.rt.get(body.id))?.state, 'queued');
    const queues = await h.request('GET', '/api/queues');
    assert.equal(queues.status, 200);
    const echo = queues.body.queues.find((q: { name: string }) => q.name === 'echo');
    assert.equal(echo.paused, true);
    assert.equal(echo.active, 1);
    assert.equal(echo.byState.queued, 1);
    assert.ok(queues.body.totals.queued >= 1);

    await h.request('POST', '/api/queues/echo/resume');
    await waitFor(async () => (await h.rt.get(body.id))?.state === 'succeeded', { timeout: 5000 });
    assert.equal((await h.request('GET', '/api/queues')).body.queues.find((q: { name: string }) => q.name === 'echo').paused, false);
  });

  it('answers 404 for an unknown name', async () => {
    for (const action of ['pause', 'resume']) {
      const res = await h.request('POST', `/api/queues/nope/${action}`);
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, ErrorCodes.UNKNOWN_TASK);
    }
  });
});
