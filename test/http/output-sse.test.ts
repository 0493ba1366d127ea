// Task output over HTTP: JSON pages and the SSE stream (stored lines, live lines and progress, one final end
// event — also for a client that connects after the end), resume with Last-Event-ID, heartbeats, and cleanup
// when the client goes away (issue 4).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/wait-for.ts';
import { SERVER_CLOSING } from '../../src/http/server.ts';
import { SseClient, defaultTasks, node, sharedFixture, startHarness, type Harness } from './helpers.ts';

let h: Harness;
before(async () => {
  h = await startHarness({ server: { heartbeatMs: 25 } });
});
after(async () => {
  await h?.close();
});

async function enqueueGated(lines: number, gate: string): Promise<string> {
  const res = await h.request('POST', '/api/tasks', { body: { name: 'gated', input: { lines, gate } } });
  assert.equal(res.status, 202);
  return res.body.id;
}

const texts = (c: SseClient) => c.of('output').map((e) => e.data.text);

async function sseClients(): Promise<number> {
  const text = (await h.request('GET', '/metrics')).text;
  return Number(/^troupe_http_sse_clients (\d+)/m.exec(text)?.[1]);
}

describe('GET /api/tasks/:id/output (SSE)', () => {
  it('streams lines and progress before the task ends, then one end event, then closes', async () => {
    const id = await enqueueGated(3, 'live');
    const client = new SseClient(`${h.url}/api/tasks/${id}/output`);
    assert.equal(await client.status, 200);
    await client.next((e) => e.event === 'output' && e.data.text === 'line 3');
    await client.next((e) => e.event === 'progress' && e.data.done === 3);
    // The task is still waiting for its gate: the lines arrived before the end.
    assert.equal((await h.rt.get(id))?.state, 'running');
    assert.equal(client.of('end').length, 0);
    await h.openGate('live');
    const end = await client.next((e) => e.event === 'end');
    await client.closed;
    assert.deepEqual(end.data, { state: 'succeeded', attempts: 1, result: { ok: true, lines: 4 } });
    assert.deepEqual(texts(client), ['line 1', 'line 2', 'line 3', 'after gate']);
    assert.equal(client.of('end').length, 1);
    assert.equal(client.events.at(-1)!.event, 'end');
    const seqs = client.of('output').map((e) => Number(e.id));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, seqs.length);
    assert.deepEqual(client.of('progress').at(-1)!.data, { fraction: 1, done: 4, total: 4 });
  });

  it('gives a client that connects after the end the stored lines and the end event', async () => {
    const id = await enqueueGated(2, 'late');
    await h.openGate('late');
    await waitFor(async () => (await h.rt.get(id))?.state === 'succeeded', { timeout: 5000 });
    const client = new SseClient(`${h.url}/api/tasks/${id}/output`);
    await client.closed;
    assert.deepEqual(texts(client), ['line 1', 'line 2', 'after gate']);
    assert.deepEqual(client.events.map((e) => e.event).filter((e) => e !== ':comment').slice(-1), ['end']);
    assert.equal(client.of('end')[0]!.data.state, 'succeeded');
  });

  it('sends the end event of a cancelled and of a failed task', async () => {
    const id = await enqueueGated(1, 'never');
    const client = new SseClient(`${h.url}/api/tasks/${id}/output`);
    await client.next((e) => e.event === 'output' && e.data.text === 'line 1');
    await h.request('POST', `/api/tasks/${id}/cancel`);
    const end = await client.next((e) => e.event === 'end');
    // QA finding 6: the live end of a cancel was { state } alone; it has attempts and error, as on reconnect.
    const cancelled = { state: 'cancelled', attempts: 1, error: { name: 'TroupeError', code: 'TROUPE_ERR_CANCELLED', message: 'cancelled by user' } };
    assert.deepEqual(end.data, cancelled);
    await client.closed;
    const later = new SseClient(`${h.url}/api/tasks/${id}/output`);
    await later.closed;
    assert.deepEqual(later.of('end')[0]!.data, end.data, 'the live end and the end a later client gets agree');

    const scheduled = await h.request('POST', '/api/tasks', { body: { name: 'echo', input: 1, delay: '1h' } });
    const c3 = new SseClient(`${h.url}/api/tasks/${scheduled.body.id}/output`);
    await c3.next((e) => e.event === 'state' && e.data.state === 'scheduled');
    await h.request('POST', `/api/tasks/${scheduled.body.id}/cancel`);
    const end3 = await c3.next((e) => e.event === 'end');
    assert.deepEqual(end3.data, { ...cancelled, attempts: 0 });
    await c3.closed;

    const failed = await h.request('POST', '/api/tasks', { body: { name: 'boom' } });
    const c2 = new SseClient(`${h.url}/api/tasks/${failed.body.id}/output`);
    const end2 = await c2.next((e) => e.event === 'end');
    assert.equal(end2.data.state, 'failed');
    assert.equal(end2.data.error.message, 'boom');
    assert.equal(end2.data.error.stack, undefined);
    await c2.closed;
  });

  it('resumes after Last-Event-ID without repeating lines', async () => {
    const id = await enqueueGated(4, 'resume');
    await h.openGate('resume');
    await waitFor(async () => (await h.rt.get(id))?.state === 'succeeded', { timeout: 5000 });
    const all = new SseClient(`${h.url}/api/tasks/${id}/output`);
    await all.closed;
    const second = all.of('output')[1]!;
    const resumed = new SseClient(`${h.url}/api/tasks/${id}/output`, { 'last-event-id': second.id! });
    await resumed.closed;
    assert.deepEqual(texts(resumed), ['line 3', 'line 4', 'after gate']);
    const after = new SseClient(`${h.url}/api/tasks/${id}/output?after=${second.id}`);
    await after.closed;
    assert.deepEqual(texts(after), ['line 3', 'line 4', 'after gate']);
  });

  it('sends heartbeat comments while idle, and cleans up when the client goes away', async () => {
    const id = await enqueueGated(1, 'heartbeat');
    const client = new SseClient(`${h.url}/api/tasks/${id}/output`);
    await client.next((e) => e.event === ':comment' && e.comment === 'ping');
    assert.equal(await sseClients(), 1);
    client.close();
    await client.closed;
    await waitFor(async () => (await sseClients()) === 0, { timeout: 3000, label: 'stream closed on the server' });
    await h.request('POST', `/api/tasks/${id}/cancel`);
  });

  it('answers 404 as JSON for an unknown task, before any stream', async () => {
    const client = new SseClient(`${h.url}/api/tasks/${'0'.repeat(28)}/output`);
    assert.equal(await client.status, 404);
    await client.closed;
  });
});

describe('GET /api/tasks/:id/output (JSON)', () => {
  it('pages the stored lines with after and limit', async () => {
    const id = await enqueueGated(3, 'json');
    await h.openGate('json');
    await waitFor(async () => (await h.rt.get(id))?.state === 'succeeded', { timeout: 5000 });
    const all = await h.request('GET', `/api/tasks/${id}/output`);
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.lines.map((l: { text: string }) => l.text), ['line 1', 'line 2', 'line 3', 'after gate']);
    const first = all.body.lines[0];
    assert.deepEqual(Object.keys(first).sort(), ['at', 'seq', 'stream', 'text']);
    const page = await h.request('GET', `/api/tasks/${id}/output?after=${first.seq}&limit=2`);
    assert.deepEqual(page.body.lines.map((l: { text: string }) => l.text), ['line 2', 'line 3']);
    for (const q of ['after=-1', 'limit=0', 'limit=x', 'bogus=1']) assert.equal((await h.request('GET', `/api/tasks/${id}/output?${q}`)).status, 400, q);
  });
});

// QA finding 5: closing the server (what `troupe serve` does first on SIGTERM) ended every stream silently.
describe('event streams when the server closes', () => {
  it('sends each open stream a shutdown event, then closes it', async () => {
    const own = await startHarness({ runtime: { maintenance: false } });
    try {
      const res = await own.request('POST', '/api/tasks', { body: { name: 'gated', input: { lines: 1, gate: 'never' } } });
      const id = res.body.id as string;
      const output = new SseClient(`${own.url}/api/tasks/${id}/output`);
      const events = new SseClient(`${own.url}/api/events`);
      await output.next((e) => e.event === 'output' && e.data.text === 'line 1');
      await events.next((e) => e.event === 'hello');
      await own.server.close();
      await Promise.all([output.closed, events.closed]);
      for (const client of [output, events]) {
        const last = client.events.filter((e) => e.event !== ':comment').at(-1)!;
        assert.equal(last.event, 'shutdown');
        assert.deepEqual(last.data, { reason: SERVER_CLOSING });
        assert.equal(client.of('shutdown').length, 1);
      }
      assert.equal(output.of('end').length, 0);
      // The task itself carries on: the server closed, not the runtime.
      assert.equal((await own.rt.get(id))?.state, 'running');
      await own.rt.cancel(id);
    } finally {
      await own.close();
    }
  });

  it('shows the runtime stopping on /api/events, and shutdown on output streams, when the runtime stops first', async () => {
    const own = await startHarness({ runtime: { maintenance: false } });
    try {
      const res = await own.request('POST', '/api/tasks', { body: { name: 'gated', input: { lines: 1, gate: 'never' } } });
      const output = new SseClient(`${own.url}/api/tasks/${res.body.id}/output`);
      const events = new SseClient(`${own.url}/api/events`);
      await output.next((e) => e.event === 'output' && e.data.text === 'line 1');
      await events.next((e) => e.event === 'hello');
      await own.rt.close({ timeout: 50 });
      await Promise.all([output.closed, events.closed]);
      assert.deepEqual(events.of('runtime.status').map((e) => e.data.status), ['stopping', 'stopped']);
      assert.equal(output.of('shutdown').length + output.of('end').length, 1, 'the output stream says why it stops');
    } finally {
      await own.close();
    }
  });
});

// QA finding (cli 7): `troupe logs -f` of a cancelled task ended before the lines its process printed while it
// stopped; `troupe logs` afterwards showed them.
describe('the output stream of a cancelled task', () => {
  it('ends after the lines the process printed while it stopped, once they are stored', async () => {
    const own = await startHarness({
      runtime: { maintenance: false },
      tasks: (dir) => ({ ...defaultTasks(dir), stubborn: { command: node, args: [sharedFixture('commands/ignore-sigterm.js')], killGrace: '200ms' } }) as never,
    });
    try {
      const res = await own.request('POST', '/api/tasks', { body: { name: 'stubborn' } });
      const id = res.body.id as string;
      const stopped = new Promise<void>((resolve) => {
        const off = own.rt.on('task.stopped', (fact) => {
          if (fact.id !== id) return;
          off();
          resolve();
        });
      });
      const client = new SseClient(`${own.url}/api/tasks/${id}/output`);
      await client.next((e) => e.event === 'output' && e.data.text === 'ready');
      assert.equal((await own.request('POST', `/api/tasks/${id}/cancel`)).status, 200);
      await client.closed;
      await stopped;
      const stored = (await own.rt.output(id)).map((l) => l.text);
      assert.deepEqual(stored, ['ready', 'got SIGTERM']);
      assert.deepEqual(client.of('output').map((e) => e.data.text), stored);
      assert.equal(client.events.filter((e) => e.event !== ':comment').at(-1)!.event, 'end');
      assert.equal(client.of('end')[0]!.data.state, 'cancelled');
    } finally {
      await own.close();
    }
  });
});
