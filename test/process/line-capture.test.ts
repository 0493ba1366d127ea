import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LineBuffer, LineSplitter, LineWindow, truncateUtf8, utf8Length } from '../../src/process/line-capture.ts';
import { parseProtocolLine } from '../../src/process/progress-protocol.ts';

function split(chunks: Array<string | number[] | Uint8Array>, maxBytes = 1024): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter(maxBytes, (text) => lines.push(text));
  for (const chunk of chunks) {
    splitter.write(typeof chunk === 'string' ? Buffer.from(chunk) : Uint8Array.from(chunk));
  }
  splitter.end();
  return lines;
}

/** Every way of cutting `bytes` into two chunks. */
function everySplit(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

describe('LineSplitter', () => {
  test('splits lines across chunks, handles \\r\\n and a last line without newline', () => {
    assert.deepEqual(split(['one\ntw', 'o\r', '\nthree\r\n\nfour']), ['one', 'two', 'three', '', 'four']);
  });

  test('emits nothing extra for output ending in a newline, and nothing for no output', () => {
    assert.deepEqual(split(['a\n']), ['a']);
    assert.deepEqual(split([]), []);
  });

  test('a multi-byte character split at any byte boundary decodes whole', () => {
    const text = '你好世界 🎉 café\n';
    for (const chunks of everySplit(Buffer.from(text))) {
      assert.deepEqual(split(chunks), ['你好世界 🎉 café']);
    }
  });

  test('invalid bytes become U+FFFD and never throw', () => {
    assert.deepEqual(split([[0x61, 0xff, 0x62, 0x0a]]), ['a\uFFFDb']);
    // A truncated sequence at the end of a line is replaced; the newline is not swallowed.
    assert.deepEqual(split([[0x61, 0xe4, 0xbd, 0x0a, 0x62, 0x0a]]), ['a\uFFFD', 'b']);
    // Half a character at the very end of the stream.
    assert.deepEqual(split([[0x7a, 0xf0, 0x9f]]), ['z\uFFFD']);
  });

  test('cuts a line longer than maxBytes into pieces of at most maxBytes bytes', () => {
    assert.deepEqual(split(['abcdefghij\n'], 4), ['abcd', 'efgh', 'ij']);
    // Exactly maxBytes followed by a newline in the next chunk: no spurious empty line.
    assert.deepEqual(split(['abcd', '\nx\n'], 4), ['abcd', 'x']);
    // A long line arriving in many small chunks.
    assert.deepEqual(split(['ab', 'cd', 'ef', 'gh', 'i'], 3), ['abc', 'def', 'ghi']);
  });

  test('a size given with a line is its UTF-8 size, and ASCII chunks give one for every line they complete', () => {
    const texts = ['plain', 'café', '', 'x\r', '🎉 party', 'tail without newline'];
    const bytes = [...Buffer.from(texts.slice(0, -1).join('\n') + '\n' + texts.at(-1)), 0xff, 0x0a, 0x61, 0x0d, 0x0a];
    // every cut of the stream into three chunks (ASCII chunks, chunks with and without partial lines, long-line cuts)
    for (const maxBytes of [1024, 4]) {
      for (let i = 0; i <= bytes.length; i += 3) {
        for (let j = i; j <= bytes.length; j += 5) {
          const got: Array<[string, number]> = [];
          const splitter = new LineSplitter(maxBytes, (text, size) => got.push([text, size]));
          for (const chunk of [bytes.slice(0, i), bytes.slice(i, j), bytes.slice(j)]) splitter.write(Uint8Array.from(chunk));
          splitter.end();
          for (const [text, size] of got) if (size !== -1) assert.equal(size, utf8Length(text), `${JSON.stringify(text)} of cut ${i}/${j}`);
        }
      }
    }
    const sizes: number[] = [];
    const splitter = new LineSplitter(1024, (_, size) => sizes.push(size));
    splitter.write(Buffer.from('ab'));
    splitter.write(Buffer.from('c\r\n\nde\n12345 1733482000000.125\nf'));
    splitter.write(Buffer.from('g\n'));
    assert.deepEqual(sizes, [3, 0, 2, 23, 2]);
  });

  test('a cut inside a multi-byte character keeps the character whole in the next piece', () => {
    const pieces = split(['aé€🎉b\n'], 3); // 1 + 2 + 3 + 4 + 1 bytes
    assert.equal(pieces.join(''), 'aé€🎉b');
    for (const piece of pieces) assert.ok(!piece.includes('\uFFFD'), `no replacement in ${JSON.stringify(pieces)}`);
  });

  test('an endless line keeps memory bounded: pieces come out while it grows', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter(1000, (text) => lines.push(text));
    const chunk = Buffer.alloc(10_000, 0x78);
    for (let i = 0; i < 100; i++) splitter.write(chunk);
    assert.equal(lines.length, 999, 'every full piece is out before the stream ends; only the last is pending');
    splitter.end();
    assert.equal(lines.length, 1000);
    assert.ok(lines.every((l) => l.length === 1000));
    assert.equal(splitter.bytes, 1_000_000);
  });

  test('counts lines and bytes; end() is idempotent', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter(100, (text) => lines.push(text));
    splitter.write(Buffer.from('a\nbb\nccc'));
    splitter.end();
    splitter.end();
    splitter.write(Buffer.from('ignored\n'));
    assert.deepEqual(lines, ['a', 'bb', 'ccc']);
    assert.equal(splitter.lines, 3);
    assert.equal(splitter.bytes, 8);
  });

  test('random bytes in random chunks: the lines are each line decoded on its own, however the pipe cuts them', () => {
    // a small PRNG (mulberry32) so a failure can be replayed from its seed
    let state = 0x5eed;
    const random = () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    // newlines, \r, ASCII, valid multi-byte characters, stray continuation and lead bytes
    const pieces = [[0x0a], [0x0d], [0x0d, 0x0a], [0x61], [0x7a], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x8e, 0x89], [0x80], [0xe4, 0xbd], [0xf0], [0xff]];
    const reference = (bytes: Uint8Array): string[] => {
      const lines: string[] = [];
      let start = 0;
      for (let nl = bytes.indexOf(0x0a); nl !== -1; nl = bytes.indexOf(0x0a, start)) {
        lines.push(new TextDecoder().decode(bytes.subarray(start, nl)));
        start = nl + 1;
      }
      if (start < bytes.length) lines.push(new TextDecoder().decode(bytes.subarray(start)));
      return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    };
    for (let round = 0; round < 300; round++) {
      const bytes = Uint8Array.from(Array.from({ length: 1 + Math.floor(random() * 120) }, () => pieces[Math.floor(random() * pieces.length)]!).flat());
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + Math.floor(random() * 40);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(split(chunks, 1 << 20), reference(bytes), `round ${round}`);
      // with a cap that cuts lines the result depends only on the bytes, never on the chunks
      const cap = 1 + Math.floor(random() * 12);
      assert.deepEqual(split(chunks, cap), split([bytes], cap), `round ${round}, cap ${cap}`);
      assert.deepEqual(split([...bytes].map((b) => [b]), cap), split([bytes], cap), `round ${round}, cap ${cap}, byte by byte`);
    }
  });
});

describe('LineBuffer', () => {
  const line = (text: string) => ({ stream: 'stdout' as const, text });

  test('keeps everything below the caps, with no marker', () => {
    const buf = new LineBuffer({ maxLines: 3, maxBytes: 100 });
    buf.push(line('a'));
    buf.push(line('b'));
    assert.deepEqual(buf.lines(), [line('a'), line('b')]);
    assert.equal(buf.dropped, 0);
    assert.equal(buf.size, 2);
    assert.equal(buf.bytes, 2);
  });

  test('drops the oldest lines beyond maxLines and puts ONE marker at the head', () => {
    const buf = new LineBuffer({ maxLines: 3, maxBytes: 1000 });
    for (let i = 1; i <= 10; i++) buf.push(line(`l${i}`));
    const lines = buf.lines();
    assert.equal(lines.length, 4);
    assert.deepEqual(lines[0], { stream: 'marker', text: '[7 earlier lines dropped]', dropped: 7 });
    assert.deepEqual(lines.slice(1), [line('l8'), line('l9'), line('l10')]);
    assert.equal(lines.filter((l) => l.stream === 'marker').length, 1);
    assert.equal(buf.dropped, 7);
    assert.equal(buf.total, 10);
  });

  test('drops the oldest lines beyond maxBytes (UTF-8 bytes, not characters)', () => {
    const buf = new LineBuffer({ maxLines: 100, maxBytes: 10 });
    buf.push(line('ééé')); // 6 bytes
    buf.push(line('abc')); // 3 bytes
    assert.equal(buf.dropped, 0);
    buf.push(line('xy')); // 11 bytes in all: the oldest goes
    assert.deepEqual(buf.lines(), [
      { stream: 'marker', text: '[1 earlier line dropped]', dropped: 1 },
      line('abc'),
      line('xy'),
    ]);
    assert.equal(buf.bytes, 5);
  });

  test('a single line longer than maxBytes is cut to it on a character boundary', () => {
    const buf = new LineBuffer({ maxLines: 10, maxBytes: 5 });
    buf.push(line('old'));
    buf.push(line('ab€cdef')); // € is 3 bytes: 'ab€' is 5 bytes
    assert.deepEqual(buf.lines(), [{ stream: 'marker', text: '[1 earlier line dropped]', dropped: 1 }, line('ab€')]);
  });

  test('stays bounded over a million pushes', () => {
    const buf = new LineBuffer({ maxLines: 1000, maxBytes: 1_000_000 });
    for (let i = 0; i < 1_000_000; i++) buf.push(line('some output line'));
    assert.equal(buf.size, 1000);
    assert.equal(buf.dropped, 999_000);
    assert.equal(buf.lines().length, 1001);
  });

  test('clear() empties it and forgets the drop count', () => {
    const buf = new LineBuffer({ maxLines: 1, maxBytes: 10 });
    buf.push(line('a'));
    buf.push(line('b'));
    buf.clear();
    assert.deepEqual(buf.lines(), []);
    assert.equal(buf.dropped, 0);
  });

  test('LineWindow counts exactly what LineBuffer drops', () => {
    const buf = new LineBuffer({ maxLines: 7, maxBytes: 50 });
    const window = new LineWindow({ maxLines: 7, maxBytes: 50 });
    for (let i = 0; i < 500; i++) {
      const text = 'x'.repeat((i * 7919) % 61);
      buf.push(line(text));
      window.push(utf8Length(text));
      assert.equal(window.dropped, buf.dropped);
      assert.equal(window.size, buf.size);
    }
  });
});

describe('LineWindow', () => {
  test('counts like a plain list of sizes across many growths and wrap-arounds of its ring', () => {
    // the reference: the oldest sizes leave while the window is over either cap, as LineBuffer drops lines
    for (const [maxLines, maxBytes] of [[3000, 1e9], [1e9, 20_000], [700, 9_000], [1, 5]] as const) {
      const window = new LineWindow({ maxLines, maxBytes });
      const sizes: number[] = [];
      let bytes = 0;
      let dropped = 0;
      for (let i = 0; i < 12_000; i++) {
        // stretches of short lines let the window grow again after its oldest entries left (a wrapped ring)
        const size = Math.min(i % 4000 < 2000 ? (i * 7919) % 97 : 1 + (i % 3), maxBytes);
        sizes.push(size);
        bytes += size;
        let evicted = 0;
        while (sizes.length > 1 && (sizes.length > maxLines || bytes > maxBytes)) {
          bytes -= sizes.shift()!;
          evicted++;
        }
        dropped += evicted;
        assert.equal(window.push(size), evicted, `line ${i} of caps ${maxLines}/${maxBytes}`);
        assert.equal(window.size, sizes.length);
        assert.equal(window.bytes, bytes);
        assert.equal(window.dropped, dropped);
      }
      window.clear();
      assert.equal(window.size, 0);
      assert.equal(window.push(3), 0);
      assert.equal(window.bytes, 3);
    }
  });
});

describe('truncateUtf8', () => {
  test('never splits a character and never exceeds the byte cap', () => {
    const text = 'a€🎉éz';
    for (let max = 0; max <= 12; max++) {
      const cut = truncateUtf8(text, max);
      assert.ok(utf8Length(cut) <= max);
      assert.ok(text.startsWith(cut));
      assert.ok(!cut.includes('\uFFFD'));
    }
  });

  test('counts an unpaired surrogate as the 3 bytes of the U+FFFD it is written as', () => {
    const text = 'a\uD800€\uDC00b';
    for (let max = 0; max <= 12; max++) {
      const cut = truncateUtf8(text, max);
      assert.ok(utf8Length(cut) <= max, `${max}: ${JSON.stringify(cut)}`);
      assert.ok(text.startsWith(cut));
    }
    assert.equal(truncateUtf8(text, 4), 'a\uD800');
    assert.equal(truncateUtf8(text, 7), 'a\uD800€');
  });
});

describe('progress protocol', () => {
  test('reads fractions, done/total and JSON results', () => {
    assert.deepEqual(parseProtocolLine('::progress 0.42'), { type: 'progress', progress: { fraction: 0.42 } });
    assert.deepEqual(parseProtocolLine('::progress 3/10'), {
      type: 'progress',
      progress: { fraction: 0.3, done: 3, total: 10 },
    });
    assert.deepEqual(parseProtocolLine('::result {"a":[1]}'), { type: 'result', value: { a: [1] } });
    assert.deepEqual(parseProtocolLine('::result null'), { type: 'result', value: null });
  });

  test('anything malformed is an ordinary line', () => {
    for (const text of ['::progress 1.5', '::progress -1', '::progress 3/0', '::progress', '::progress abc',
      '::result {bad', '::result', 'progress 0.5', ' ::progress 0.5', '::other 1', '']) {
      assert.equal(parseProtocolLine(text), undefined, text);
    }
  });
});
