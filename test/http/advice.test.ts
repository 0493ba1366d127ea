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
