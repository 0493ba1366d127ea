/** start-plan.ts: which tasks of a batch its insert may start, as the claim after it would take them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickStarts, startsInInsert, type StartCandidate } from '../../src/store/start-plan.ts';
import type { ClaimRequest } from '../../src/store/store.ts';

const NOW = 1_000_000;
let seq = 0;

type Row = StartCandidate & { tag: string };

function row(tag: string, fields: Partial<Row> = {}): Row {
  return { tag, id: `id-${String(++seq).padStart(4, '0')}`, name: 'job', priority: 0, createdAt: NOW, runAt: NOW, ...fields };
}

function request(fields: Partial<ClaimRequest> = {}): ClaimRequest {
  return { owner: 'node-a', limit: 8, leaseMs: 30_000, now: NOW + 5, names: ['job', 'other'], ...fields };
}

const tags = (rows: readonly Row[] | undefined) => rows?.map((r) => r.tag);

describe('start plan', () => {
  it('picks in strategy order, within the limit, the names and their caps', () => {
    const rows = [row('a', { priority: 1 }), row('b', { priority: 5 }), row('c', { name: 'other' }), row('d', { name: 'elsewhere' }), row('e', { priority: 5 })];
    assert.deepEqual(tags(pickStarts(rows, 'priority', request({ limit: 3 }))?.starts), ['b', 'e', 'a']);
    assert.deepEqual(tags(pickStarts(rows, 'fifo', request())?.starts), ['a', 'b', 'c', 'e']);
    assert.deepEqual(tags(pickStarts(rows, 'lifo', request({ limit: 2 }))?.starts), ['e', 'c']);
    assert.deepEqual(tags(pickStarts(rows, 'fifo', request({ perName: { job: 1 } }))?.starts), ['a', 'c']);
    const paused = pickStarts(rows, 'fifo', request({ exclude: ['job'] }));
    assert.deepEqual(tags(paused?.starts), ['c']);
    assert.deepEqual(paused?.names, ['other'], 'the names whose due tasks would come first');
    assert.equal(pickStarts(rows, 'fifo', request())?.all, true, 'every due task of the names starts');
    assert.equal(pickStarts(rows, 'fifo', request({ limit: 3 }))?.all, false, 'the limit leaves one');
    assert.equal(pickStarts(rows, 'fifo', request({ perName: { job: 1 } }))?.all, false, 'a cap leaves two');
  });

  it('leaves out what is not due, waits for children, or repeats an earlier id or key', () => {
    const first = row('first', { key: 'k' });
    const rows = [row('later', { runAt: NOW + 60_000, createdAt: NOW }), row('parent', { flowPending: 2 }), first, row('same-key', { key: 'k' }), { ...first, tag: 'same-id' }, row('plain')];
    assert.deepEqual(tags(pickStarts(rows, 'fifo', request())?.starts), ['first', 'plain']);
  });

  it('serves no batch the claim would take differently: a due task created scheduled, a flow parent due at once, dedup', () => {
    const plain = row('plain');
    assert.ok(pickStarts([plain], 'fifo', request()));
    assert.equal(pickStarts([plain, row('came due', { createdAt: NOW, runAt: NOW + 2 })], 'fifo', request()), undefined);
    assert.equal(pickStarts([plain, row('no children', { flowPending: 0 })], 'fifo', request()), undefined);
    assert.equal(pickStarts([plain, row('throttled', { dedup: { key: 'd', mode: 'throttle', windowMs: 1000 } })], 'fifo', request()), undefined);
    // the same tasks not due yet, or of a name outside the claim, change nothing
    assert.ok(pickStarts([plain, row('not yet', { createdAt: NOW, runAt: NOW + 60_000 })], 'fifo', request()));
    assert.ok(pickStarts([plain, row('elsewhere', { name: 'elsewhere', flowPending: 0 })], 'fifo', request()));
  });

  it('serves no claim it cannot make in an insert', () => {
    const rows = [row('a')];
    assert.equal(pickStarts(rows, 'priority', request({ groupLimits: { job: 1 } })), undefined);
    assert.equal(pickStarts(rows, 'priority', request({ excludeGroups: ['g'] })), undefined);
    assert.equal(pickStarts(rows, 'priority', request({ names: undefined })), undefined);
    assert.equal(pickStarts(rows, 'weighted-random', request()), undefined);
    assert.equal(pickStarts(rows, 'priority', request({ limit: 0.5 })), undefined);
    assert.equal(pickStarts(rows, 'priority', request({ perName: { job: 0, other: 0 } })), undefined);
    assert.equal(pickStarts([row('other name', { name: 'elsewhere' })], 'priority', request()), undefined);
    assert.equal(startsInInsert('fifo', request({ rateLimits: { job: { max: 1, perMs: 1000, by: 'name' } } })), false);
    assert.equal(startsInInsert('fifo', request()), true);
  });
});
