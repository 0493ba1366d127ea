// The error format of the HTTP API: every error is { error: { code, message, details? } }; a failure inside the
// server is an opaque 500 that leaks no message, stack or path; unknown routes are 404; a stopping runtime is 503.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, TroupeError } from '../../src/errors.ts';
import { statusOfCode, toHttpError } from '../../src/http/errors.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import type { Store } from '../../src/store/store.ts';
import { overrideStore } from '../helpers/store-override.ts';
import { startHarness } from './helpers.ts';

describe('error mapping', () => {
  it('maps each troupe code to its status', () => {
    const expected: Array<[string, number]> = [
      [ErrorCodes.INVALID_INPUT, 422], [ErrorCodes.INVALID_OPTION, 400], [ErrorCodes.UNKNOWN_TASK, 404], [ErrorCodes.NOT_FOUND, 404],
      [ErrorCodes.CONFLICT, 409], [ErrorCodes.CLOSED, 503], [ErrorCodes.UNAUTHORIZED, 401], [ErrorCodes.RESOURCE_LIMIT, 413],
      [ErrorCodes.INTERNAL, 500], [ErrorCodes.STORE, 500], [ErrorCodes.TASK_FAILED, 500],
    ];
    for (const [code, status] of expected) assert.equal(statusOfCode(code), status, code);
  });

  it('never passes on a stack, a cause or the text of an unknown error', () => {
    const internal = toHttpError(new Error('ENOENT /home/secret/file'));
    assert.equal(internal.status, 500);
    assert.equal(internal.body.error.code, ErrorCodes.INTERNAL);
    assert.doesNotMatch(JSON.stringify(internal.body), /secret/);
    const coded = toHttpError(new TroupeError(ErrorCodes.CONFLICT, 'busy', { details: { id: 'x', stack: 'at y', cause: 'z' } }));
    assert.deepEqual(coded.body, { error: { code: ErrorCodes.CONFLICT, message: 'busy', details: { id: 'x' } } });
    const store = toHttpError(new TroupeError(ErrorCodes.STORE, 'cannot open /var/lib/secret.db'));
    assert.equal(store.status, 500);
    assert.equal(store.body.error.code, ErrorCodes.STORE);
    assert.doesNotMatch(JSON.stringify(store.body), /secret/);
  });
});

describe('over HTTP', () => {
  it('answers 500 without details when the store fails, and 404 for unknown routes', async () => {
    const broken = (): Store => {
      return overrideStore(createMemoryStore({}), {
        list: async () => {
          throw new Error('disk I/O error at /var/lib/secret.db');
        },
      });
    };
    const h = await startHarness({ runtime: { store: broken() as never, maintenance: false } });
    try {
      const res = await h.request('GET', '/api/tasks');
      assert.equal(res.status, 500);
      assert.equal(res.body.error.code, ErrorCodes.INTERNAL);
      assert.doesNotMatch(res.text, /secret|disk I\/O|    at /);
      const missing = await h.request('GET', '/api/nothing-here');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, ErrorCodes.NOT_FOUND);
      const wrongMethod = await h.request('PUT', '/api/tasks');
      assert.equal(wrongMethod.status, 404);
      for (const url of ['/api/schedules?x=1', '/api/queues?x=1', '/api/actors?x=1', '/metrics?x=1', '/api/task-types?x=1', `/api/tasks/${'0'.repeat(28)}?x=1`]) {
        const res = await h.request('GET', url);
        assert.equal(res.status, 400, url);
        assert.equal(res.body.error.code, ErrorCodes.INVALID_OPTION, url);
      }
      const withBody = await h.request('POST', '/api/actors/tracker/restart', { body: { now: true } });
      assert.equal(withBody.status, 400);
    } finally {
      await h.close();
    }
  });

  // QA finding 4: the router's refusals came in fastify's shape ({ error: 'Bad Request', code: 'FST_ERR_…' }).
  it('answers URLs the router refuses in troupe\'s shape: 400 for a bad %-escape, 404 for an over-long id', async () => {
    const token = 'errors-token-0123456789abcdef';
    for (const server of [{}, { token }]) {
      const h = await startHarness({ runtime: { maintenance: false }, server });
      try {
        const bad: Array<[string, string]> = [
          ['GET', '/api/tasks/%zz'], ['GET', '/api/tasks/%zz/output'], ['POST', '/api/schedules/%zz/pause'], ['POST', '/api/queues/%zz/pause'],
          ['POST', '/api/actors/%zz/restart'], ['GET', '/assets/%zz'], ['GET', '/api/%zz'], ['GET', '/api/tasks/%C0%80'],
        ];
        for (const [method, url] of bad) {
          const res = await h.request(method, url);
          assert.equal(res.status, 400, `${method} ${url}: ${res.text}`);
          assert.equal(res.body?.error?.code, ErrorCodes.INVALID_OPTION, `${method} ${url}`);
          assert.equal(typeof res.body.error.message, 'string');
          assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        }
        const long = 'a'.repeat(301);
        for (const [method, url] of [['GET', `/api/tasks/${long}`], ['GET', `/api/tasks/${long}/output`], ['POST', `/api/tasks/${long}/cancel`], ['POST', `/api/schedules/${long}/pause`]] as const) {
          const res = await h.request(method, url);
          assert.equal(res.status, 404, `${method} ${url.slice(0, 40)}…: ${res.text}`);
          assert.equal(res.body?.error?.code, ErrorCodes.NOT_FOUND);
          assert.ok(!res.text.includes(long), 'the path is not echoed');
        }
        // A 300-character id is still routed: it is simply not shaped like a task id.
        const atLimit = await h.request('GET', `/api/tasks/${'a'.repeat(300)}`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(atLimit.status, 404);
        assert.equal(atLimit.body.error.code, ErrorCodes.NOT_FOUND);
      } finally {
        await h.close();
      }
    }
  });

  // QA: the routes that change state read no query string, yet took any (`POST /api/tasks/:id/cancel?force=1`
  // cancelled the task), against "every body and query string is checked by a JSON schema that refuses unknown
  // properties" (docs/http.md). Now each refuses it with a 400 and changes nothing.
  it('refuses an unknown query parameter on every route that changes state, and changes nothing', async () => {
    const h = await startHarness({ runtime: { maintenance: false } });
    try {
      const queued = (await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 1, delay: '1h' } })).body.id as string;
      await h.request('POST', '/api/schedules', { body: { task: 'echo', every: '1h', id: 's1' } });
      const cancelled = (await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 2, delay: '1h' } })).body.id as string;
      await h.request('POST', `/api/tasks/${cancelled}/cancel`);
      const refused: Array<[string, string, unknown?]> = [
        ['POST', '/api/tasks?x=1', { name: 'echo', input: 3 }],
        ['POST', '/api/tasks/bulk?x=1', { items: [{ name: 'echo', input: 4 }] }],
        ['POST', `/api/tasks/${queued}/cancel?force=1`],
        ['POST', `/api/tasks/${cancelled}/retry?x=1`],
        ['POST', '/api/queues/echo/pause?x=1'],
        ['POST', '/api/schedules?x=1', { task: 'echo', every: '1h', id: 's2' }],
        ['POST', '/api/schedules/s1/pause?x=1'],
        ['POST', '/api/schedules/s1/trigger?x=1'],
        ['DELETE', '/api/schedules/s1?x=1'],
        ['DELETE', '/api/schedules/s1', { x: 1 }],
        ['POST', '/api/actors/tracker/restart?x=1'],
      ];
      for (const [method, url, body] of refused) {
        const res = await h.request(method, url, body === undefined ? {} : { body });
        assert.equal(res.status, 400, `${method} ${url}: ${res.text}`);
        assert.equal(res.body?.error?.code, ErrorCodes.INVALID_OPTION, `${method} ${url}`);
      }
      assert.equal((await h.rt.get(queued))?.state, 'scheduled');
      assert.equal((await h.rt.get(cancelled))?.state, 'cancelled');
      assert.deepEqual(h.rt.pausedNames(), []);
      const schedules = await h.rt.schedules();
      assert.deepEqual(schedules.map((s) => [s.id, s.paused]), [['s1', false]]);
      assert.equal((await h.rt.list({ limit: 100 })).tasks.length, 2);
      assert.equal(h.rt.tree().children?.find((c) => c.address === 'tracker')?.restarts, 0);
    } finally {
      await h.close();
    }
  });

  // QA: `/api/events?id=zzz` or `?output=2` opened a stream that could never send the facts asked for.
  it('refuses a malformed filter of /api/events before opening the stream', async () => {
    const h = await startHarness({ runtime: { maintenance: false } });
    try {
      for (const query of ['id=zzz', 'id=../x', 'output=2', 'output=yes']) {
        const res = await h.request('GET', `/api/events?${query}`, { headers: { accept: 'text/event-stream' } });
        assert.equal(res.status, 400, `${query}: ${res.text}`);
        assert.equal(res.body?.error?.code, ErrorCodes.INVALID_OPTION, query);
      }
    } finally {
      await h.close();
    }
  });

  it('answers 503 once the runtime is closing or closed', async () => {
    const h = await startHarness({ runtime: { maintenance: false } });
    try {
      await h.rt.close();
      const res = await h.request('POST', '/api/tasks', { body: { name: 'echo' } });
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, ErrorCodes.CLOSED);
      const health = await h.request('GET', '/api/health');
      assert.equal(health.status, 503);
      assert.equal(health.body.status, 'stopped');
    } finally {
      await h.close();
    }
  });
});
