// Task routes over real HTTP on loopback: enqueue, bulk, list/filter/page, inspect, cancel, retry, task types,
// and every kind of bad input answered with its 4xx and no change in the store (issue 4).
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

/** Store-wide counts, to show that a refused request changed nothing. */
async function snapshot(): Promise<string> {
  await h.rt.flush();
  const counts = await h.rt.counts();
  const all = await h.rt.list({ limit: 1000 });
  return JSON.stringify({ counts: counts.byState, ids: all.tasks.map((t) => t.id) });
}

async function waitForState(id: string, state: string): Promise<void> {
  await waitFor(async () => (await h.rt.get(id))?.state === state, { timeout: 5000, label: `${id} ${state}` });
}

describe('POST /api/tasks', () => {
  it('enqueues a registered task and answers 202 { id }; the task runs', async () => {
    const res = await h.request('POST', '/api/tasks', { body: { name: 'echo', input: { hello: 'world' }, priority: 3, key: 'k-1' } });
    assert.equal(res.status, 202);
    assert.match(res.body.id, /^[0-9a-f]{28}$/);
    await waitForState(res.body.id, 'succeeded');
    const view = await h.request('GET', `/api/tasks/${res.body.id}`);
    assert.equal(view.status, 200);
    assert.deepEqual(view.body.result, { hello: 'world' });
    assert.equal(view.body.priority, 3);
    assert.equal(view.body.key, 'k-1');
    assert.ok(view.body.timings.createdAt > 0 && view.body.timings.finishedAt >= view.body.timings.createdAt);
    assert.deepEqual(view.body.history.map((t: { to: string }) => t.to), ['queued', 'running', 'succeeded']);
  });

  it('returns the first task for a repeated idempotency key', async () => {
    const a = await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 1, key: 'same-key' } });
    const b = await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 2, key: 'same-key' } });
    assert.equal(a.status, 202);
    assert.equal(b.body.id, a.body.id);
  });

  it('delays a task with `delay` and `runAt`', async () => {
    const res = await h.request('POST', '/api/tasks', { body: { name: 'echo', delay: '1h' } });
    assert.equal(res.status, 202);
    await h.rt.flush();
    assert.equal((await h.rt.get(res.body.id))?.state, 'scheduled');
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const res2 = await h.request('POST', '/api/tasks', { body: { name: 'echo', runAt: at } });
    assert.equal(res2.status, 202);
    const view = await h.rt.get(res2.body.id);
    assert.equal(view?.timings.runAt, Date.parse(at));
    await h.request('POST', `/api/tasks/${res.body.id}/cancel`);
    await h.request('POST', `/api/tasks/${res2.body.id}/cancel`);
  });

  it('reads `runAt` and `since` as instants whatever the server\'s time zone: a date-time must carry its zone', async () => {
    const at = await h.request('POST', '/api/tasks', { body: { name: 'echo', runAt: '2099-01-01T09:30:00+01:00' } });
    assert.equal(at.status, 202, at.text);
    assert.equal((await h.rt.get(at.body.id))?.timings.runAt, Date.UTC(2099, 0, 1, 8, 30));
    await h.request('POST', `/api/tasks/${at.body.id}/cancel`);
    const day = await h.request('POST', '/api/tasks', { body: { name: 'echo', runAt: '2099-01-01' } });
    assert.equal((await h.rt.get(day.body.id))?.timings.runAt, Date.UTC(2099, 0, 1));
    await h.request('POST', `/api/tasks/${day.body.id}/cancel`);
    const before = await snapshot();
    // Without a zone, Date.parse reads the server's local time (another instant on another host, and a time a
    // DST change skips is moved silently); a day that does not exist was moved into the next month.
    for (const runAt of ['2099-01-01T09:30:00', '2099-01-01 09:30', '2099-03-29T02:30:00', '2099-02-30T00:00:00Z', '2099-01-01T25:00:00Z', '1969-12-31T23:59:59Z']) {
      const res = await h.request('POST', '/api/tasks', { body: { name: 'echo', runAt } });
      assert.equal(res.status, 400, `${runAt}: ${res.text}`);
      assert.equal(res.body.error.code, ErrorCodes.INVALID_OPTION, runAt);
      assert.match(res.body.error.message, /runAt/);
    }
    const since = await h.request('GET', '/api/tasks?since=2020-01-01T00:00:00');
    assert.equal(since.status, 400, since.text);
    assert.match(since.body.error.message, /zone/);
    assert.equal(await snapshot(), before);
  });

  it('refuses bad input with the right 4xx and stores nothing', async () => {
    const before = await snapshot();
    const cases: Array<[string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, string]> = [
      ['unknown task', { body: { name: 'nope' } }, 404, ErrorCodes.UNKNOWN_TASK],
      ['schema-invalid input', { body: { name: 'typed', input: { n: 'x' } } }, 422, ErrorCodes.INVALID_INPUT],
      ['missing name', { body: { input: 1 } }, 400, ErrorCodes.INVALID_OPTION],
      ['unknown property', { body: { name: 'echo', bogus: 1 } }, 400, ErrorCodes.INVALID_OPTION],
      ['name of the wrong type', { body: { name: 5 } }, 400, ErrorCodes.INVALID_OPTION],
      ['fractional priority', { body: { name: 'echo', priority: 1.5 } }, 400, ErrorCodes.INVALID_OPTION],
      ['priority as a string', { body: { name: 'echo', priority: '5' } }, 400, ErrorCodes.INVALID_OPTION],
      ['bad delay', { body: { name: 'echo', delay: 'soon' } }, 400, ErrorCodes.INVALID_OPTION],
      ['negative delay', { body: { name: 'echo', delay: -5 } }, 400, ErrorCodes.INVALID_OPTION],
      ['bad runAt', { body: { name: 'echo', runAt: 'tomorrow' } }, 400, ErrorCodes.INVALID_OPTION],
      ['bad weight', { body: { name: 'echo', weight: 0 } }, 400, ErrorCodes.INVALID_OPTION],
      ['empty key', { body: { name: 'echo', key: '' } }, 400, ErrorCodes.INVALID_OPTION],
      ['an array body', { body: [{ name: 'echo' }] }, 400, ErrorCodes.INVALID_OPTION],
      ['bad JSON', { raw: '{"name": "echo",', headers: { 'content-type': 'application/json' } }, 400, ErrorCodes.INVALID_OPTION],
      ['empty JSON body', { raw: '', headers: { 'content-type': 'application/json' } }, 400, ErrorCodes.INVALID_OPTION],
      ['prototype pollution', { raw: '{"name":"echo","__proto__":{"x":1}}', headers: { 'content-type': 'application/json' } }, 400, ErrorCodes.INVALID_OPTION],
      ['not JSON', { raw: 'name=echo', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, ErrorCodes.INVALID_OPTION],
      // QA finding 3: fastify's default text/plain parser turned a JSON body into a string (400 "must be object").
      ['JSON sent as text/plain', { raw: '{"name":"echo"}', headers: { 'content-type': 'text/plain' } }, 415, ErrorCodes.INVALID_OPTION],
      ['JSON sent as text/plain; charset', { raw: '{"name":"echo"}', headers: { 'content-type': 'text/plain; charset=utf-8' } }, 415, ErrorCodes.INVALID_OPTION],
      ['too large', { body: { name: 'echo', input: 'x'.repeat(1_100_000) } }, 413, ErrorCodes.RESOURCE_LIMIT],
    ];
    for (const [label, init, status, code] of cases) {
      const res = await h.request('POST', '/api/tasks', init);
      assert.equal(res.status, status, `${label}: ${res.text}`);
      assert.equal(res.body?.error?.code, code, label);
      assert.equal(typeof res.body.error.message, 'string');
      assert.ok(!res.text.includes('    at '), `${label} leaks a stack`);
    }
    const cancelAsText = await h.request('POST', `/api/tasks/${'0'.repeat(28)}/cancel`, { raw: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(cancelAsText.status, 415, cancelAsText.text);
    assert.equal(cancelAsText.body.error.message, 'Send the request body as application/json');
    const partial = await h.request('POST', '/api/tasks/bulk', { body: { items: [{ name: 'echo' }, { name: 'typed', input: { n: 'x' } }] } });
    assert.equal(partial.status, 422, 'one bad item refuses the whole bulk');
    assert.equal(await snapshot(), before);
  });
});

describe('POST /api/tasks/bulk', () => {
  it('enqueues many in one request and answers their ids in order', async () => {
    const res = await h.request('POST', '/api/tasks/bulk', { body: { items: [{ name: 'echo', input: 1 }, { name: 'echo', input: 2 }, { name: 'typed', input: { n: 21 } }] } });
    assert.equal(res.status, 202);
    assert.equal(res.body.ids.length, 3);
    await waitForState(res.body.ids[2], 'succeeded');
    assert.equal((await h.rt.get(res.body.ids[2]))?.result, 42);
  });

  it('refuses an empty list and one over the limit', async () => {
    const before = await snapshot();
    assert.equal((await h.request('POST', '/api/tasks/bulk', { body: { items: [] } })).status, 400);
    const many = Array.from({ length: 1001 }, () => ({ name: 'echo' }));
    assert.equal((await h.request('POST', '/api/tasks/bulk', { body: { items: many } })).status, 400);
    assert.equal(await snapshot(), before);
  });
});

describe('GET /api/tasks', () => {
  it('filters by state and name, and pages with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.request('POST', '/api/tasks', { body: { name: 'typed', input: { n: i } } })).body.id);
    await waitForState(ids[4]!, 'succeeded');
    const page1 = await h.request('GET', '/api/tasks?name=typed&state=succeeded&limit=2');
    assert.equal(page1.status, 200);
    assert.equal(page1.body.tasks.length, 2);
    assert.ok(page1.body.tasks.every((t: { name: string; state: string }) => t.name === 'typed' && t.state === 'succeeded'));
    const seen = new Set(page1.body.tasks.map((t: { id: string }) => t.id));
    let cursor = page1.body.nextCursor;
    while (cursor) {
      const next = await h.request('GET', `/api/tasks?name=typed&state=succeeded&limit=2&cursor=${cursor}`);
      for (const t of next.body.tasks) seen.add(t.id);
      cursor = next.body.nextCursor;
    }
    for (const id of ids) assert.ok(seen.has(id));
    const both = await h.request('GET', '/api/tasks?state=succeeded,failed&limit=1000');
    assert.ok(both.body.tasks.every((t: { state: string }) => t.state === 'succeeded' || t.state === 'failed'));
    const since = await h.request('GET', `/api/tasks?since=${Date.now() + 60_000}`);
    assert.deepEqual(since.body.tasks, []);
    const iso = await h.request('GET', `/api/tasks?since=${encodeURIComponent(new Date(0).toISOString())}&limit=1`);
    assert.equal(iso.body.tasks.length, 1);
  });

  it('refuses bad queries with 400', async () => {
    for (const q of ['state=done', 'limit=0', 'limit=1001', 'limit=abc', 'since=yesterday', 'cursor=zz', 'bogus=1', 'limit=1&limit=2']) {
      const res = await h.request('GET', `/api/tasks?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error.code, ErrorCodes.INVALID_OPTION, q);
    }
  });
});

describe('GET /api/tasks/:id, cancel, retry', () => {
  it('answers 404 for an unknown id and for junk ids', async () => {
    for (const id of ['0'.repeat(28), 'not-an-id', '..%2F..%2Fetc%2Fpasswd', 'x'.repeat(200)]) {
      for (const [method, suffix] of [['GET', ''], ['POST', '/cancel'], ['POST', '/retry'], ['GET', '/output']] as const) {
        const res = await h.request(method, `/api/tasks/${id}${suffix}`);
        assert.equal(res.status, 404, `${method} ${id}${suffix}`);
        assert.equal(res.body.error.code, ErrorCodes.NOT_FOUND);
      }
    }
  });

  it('cancels a running command and answers { cancelled }', async () => {
    const { body } = await h.request('POST', '/api/tasks', { body: { name: 'gated', input: { lines: 1, gate: 'never-cancel' } } });
    await waitForState(body.id, 'running');
    const res = await h.request('POST', `/api/tasks/${body.id}/cancel`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { cancelled: true });
    await waitForState(body.id, 'cancelled');
    const again = await h.request('POST', `/api/tasks/${body.id}/cancel`);
    assert.deepEqual(again.body, { cancelled: false });
    assert.equal((await h.request('POST', `/api/tasks/${body.id}/cancel`, { body: { force: true } })).status, 400);
  });

  it('retries a dead letter (and answers 409 for a task that is not one)', async () => {
    const { body } = await h.request('POST', '/api/tasks', { body: { name: 'boom' } });
    await waitForState(body.id, 'failed');
    const failed = await h.request('GET', `/api/tasks/${body.id}`);
    assert.equal(failed.body.error.message, 'boom');
    assert.equal(failed.body.error.stack, undefined, 'no stack over HTTP');
    const res = await h.request('POST', `/api/tasks/${body.id}/retry`);
    assert.equal(res.status, 200);
    assert.equal(res.body.id, body.id);
    assert.equal(res.body.state, 'queued');
    await waitForState(body.id, 'failed');

    const ok = await h.request('POST', '/api/tasks', { body: { name: 'echo' } });
    await waitForState(ok.body.id, 'succeeded');
    const conflict = await h.request('POST', `/api/tasks/${ok.body.id}/retry`);
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, ErrorCodes.CONFLICT);
  });
});

describe('GET /api/task-types', () => {
  it('lists the registered names, built-ins marked', async () => {
    const res = await h.request('GET', '/api/task-types');
    assert.equal(res.status, 200);
    const names = res.body.tasks.map((t: { name: string }) => t.name);
    assert.ok(names.includes('gated') && names.includes('cleanup-runs'));
    assert.equal(res.body.tasks.find((t: { name: string }) => t.name === 'cleanup-runs').builtin, true);
  });
});
