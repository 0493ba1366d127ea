import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createNodeId, createTaskId, isTaskId } from '../src/ids.ts';

describe('createTaskId', () => {
  it('makes 28 lowercase hex digits that isTaskId accepts', () => {
    const id = createTaskId();
    assert.match(id, /^[0-9a-f]{28}$/);
    assert.equal(isTaskId(id), true);
  });

  it('starts with the millisecond time, so ids sort by creation time', () => {
    const at = Date.UTC(2030, 0, 1);
    const id = createTaskId(at);
    assert.equal(parseInt(id.slice(0, 12), 16), at);
  });

  it('is strictly increasing within a millisecond, across milliseconds and when the clock goes back', () => {
    const base = Date.UTC(2031, 0, 1);
    const times = [base, base, base, base + 1, base + 1, base + 5, base + 2, base - 1000, base + 6];
    const ids = times.map((t) => createTaskId(t));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]} (step ${i})`);
  });

  it('stays increasing through a burst larger than the per-millisecond counter', () => {
    const at = Date.UTC(2032, 0, 1);
    let previous = createTaskId(at);
    for (let i = 0; i < 70_000; i++) {
      const id = createTaskId(at);
      if (!(previous < id)) assert.fail(`not increasing at ${i}: ${previous} then ${id}`);
      previous = id;
    }
    assert.equal(new Set(Array.from({ length: 1000 }, () => createTaskId())).size, 1000);
  });
});

describe('isTaskId', () => {
  it('refuses junk at the doors', () => {
    for (const v of ['', 'x'.repeat(28), '0190000000000000AABBCCDDEEFF', '0190000000000000aabbccddeef', '0190000000000000aabbccddeeff0', '../etc/passwd', 42, null, undefined, {}]) {
      assert.equal(isTaskId(v), false, String(v));
    }
  });
});

describe('createNodeId', () => {
  it('names host, pid and start time, with a random tail', () => {
    const a = createNodeId('box', 123, 1_700_000_000_000);
    assert.match(a, /^box:123:[0-9a-z]+:[0-9a-f]{4}$/);
    assert.equal(a.split(':')[2], (1_700_000_000_000).toString(36));
    const many = new Set(Array.from({ length: 20 }, () => createNodeId('box', 123, 1_700_000_000_000)));
    assert.ok(many.size > 1, 'two runtimes started in the same millisecond on one host still differ');
  });
});
