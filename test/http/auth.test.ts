// Security of the HTTP API (issue 4): no token on a non-loopback bind is refused at startup; with a token, every
// API route needs it (401 without or with a wrong one); the dashboard page loads without it; without a token,
// requests addressed to another host (DNS rebinding) and cross-origin writes (CSRF) are refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { createTokenCheck, isLoopbackHost } from '../../src/http/auth.ts';
import { resolveListen, startServer } from '../../src/http/listen.ts';
import { createServer } from '../../src/http/server.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { startHarness, type Harness } from './helpers.ts';

const TOKEN = 'a-long-enough-test-token-0123456789';

/** A raw request, so the Host and Origin headers are exactly what the test says. */
function rawRequest(port: number, options: { method?: string; path: string; headers?: Record<string, string> }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('binding', () => {
  let rt: Runtime;
  before(async () => {
    rt = await createRuntime({ store: 'memory', maintenance: false });
  });
  after(async () => {
    await rt?.close();
  });

  it('refuses a non-loopback address without a token, before binding anything', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      assert.throws(() => resolveListen({ host, env: {} }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION, host);
      await assert.rejects(startServer(rt, { host, port: 0, env: {} }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
    }
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.doesNotThrow(() => resolveListen({ host, env: {} }), host);
    assert.equal(resolveListen({ env: {} }).host, '127.0.0.1');
    assert.equal(resolveListen({ env: {} }).port, 7420);
  });

  it('binds a non-loopback address with a token from the config or TROUPE_TOKEN', async () => {
    assert.equal(resolveListen({ host: '0.0.0.0', env: { TROUPE_TOKEN: TOKEN } }).token, TOKEN);
    const server = await startServer(rt, { host: '0.0.0.0', port: 0, token: TOKEN, env: {} });
    try {
      assert.equal(server.authenticated, true);
      const denied = await rawRequest(server.port, { path: '/api/tasks' });
      assert.equal(denied.status, 401);
      const ok = await rawRequest(server.port, { path: '/api/tasks', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200);
    } finally {
      await server.close();
    }
  });

  it('refuses a short token and bad ports', () => {
    assert.throws(() => createServer(rt, { token: 'short' }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
    for (const port of [-1, 70_000, 1.5]) assert.throws(() => resolveListen({ port, env: {} }), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION);
  });

  it('refuses unknown options and values of the wrong type, naming the option, as the config\'s `http` block does', async () => {
    // startServer names the listener's own settings as the config's `http` block does (`http.host`).
    const refused = (option: string) => (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION && new RegExp(`^Expected \`(http\\.)?${option}\``).test(e.message);
    const bad: [Record<string, unknown>, string][] = [
      [{ bogus: 1 }, 'bogus'],
      [{ Token: TOKEN }, 'Token'],
      [{ stallMs: 'x' }, 'stallMs'],
      [{ stallMs: 0 }, 'stallMs'],
      [{ heartbeatMs: -5 }, 'heartbeatMs'],
      [{ logger: 'yes' }, 'logger'],
      [{ processMetrics: 1 }, 'processMetrics'],
      [{ host: 7 }, 'host'],
      [{ admission: { intervalMs: 1000, every: 5 } }, 'admission.every'],
      [{ admission: { intervalMs: 10 } }, 'admission.intervalMs'],
    ];
    for (const [options, option] of bad) {
      assert.throws(() => createServer(rt, options as never), refused(option), JSON.stringify(options));
      await assert.rejects(startServer(rt, { port: 0, env: {}, ...options } as never), refused(option), JSON.stringify(options));
    }
    await assert.rejects(startServer(rt, { port: 0, env: {}, prot: 0 } as never), refused('prot'));
    assert.throws(() => createServer(rt, { port: 0 } as never), refused('port'), 'createServer does not listen: no port');
  });

  it('names loopback addresses correctly', () => {
    assert.equal(isLoopbackHost('127.0.0.1'), true);
    assert.equal(isLoopbackHost('::ffff:127.0.0.1'), true);
    assert.equal(isLoopbackHost('128.0.0.1'), false);
    assert.equal(isLoopbackHost('localhost.evil.com'), false);
  });
});

describe('bearer token', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ server: { token: TOKEN } });
  });
  after(async () => {
    await h?.close();
  });

  it('answers 401 without the token or with a wrong one, on every API route and /metrics', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/api/tasks'], ['POST', '/api/tasks'], ['GET', '/api/health'], ['GET', '/metrics'], ['GET', '/api/actors'],
      ['GET', '/api/events'], ['POST', '/api/system/maintenance/cleanup-runs'], ['GET', '/api/schedules'], ['GET', '/api/nope'],
      ['GET', '/API/tasks'], ['GET', '/%61pi/tasks'],
    ];
    const before = JSON.stringify((await h.rt.counts()).byState);
    for (const [method, path] of routes) {
      for (const authorization of [undefined, 'Bearer wrong-token-wrong-token-wrong', `Bearer ${TOKEN}x`, TOKEN, `Basic ${TOKEN}`]) {
        const res = await h.request(method, path, { headers: authorization ? { authorization } : {}, ...(method === 'POST' ? { body: { name: 'echo' } } : {}) });
        assert.equal(res.status, 401, `${method} ${path} with ${authorization}`);
        assert.equal(res.body.error.code, ErrorCodes.UNAUTHORIZED);
      }
    }
    assert.equal(JSON.stringify((await h.rt.counts()).byState), before, 'nothing was enqueued');
  });

  it('serves the API with the right token, and the dashboard without one', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const res = await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 1 }, headers: auth });
    assert.equal(res.status, 202);
    assert.equal((await h.request('GET', `/api/tasks/${res.body.id}`, { headers: { authorization: `bearer  ${TOKEN}` } })).status, 200);
    assert.equal((await h.request('GET', '/metrics', { headers: auth })).status, 200);
    const page = await h.request('GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal((await h.request('GET', '/assets/app.js')).status, 200);
    assert.equal((await h.request('GET', '/assets/app.css')).status, 200);
    assert.equal((await h.request('GET', '/assets/api.js')).status, 200);
  });

  it('compares tokens without early exit on length or prefix', () => {
    const check = createTokenCheck(TOKEN);
    assert.equal(check(`Bearer ${TOKEN}`), true);
    assert.equal(check(`Bearer ${TOKEN.slice(0, -1)}`), false);
    assert.equal(check('Bearer '), false);
    assert.equal(check(undefined), false);
  });
});

describe('without a token', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('serves only requests addressed to this machine (DNS rebinding)', async () => {
    const evil = await rawRequest(h.server.port, { path: '/api/tasks', headers: { host: 'evil.example:7420' } });
    assert.equal(evil.status, 403);
    assert.equal(evil.body.error.code, ErrorCodes.UNAUTHORIZED);
    for (const host of [`127.0.0.1:${h.server.port}`, `localhost:${h.server.port}`, `[::1]:${h.server.port}`]) {
      assert.equal((await rawRequest(h.server.port, { path: '/api/tasks', headers: { host } })).status, 200, host);
    }
  });

  it('refuses writes from pages of another origin (CSRF) and changes nothing', async () => {
    const before = JSON.stringify((await h.rt.counts()).byState);
    const crossSite: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null' }];
    for (const headers of crossSite) {
      const res = await h.request('POST', '/api/system/maintenance/cleanup-runs', { headers });
      assert.equal(res.status, 403, JSON.stringify(headers));
    }
    assert.equal(JSON.stringify((await h.rt.counts()).byState), before);
    const same = await h.request('POST', '/api/tasks', { body: { name: 'echo' }, headers: { origin: h.url, 'sec-fetch-site': 'same-origin' } });
    assert.equal(same.status, 202);
  });

  it('serves only the fixed dashboard files', async () => {
    for (const path of ['/assets/../server.ts', '/assets/%2e%2e%2fserver.ts', '/assets/index.html', '/assets/app.js.map', '/assets/constructor', '/assets/__proto__', '/src/http/server.ts']) {
      const res = await h.request('GET', path);
      assert.equal(res.status, 404, path);
      assert.equal(res.body.error.code, ErrorCodes.NOT_FOUND, path);
    }
  });
});
