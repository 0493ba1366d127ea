// The handle's output iterator: lines buffered first, then live, bounded by its caps behind one marker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandleState } from '../src/task-handle.ts';
import type { OutputLine } from '../src/task.ts';

/** `n` lines of one pipe chunk: consecutive seqs, one stream, one time (as the tracker publishes them). */
function chunk(seq: number, n: number, at: number, stream: 'stdout' | 'stderr' = 'stdout'): OutputLine[] {
  return Array.from({ length: n }, (_, i) => ({ seq: seq + i, stream, text: `line ${seq + i}`, at }));
}

const handle = (maxLines: number, maxBytes = 10_000_000) => new HandleState('t1', 'printer', { maxLines, maxBytes }, async () => false);

async function collect(h: HandleState, into: OutputLine[]): Promise<void> {
  for await (const line of h.output) into.push(line);
}

describe('HandleState.on', () => {
  it('refuses an unknown event or a listener that is not a function with TROUPE_ERR_INVALID_OPTION', () => {
    const h = handle(10);
    for (const [event, listener] of [['started', () => {}], ['__proto__', () => {}], ['progress', 5]] as const) {
      assert.throws(() => h.on(event as never, listener as never), { code: 'TROUPE_ERR_INVALID_OPTION' }, String(event));
    }
    const seen: number[] = [];
    const off = h.on('progress', (p) => seen.push(p.fraction));
    h.setProgress({ fraction: 0.5 });
    off();
    h.setProgress({ fraction: 1 });
    assert.deepEqual(seen, [0.5]);
  });
});

describe('HandleState output', () => {
  it('gives every line buffered before the iteration, then the live ones, in order, and ends with the task', async () => {
    const h = handle(1000);
    const before = [...chunk(1, 5, 100), ...chunk(6, 3, 100, 'stderr'), ...chunk(20, 1, 101)];
    for (const line of before) h.pushLine(line);
    const got: OutputLine[] = [];
    const done = collect(h, got);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(got, before);
    const live = [...chunk(21, 4, 102), ...chunk(40, 2, 103)];
    for (const line of live) h.pushLine(line);
    h.end();
    await done;
    assert.deepEqual(got, [...before, ...live]);
  });

  it('keeps the newest maxLines behind one marker that counts the dropped lines', async () => {
    const h = handle(20);
    const all = [...chunk(1, 30, 100), ...chunk(31, 10, 101, 'stderr'), ...chunk(41, 10, 102)];
    for (const line of all) h.pushLine(line);
    h.end();
    const got: OutputLine[] = [];
    await collect(h, got);
    assert.deepEqual(got[0], { seq: -1, stream: 'marker', text: '[30 earlier lines dropped]', at: 101 });
    assert.deepEqual(got.slice(1), all.slice(30));
  });

  it('keeps the newest lines within maxBytes too (UTF-8 bytes of the texts)', async () => {
    // 'line N' is 6 bytes for N < 10 and 7 up to 99: 30 bytes hold the newest four of lines 1..40
    const h = handle(1000, 30);
    const all = chunk(1, 40, 100);
    for (const line of all) h.pushLine(line);
    h.end();
    const got: OutputLine[] = [];
    await collect(h, got);
    assert.deepEqual(got[0], { seq: -1, stream: 'marker', text: '[36 earlier lines dropped]', at: 100 });
    assert.deepEqual(got.slice(1), all.slice(36));
  });

  it('lets two iterators read the same lines, one from the start and one that joins late', async () => {
    const h = handle(1000);
    const early: OutputLine[] = [];
    const first = collect(h, early);
    const lines = [...chunk(1, 100, 100), ...chunk(101, 100, 101)];
    for (const line of lines.slice(0, 150)) h.pushLine(line);
    await new Promise((resolve) => setImmediate(resolve));
    const late: OutputLine[] = [];
    const second = collect(h, late);
    for (const line of lines.slice(150)) h.pushLine(line);
    h.end();
    await Promise.all([first, second]);
    assert.deepEqual(early, lines);
    assert.deepEqual(late, lines);
  });
});
