// The output feed's "no line lost or doubled" rule. The window between "subscribed" and "stored lines read" is
// a race, so it is driven here step by step with a scripted runtime, and then exercised for real: a client that
// connects while a command prints 20,000 lines as fast as it can gets each line exactly once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Runtime, TaskView } from '../../src/runtime.ts';
import type { OutputLine } from '../../src/task.ts';
import { TaskOutputFeed } from '../../src/http/output-stream.ts';
import type { SseStream } from '../../src/http/sse.ts';
import { SseClient, startHarness, type Harness } from './helpers.ts';

const ID = '0'.repeat(27) + '1';
const line = (seq: number): OutputLine => ({ seq, stream: 'stdout', text: `l${seq}`, at: seq });

/** A runtime stand-in whose store contents, facts and flush the test controls. */
function scriptedRuntime(initiallyStored: number[]) {
  const stored = initiallyStored.map(line);
  const listeners = new Map<string, Set<(f: unknown) => void>>();
  let releaseFlush!: () => void;
  const flushed = new Promise<void>((r) => (releaseFlush = r));
  const view: TaskView = { id: ID, name: 't', state: 'running', input: null, attempts: 1, maxAttempts: 1, priority: 0, weight: 1, timings: { createdAt: 0, runAt: 0 } };
  const rt = {
    on(type: string, fn: (f: unknown) => void) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type)!.add(fn);
      return () => listeners.get(type)!.delete(fn);
    },
    get: async () => view,
    output: async (_id: string, { after = -1, limit = 1000 }: { after?: number; limit?: number } = {}) => stored.filter((l) => l.seq > after).slice(0, limit),
    flush: () => flushed,
    // The task runs here: its end comes as a fact (the scripted one), never from the store's watch, and its lines
    // live (a memory store: no reads of stored lines for a task run elsewhere).
    whenFinal: () => new Promise(() => {}),
    store: { kind: 'memory' },
  };
  return {
    rt: rt as unknown as Runtime,
    emit(type: string, fact: Record<string, unknown>) {
      for (const fn of listeners.get(type) ?? []) fn({ type, id: ID, name: 't', at: 0, ...fact });
    },
    commit: (...seqs: number[]) => stored.push(...seqs.map(line)),
    releaseFlush: () => releaseFlush(),
    subscribers: () => [...listeners.values()].reduce((n, s) => n + s.size, 0),
  };
}

/** An SSE stream stand-in that records what the feed sends. */
function recordingStream() {
  const sent: Array<{ event: string; data: any; id?: string | number }> = [];
  let closed = false;
  const onClose: Array<() => void> = [];
  const stream = {
    send(event: string, data: unknown, id?: string | number) {
      if (closed) return false;
      sent.push({ event, data, ...(id !== undefined ? { id } : {}) });
      return true;
    },
    sendJson(event: string, json: string, id?: string | number) {
      return stream.send(event, JSON.parse(json), id);
    },
    close() {
      if (closed) return;
      closed = true;
      for (const fn of onClose) fn();
    },
    onClose(fn: () => void) {
      onClose.push(fn);
    },
  };
  return { stream: stream as unknown as SseStream, sent, isClosed: () => closed, seqs: () => sent.filter((s) => s.event === 'output').map((s) => s.data.seq) };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('TaskOutputFeed (scripted race)', () => {
  it('sends lines committed after the stored read but published before the subscription, once the tracker flushed', async () => {
    const s = scriptedRuntime([1, 2]);
    const rec = recordingStream();
    const opened = (await TaskOutputFeed.open(s.rt, ID))!;
    // Lines 3 and 4 were published before we subscribed; they are not stored yet.
    const piping = opened.feed.pipe(rec.stream, opened.view);
    await piping;
    s.emit('task.output', { line: line(2) }); // a duplicate of a stored line: skipped
    s.emit('task.output', { line: line(5) }); // the first live line
    assert.deepEqual(rec.seqs(), [1, 2, 5]);
    s.commit(3, 4, 5);
    s.releaseFlush();
    await turn();
    await turn();
    assert.deepEqual(rec.seqs(), [1, 2, 5, 3, 4]);
    s.emit('task.output', { line: line(6) });
    s.commit(6);
    s.emit('task.succeeded', { attempt: 1, result: 7, durationMs: 1 });
    await turn();
    await turn();
    assert.deepEqual(rec.seqs(), [1, 2, 5, 3, 4, 6]);
    assert.deepEqual(rec.sent.at(-1), { event: 'end', data: { state: 'succeeded', attempts: 1, result: 7 } });
    assert.equal(rec.isClosed(), true);
    assert.equal(s.subscribers(), 0);
  });

  it('catches up at the outcome when the flush never comes (a tracker that is never idle)', async () => {
    const s = scriptedRuntime([10]);
    const rec = recordingStream();
    const opened = (await TaskOutputFeed.open(s.rt, ID))!;
    await opened.feed.pipe(rec.stream, opened.view);
    s.emit('task.output', { line: line(13) });
    s.commit(11, 12, 13);
    s.emit('task.failed', { attempt: 1, error: { name: 'Error', message: 'x', stack: 'at secret.js:1' } });
    await turn();
    await turn();
    assert.deepEqual(rec.seqs(), [10, 13, 11, 12]);
    const end = rec.sent.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(end.data.error.stack, undefined);
    assert.equal(rec.sent.filter((x) => x.event === 'end').length, 1);
  });

  it('holds facts that arrive during the stored read and replays them after it, without doubles', async () => {
    const s = scriptedRuntime([1, 2, 3]);
    const rec = recordingStream();
    const opened = (await TaskOutputFeed.open(s.rt, ID))!;
    s.emit('task.output', { line: line(3) });
    s.emit('task.progress', { progress: { fraction: 0.5 } });
    s.emit('task.output', { line: line(4) });
    await opened.feed.pipe(rec.stream, opened.view);
    assert.deepEqual(rec.seqs(), [1, 2, 3, 4]);
    assert.ok(rec.sent.some((x) => x.event === 'progress' && x.data.fraction === 0.5));
    rec.stream.close();
    assert.equal(s.subscribers(), 0, 'closing the stream unsubscribes');
  });
});

describe('output stream of a chatty command (real)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ runtime: { output: { maxLines: 100_000 } } });
  });
  after(async () => {
    await h?.close();
  });

  it('delivers each of 20,000 lines exactly once to a client that connects mid-run', async () => {
    const n = 20_000;
    const { body } = await h.request('POST', '/api/tasks', { body: { name: 'lines', input: { n } } });
    await new Promise<void>((resolve) => {
      const off = h.rt.on('task.output', (f) => {
        if (f.id === body.id && f.line.text === 'line 500') {
          off();
          resolve();
        }
      });
    });
    const client = new SseClient(`${h.url}/api/tasks/${body.id}/output`);
    await client.next((e) => e.event === 'end', 30_000);
    await client.closed;
    const got = client.of('output').map((e) => e.data.text as string);
    assert.equal(new Set(got).size, got.length, 'no line twice');
    assert.equal(got.length, n, 'no line lost');
    assert.equal(client.of('end')[0]!.data.state, 'succeeded');
  });
});
