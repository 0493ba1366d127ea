/** The wire between pool and workers: run packing, reply tags, slots, batch sizing (pure). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes, TroupeError } from '../../src/errors.ts';
import {
  JOB_WIDTH, ReplyKinds, RunWriter, SlotFlags, SlotTable, StringTable, StringTableReader, encodeReason, isBareReply, packReply, readRun, replyKind, replySideMessages, replyTag, resolveBatchSize, singleRun,
} from '../../src/pool/batcher.ts';

test('a lone job that succeeded with no side messages replies with its bare result, unless it is an array', () => {
  const ok = replyTag(ReplyKinds.ok, 0);
  for (const value of [0, 'x', null, undefined, { a: 1 }]) {
    const reply = packReply([ok, value]);
    assert.equal(reply, value);
    assert.equal(isBareReply(reply), true);
  }
  const kept: unknown[][] = [
    [ok, [1, 2]], // an array result: bare, it could not be told from replies
    [replyTag(ReplyKinds.ok, 2), 'x'], // side messages: main must wait for them
    [replyTag(ReplyKinds.error, 0), { name: 'Error', message: 'no' }],
    [replyTag(ReplyKinds.skipped, 0), undefined],
    [ok, 1, ok, 2], // two jobs
  ];
  for (const out of kept) {
    assert.equal(packReply(out), out);
    assert.equal(isBareReply(out), false);
  }
});

test('a run round-trips through structured clone; handler URLs and names go as numbers of the string table', () => {
  const table = new StringTable();
  const writer = new RunWriter(table);
  writer.add(3, 10, 'file:///a.ts', { x: 1 }, 'id-1', 'alpha', 1);
  writer.add(4, 11, 'file:///a.ts', [2], 'id-2', 'alpha', 2);
  writer.add(5, 12, 'file:///b.ts', null, 'id-3', 'beta', 1);
  const wire = structuredClone(writer.finish());
  assert.equal(wire.length, 3 * JOB_WIDTH);
  assert.equal(wire.filter((cell) => typeof cell === 'string' && cell.startsWith('file:')).length, 0, 'no handler URL on the wire');
  assert.deepEqual(readRun(wire, new StringTableReader(table.buffer)), [
    { s: 3, q: 10, h: 'file:///a.ts', i: { x: 1 }, id: 'id-1', n: 'alpha', a: 1 },
    { s: 4, q: 11, h: 'file:///a.ts', i: [2], id: 'id-2', n: 'alpha', a: 2 },
    { s: 5, q: 12, h: 'file:///b.ts', i: null, id: 'id-3', n: 'beta', a: 1 },
  ]);
});

test("a flow parent's children ride in its attempt cell; the jobs around it stay rows of primitives", () => {
  const table = new StringTable();
  const writer = new RunWriter(table);
  const children = [{ id: 'c-1', name: 'fetch', state: 'succeeded' as const, result: 4 }, { id: 'c-2', name: 'fetch', state: 'failed' as const, error: { name: 'Error', message: 'no' } }];
  writer.add(1, 1, 'file:///a.ts', 'x', 'id-1', 'alpha', 1);
  writer.add(2, 2, 'file:///p.ts', null, 'id-2', 'report', 2, children);
  writer.add(3, 3, 'file:///a.ts', 'y', 'id-3', 'alpha', 1);
  const wire = structuredClone(writer.finish());
  assert.equal(wire.length, 3 * JOB_WIDTH);
  assert.equal(wire.filter((cell) => typeof cell === 'object' && cell !== null).length, 1, 'only the parent carries an object');
  assert.deepEqual(readRun(wire, new StringTableReader(table.buffer)), [
    { s: 1, q: 1, h: 'file:///a.ts', i: 'x', id: 'id-1', n: 'alpha', a: 1 },
    { s: 2, q: 2, h: 'file:///p.ts', i: null, id: 'id-2', n: 'report', a: 2, c: children },
    { s: 3, q: 3, h: 'file:///a.ts', i: 'y', id: 'id-3', n: 'alpha', a: 1 },
  ]);
  const single = singleRun(table, 2, 2, 'file:///p.ts', null, 'id-2', 'report', 2, children);
  assert.deepEqual(readRun(structuredClone(single), new StringTableReader(table.buffer))[0]?.c, children);
});

test('a run of one job packed without a writer is the run a writer makes', () => {
  const table = new StringTable();
  const writer = new RunWriter(table);
  writer.add(7, 42, 'file:///c.ts', { y: [1, 2] }, 'id-9', 'gamma', 3);
  const single = singleRun(table, 7, 42, 'file:///c.ts', { y: [1, 2] }, 'id-9', 'gamma', 3);
  assert.deepEqual(single, writer.finish());
  assert.deepEqual(readRun(structuredClone(single), new StringTableReader(table.buffer)), [{ s: 7, q: 42, h: 'file:///c.ts', i: { y: [1, 2] }, id: 'id-9', n: 'gamma', a: 3 }]);
});

test('the string table: numbers for known strings, UTF-8 intact, strings themselves once it is full', () => {
  const table = new StringTable(3, 40);
  const reader = new StringTableReader(structuredClone(table.buffer));
  assert.equal(table.ref('file:///é/名前.ts'), 0);
  assert.equal(table.ref('alpha'), 1);
  assert.equal(table.ref('file:///é/名前.ts'), 0, 'the same number again');
  // A reader made before an entry was written reads it later (same memory).
  assert.equal(reader.read(0), 'file:///é/名前.ts');
  assert.equal(reader.read(1), 'alpha');
  assert.equal(table.ref('a string longer than the bytes left in the table'), 'a string longer than the bytes left in the table');
  assert.equal(table.ref('b'), 2);
  assert.equal(table.ref('c'), 'c', 'no entry left');
  assert.equal(reader.read('c'), 'c');
  assert.equal(reader.read(2), 'b');
  assert.throws(() => reader.read(3), RangeError, 'an entry never written is an error, not an empty string');
});

test('a reply tag carries the outcome and the side-message count', () => {
  for (const kind of Object.values(ReplyKinds)) {
    for (const sent of [0, 1, 1000]) {
      const tag = replyTag(kind, sent);
      assert.equal(replyKind(tag), kind);
      assert.equal(replySideMessages(tag), sent);
    }
  }
});

test('slots are handed out once, cleared on reuse, and record aborts against starts', () => {
  const table = new SlotTable(2);
  const a = table.alloc()!;
  const b = table.alloc()!;
  assert.notEqual(a, b);
  assert.equal(table.alloc(), undefined);
  Atomics.or(table.cells, a * 2, SlotFlags.STARTED);
  assert.equal(table.markAborted(a), SlotFlags.STARTED, 'the flags from before the abort');
  assert.equal(table.flags(a), SlotFlags.STARTED | SlotFlags.ABORTED);
  table.release(a);
  assert.equal(table.alloc(), a);
  assert.equal(table.flags(a), 0);
});

test('waiting jobs are spread over free runs, at most maxBatch each', () => {
  assert.equal(resolveBatchSize(0, 2, 16), 0);
  assert.equal(resolveBatchSize(5, 0, 16), 0);
  assert.equal(resolveBatchSize(1, 2, 16), 1);
  assert.equal(resolveBatchSize(3, 2, 16), 2);
  assert.equal(resolveBatchSize(1000, 1, 16), 16);
});

test('an abort reason keeps its code when it is an error', () => {
  const r = encodeReason(new TroupeError(ErrorCodes.TIMEOUT, 'slow'));
  assert.ok('e' in r);
  assert.equal(r.e.code, ErrorCodes.TIMEOUT);
  assert.deepEqual(encodeReason('shutdown'), { v: 'shutdown' });
});
