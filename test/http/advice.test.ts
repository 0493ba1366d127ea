// GET /api/tasks/advice and the adaptive-limit gauge, over real HTTP on loopback.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRuntime } from '../../src/runtime.ts';
import { startServer } from '../../src/http/listen.ts';

describe('advice over HTTP', () => {
  it('answers with recommendations and evidence; 404 for an unknown name, 400 without one', async () => {
    await using rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { io: { concurrency: { adaptive: true, min: 1, max: 8 }, run: (i: number) => i } } });
    await using server = await startServer(rt, { port: 0 });
    await rt.runAll(Array.from({ length: 30 }, (_, i) => ({ name: 'io', input: i })));
    const ok = await fetch(`${server.url}/api/tasks/advice?name=io`);
    assert.equal(ok.status, 200);
    const advice = (await ok.json()) as { name: string; enoughData: boolean; recommendations: unknown[] };
    assert.equal(advice.name, 'io');
    assert.equal(advice.enoughData, true);
    const missing = await fetch(`${server.url}/api/tasks/advice?name=nope`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'TROUPE_ERR_UNKNOWN_TASK');
    assert.equal((await fetch(`${server.url}/api/tasks/advice`)).status, 400);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /troupe_task_concurrency_limit\{name="io"\} \d+/);
  });
});

describe('enqueue options for groups and dedup over HTTP', () => {
  it('accepts group and dedup (throttle returns the first id); rejects a bad mode with 400', async () => {
    await using rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { t: { run: () => 1 } } });
    await using server = await startServer(rt, { port: 0 });
    const post = (body: unknown) => fetch(`${server.url}/api/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const a = await post({ name: 't', group: 'tenant-1', dedup: { key: 'k', mode: 'throttle', window: '1m' } });
    assert.equal(a.status, 202);
    const b = await post({ name: 't', dedup: { key: 'k', mode: 'throttle', window: '1m' } });
    assert.equal(((await a.json()) as { id: string }).id, ((await b.json()) as { id: string }).id);
    assert.equal((await post({ name: 't', dedup: { key: 'k', mode: 'sometimes', window: '1m' } })).status, 400);
    const [task] = (await rt.list()).tasks;
    assert.equal((task as { group?: string }).group, 'tenant-1');
  });
});

describe('a retry policy per enqueue over HTTP', () => {
  it('accepts `retry` as rt.enqueue does; a bad one is a 400 naming the field, with nothing stored', async () => {
    let calls = 0;
    await using rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { flaky: { run: () => { if (++calls < 3) throw new Error('not yet'); return calls; } } } });
    await using server = await startServer(rt, { port: 0 });
    const post = (body: unknown) => fetch(`${server.url}/api/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const bad = await post({ name: 'flaky', retry: { attempts: 0 } });
    assert.equal(bad.status, 400);
    const error = ((await bad.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'TROUPE_ERR_INVALID_OPTION');
    assert.match(error.message, /retry\.attempts/);
    assert.equal((await rt.list()).tasks.length, 0);
    const ok = await post({ name: 'flaky', retry: { attempts: 3, backoff: 'fixed', delay: 1, jitter: 0 } });
    assert.equal(ok.status, 202);
    const { id } = (await ok.json()) as { id: string };
    assert.equal(await rt.whenFinal(id), 3);
    assert.deepEqual([(await rt.get(id))?.attempts, (await rt.get(id))?.maxAttempts], [3, 3]);
  });
});
