/** The abort watch: checks for waiting jobs, one listener per distinct signal for adopted jobs. */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { AbortWatch, type Watchable } from '../../src/pool/abort-watch.ts';

function entry(signal: AbortSignal, hardSignal: AbortSignal): Watchable {
  return { job: { signal, hardSignal }, listening: false };
}

test('adopted jobs share one listener per signal and hear its abort; release removes it with the last job', () => {
  const seen: [Watchable, AbortSignal][] = [];
  const watch = new AbortWatch<Watchable>({ onAbort: (e, s) => seen.push([e, s]), sweep: () => false });
  const soft = new AbortController();
  const hard = new AbortController();
  const jobs = Array.from({ length: 20 }, () => entry(soft.signal, hard.signal));
  for (const j of jobs) watch.adopt(j);
  assert.equal(getEventListeners(soft.signal, 'abort').length, 1);
  assert.equal(getEventListeners(hard.signal, 'abort').length, 1);
  hard.abort('stop');
  assert.equal(seen.length, 20);
  assert.ok(seen.every(([, s]) => s === hard.signal));
  for (const j of jobs) watch.release(j);
  assert.equal(getEventListeners(soft.signal, 'abort').length, 0);
  assert.equal(watch.watchedSignals, 0);
});

test('check reports a waiting job whose signal aborted, the hard one first', () => {
  const seen: AbortSignal[] = [];
  const watch = new AbortWatch<Watchable>({ onAbort: (_e, s) => seen.push(s), sweep: () => false });
  const soft = new AbortController();
  const hard = new AbortController();
  const e = entry(soft.signal, hard.signal);
  watch.check(e);
  assert.deepEqual(seen, []);
  soft.abort();
  hard.abort();
  watch.check(e);
  assert.deepEqual(seen, [hard.signal]);
  assert.equal(getEventListeners(soft.signal, 'abort').length, 0, 'checking adds no listener');
});

test('arm runs sweeps while the sweep says jobs are pending', async () => {
  let sweeps = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const watch = new AbortWatch<Watchable>({
    onAbort: () => undefined,
    sweep: () => {
      sweeps++;
      if (sweeps === 3) done();
      return sweeps < 3;
    },
    intervalMs: 1,
  });
  const keepAlive = setTimeout(() => done(), 5000); // the watch's timer is unref'd; this is only a safety net
  watch.arm();
  watch.arm();
  await finished;
  clearTimeout(keepAlive);
  assert.equal(sweeps, 3);
  watch.close();
});
