// The memory store's output runs: lines kept as runs read back one line per seq, whatever the run boundaries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutputRuns } from '../../src/store/output-runs.ts';
import type { OutputLine, OutputStream } from '../../src/task.ts';

/** `n` lines of one chunk: consecutive seqs from `seq`, one stream, one time. */
function chunk(seq: number, n: number, stream: OutputStream = 'stdout', at = 1000, text = (i: number) => `line ${seq + i}`): OutputLine[] {
  return Array.from({ length: n }, (_, i) => ({ seq: seq + i, stream, text: text(i), at }));
}

const seqs = (lines: OutputLine[]): number[] => lines.map((l) => l.seq);

describe('OutputRuns', () => {
  it('reads back every line, in order, with its stream, text and time, across chunks of different kinds', () => {
    const out = new OutputRuns();
    const lines = [...chunk(10, 3), ...chunk(13, 2, 'stderr', 1001), ...chunk(20, 1, 'log', 1002), ...chunk(21, 2, 'stdout', 1003)];
    out.append(lines, 100);
    assert.deepEqual(out.read(), lines);
    assert.equal(out.size, 8);
  });

  it('keeps texts holding newlines, empty texts and lone surrogates as they are', () => {
    const out = new OutputRuns();
    const texts = ['a\nb', '', 'x\r\ny', '\uD800', ''];
    out.append(chunk(1, texts.length, 'log', 5, (i) => texts[i]!), 100);
    out.append(chunk(6, 3, 'stdout', 6, (i) => ['', '', 'z'][i]!), 100);
    assert.deepEqual(out.read().map((l) => l.text), [...texts, '', '', 'z']);
  });

  it('after and limit page by seq inside and across runs', () => {
    const out = new OutputRuns();
    out.append([...chunk(1, 5), ...chunk(6, 5, 'stdout', 1001), ...chunk(100, 5, 'stderr', 1002)], 100);
    assert.deepEqual(seqs(out.read(3, 4)), [4, 5, 6, 7]);
    assert.deepEqual(seqs(out.read(10)), [100, 101, 102, 103, 104]);
    assert.deepEqual(seqs(out.read(50, 2)), [100, 101]);
    assert.deepEqual(seqs(out.read(0, 1)), [1]);
    assert.deepEqual(out.read(104), []);
    assert.deepEqual(out.read(undefined, 0), []);
  });

  it('ignores lines at or below the newest seq it holds (a replayed write)', () => {
    const out = new OutputRuns();
    out.append(chunk(1, 4), 100);
    out.append([...chunk(3, 4)], 100);
    assert.deepEqual(seqs(out.read()), [1, 2, 3, 4, 5, 6]);
  });

  it('splits runs at 256 lines and at 64 Ki characters; a longer line gets a run of its own', () => {
    const out = new OutputRuns();
    out.append(chunk(1, 600), 10_000);
    const long = 'x'.repeat(40 * 1024);
    out.append(chunk(601, 3, 'stdout', 1000, () => long), 10_000);
    out.append(chunk(604, 1, 'stdout', 1000, () => 'y'.repeat(70 * 1024)), 10_000);
    const all = out.read();
    assert.equal(all.length, 604);
    assert.deepEqual(seqs(all), Array.from({ length: 604 }, (_, i) => i + 1));
    assert.equal(all[600]!.text, long);
    assert.equal(all[603]!.text.length, 70 * 1024);
    assert.deepEqual(seqs(out.read(255, 3)), [256, 257, 258]);
  });

  it('keeps the newest lines behind one marker, which counts every dropped line and takes the newest dropped seq', () => {
    const out = new OutputRuns();
    out.append(chunk(1, 5), 8);
    out.append(chunk(6, 5, 'stderr', 1001), 8);
    assert.equal(out.size, 8);
    let lines = out.read();
    assert.deepEqual(lines[0], { seq: 2, stream: 'marker', text: '[2 earlier lines dropped]', at: 1000 });
    assert.deepEqual(seqs(lines.slice(1)), [3, 4, 5, 6, 7, 8, 9, 10]);
    // a partly dropped run reads from its first kept line, also with a cursor
    assert.deepEqual(seqs(out.read(2)), [3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(seqs(out.read(1)), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    out.append(chunk(11, 7, 'stdout', 1002), 8);
    lines = out.read();
    assert.deepEqual(lines[0], { seq: 9, stream: 'marker', text: '[9 earlier lines dropped]', at: 1001 });
    assert.deepEqual(seqs(lines.slice(1)), [10, 11, 12, 13, 14, 15, 16, 17]);
    assert.deepEqual(out.read(9).map((l) => l.stream), ['stderr', 'stdout', 'stdout', 'stdout', 'stdout', 'stdout', 'stdout', 'stdout']);
  });

  it('keeps the newest lines within maxBytes (UTF-8 bytes of the texts), cutting runs in the middle', () => {
    const out = new OutputRuns();
    // 'line N' is 6 bytes below 10, 7 below 100; 'é' is 2 bytes
    out.append(chunk(1, 9), 1000, 40);
    assert.deepEqual([out.size, out.bytes], [6, 36]);
    let lines = out.read();
    assert.deepEqual(lines[0], { seq: 3, stream: 'marker', text: '[3 earlier lines dropped]', at: 1000 });
    assert.deepEqual(seqs(lines.slice(1)), [4, 5, 6, 7, 8, 9]);
    out.append(chunk(10, 2, 'stderr', 1001, () => 'éé'), 1000, 40);
    assert.deepEqual([out.size, out.bytes], [7, 38]);
    assert.deepEqual(out.read(3).map((l) => [l.seq, l.stream]), [[4, 'marker'], ...[5, 6, 7, 8, 9].map((q) => [q, 'stdout']), [10, 'stderr'], [11, 'stderr']]);
    // a run whose texts hold newlines is measured line by line too
    out.append(chunk(12, 3, 'log', 1002, (i) => ['a\nb', 'ccccccccccccccccccccc', 'd'][i]!), 1000, 40);
    lines = out.read();
    assert.deepEqual(lines.slice(1).map((l) => l.text), ['line 9', 'éé', 'éé', 'a\nb', 'ccccccccccccccccccccc', 'd']);
    assert.deepEqual([out.size, out.bytes], [6, 6 + 4 + 4 + 3 + 21 + 1]);
    assert.equal(lines[0]!.seq, 8);
    assert.equal(lines[0]!.text, '[8 earlier lines dropped]');
  });

  it('keeps a line longer than maxBytes cut to it, alone, and drops every older line', () => {
    const out = new OutputRuns();
    out.append(chunk(1, 3), 1000, 10);
    out.append(chunk(4, 1, 'stdout', 1001, () => 'ab€€€€'), 1000, 10);
    const lines = out.read();
    assert.deepEqual(lines, [{ seq: 3, stream: 'marker', text: '[3 earlier lines dropped]', at: 1000 }, { seq: 4, stream: 'stdout', text: 'ab€€', at: 1001 }]);
    assert.equal(out.bytes, 8);
  });

  it('keeps empty lines (0 bytes) that fit behind a byte cap', () => {
    const out = new OutputRuns();
    out.append(chunk(1, 4, 'stdout', 1000, (i) => ['abcd', 'efgh', '', ''][i]!), 1000, 4);
    assert.deepEqual(out.read().map((l) => l.text), ['[1 earlier line dropped]', 'efgh', '', '']);
  });

  it('drops whole runs over a long flood and still reads the newest lines', () => {
    const out = new OutputRuns();
    for (let c = 0; c < 5000; c++) out.append(chunk(1 + c * 10, 10, 'stdout', 1000 + c), 1000);
    assert.equal(out.size, 1000);
    const lines = out.read();
    assert.equal(lines.length, 1001);
    assert.deepEqual(lines[0], { seq: 49_000, stream: 'marker', text: '[49000 earlier lines dropped]', at: 5899 });
    assert.equal(lines[1]!.seq, 49_001);
    assert.equal(lines[1000]!.text, 'line 50000');
  });
});
