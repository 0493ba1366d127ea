/**
 * Contract: a task's output is kept within the caps its output ops carry (lines and UTF-8 bytes of text, see
 * src/output-caps.ts) and the store's `maxOutputLines`, however the lines are cut into ops and runs: the newest
 * lines that fit, behind one marker line that counts every dropped line and takes the newest dropped seq.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { truncateUtf8, utf8Length, type OutputCaps } from '../../../src/output-caps.ts';
import type { OutputLine } from '../../../src/task.ts';
import { seededRandom, withStore, type MakeStore } from './context.ts';

/** What a task that was given `all` must hold: the longest newest suffix within the caps, behind the marker. */
export function expectedOutput(all: readonly OutputLine[], caps: OutputCaps): OutputLine[] {
  const cut = all.map((l) => ({ ...l, text: truncateUtf8(l.text, caps.maxBytes) }));
  let bytes = 0;
  let from = cut.length;
  while (from > 0 && cut.length - from < caps.maxLines && bytes + utf8Length(cut[from - 1]!.text) <= caps.maxBytes) {
    from--;
    bytes += utf8Length(cut[from]!.text);
  }
  if (from === 0) return cut;
  const newestDropped = cut[from - 1]!;
  const marker: OutputLine = { seq: newestDropped.seq, stream: 'marker', text: `[${from} earlier line${from === 1 ? '' : 's'} dropped]`, at: newestDropped.at };
  return [marker, ...cut.slice(from)];
}

/** Kept lines' UTF-8 bytes (the marker not counted). */
const keptBytes = (lines: readonly OutputLine[]): number => lines.reduce((n, l) => n + (l.stream === 'marker' ? 0 : utf8Length(l.text)), 0);

export function outputCapsContract(makeStore: MakeStore): void {
  describe('output caps', () => {
    const line = (seq: number, text: string, at = 0, stream: OutputLine['stream'] = 'stdout'): OutputLine => ({ seq, stream, text, at });

    it("keeps the newest maxLines of the op's caps when the lines come one op at a time", () =>
      withStore(makeStore, { maxOutputLines: 100 }, async ({ store, add }) => {
        const t = await add();
        const caps = { maxLines: 5, maxBytes: 1_000_000 };
        const all: OutputLine[] = [];
        for (let s = 1; s <= 20; s++) {
          const l = line(s, `line ${s}`, s);
          all.push(l);
          await store.settle([{ type: 'output', id: t.id, lines: [l], caps }]);
        }
        const out = await store.output(t.id);
        assert.deepEqual(out, expectedOutput(all, caps));
        assert.deepEqual(out[0], { seq: 15, stream: 'marker', text: '[15 earlier lines dropped]', at: 15 });
        assert.deepEqual((await store.output(t.id, 15)).map((l) => l.seq), [16, 17, 18, 19, 20]);
        assert.deepEqual((await store.output(t.id, 14)).map((l) => l.seq), [15, 16, 17, 18, 19, 20]);
      }));

    it('keeps the newest lines within maxBytes, counting UTF-8 bytes, across runs cut in the middle', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const t = await add();
        const caps = { maxLines: 10_000, maxBytes: 100 };
        const all: OutputLine[] = [];
        let seq = 1;
        // chunks of 7 lines (one run each) of 2-, 3- and 4-byte characters: the cap falls inside a run
        for (let c = 0; c < 12; c++) {
          const chunk = Array.from({ length: 7 }, (_, i) => line(seq++, ['é', '€', '😀'][c % 3]!.repeat(1 + i), 100 + c, c % 2 ? 'stderr' : 'stdout'));
          all.push(...chunk);
          await store.settle([{ type: 'output', id: t.id, lines: chunk, caps }]);
          const out = await store.output(t.id);
          assert.deepEqual(out, expectedOutput(all, caps), `after chunk ${c}`);
          assert.ok(keptBytes(out) <= 100);
        }
        const out = await store.output(t.id);
        assert.equal(out[0]!.stream, 'marker');
        assert.deepEqual(await store.output(t.id, out[0]!.seq), out.slice(1));
        assert.deepEqual(await store.output(t.id, out[0]!.seq - 1, 2), out.slice(0, 2));
      }));

    it('stores a line longer than maxBytes cut to it, on a character boundary, and drops every older line', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const t = await add();
        const caps = { maxLines: 10_000, maxBytes: 10 };
        // many short lines, then one long one: every older line must go (more than one walk of the oldest)
        const short = Array.from({ length: 300 }, (_, i) => line(1 + i, i % 5 ? 'x' : '', 1));
        await store.settle([{ type: 'output', id: t.id, lines: short.slice(0, 150), caps }]);
        await store.settle([{ type: 'output', id: t.id, lines: short.slice(150), caps }]);
        assert.deepEqual(await store.output(t.id), expectedOutput(short, caps));
        await store.settle([{ type: 'output', id: t.id, lines: [line(301, 'abcd€€€€', 2)], caps }]);
        assert.deepEqual(await store.output(t.id), [
          { seq: 300, stream: 'marker', text: '[300 earlier lines dropped]', at: 1 },
          { seq: 301, stream: 'stdout', text: 'abcd€€', at: 2 },
        ]);
        // empty lines after it still fit beside it
        await store.settle([{ type: 'output', id: t.id, lines: [line(302, '', 3), line(303, '', 3)], caps }]);
        assert.deepEqual((await store.output(t.id)).map((l) => l.seq), [300, 301, 302, 303]);
      }));

    it('holds a task to maxOutputLines whatever its caps say', () =>
      withStore(makeStore, { maxOutputLines: 4 }, async ({ store, add }) => {
        const t = await add();
        const all = Array.from({ length: 9 }, (_, i) => line(1 + i, `l${i}`, 5));
        await store.settle([{ type: 'output', id: t.id, lines: all, caps: { maxLines: 50, maxBytes: 1000 } }]);
        assert.deepEqual(await store.output(t.id), expectedOutput(all, { maxLines: 4, maxBytes: 1000 }));
      }));

    it('keeps each task within its own caps when one batch carries several', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const [a, b] = [await add(), await add()];
        const capsA = { maxLines: 3, maxBytes: 1000 };
        const capsB = { maxLines: 1000, maxBytes: 12 };
        const la = Array.from({ length: 8 }, (_, i) => line(1 + i, `a${i}`, 1));
        const lb = Array.from({ length: 8 }, (_, i) => line(1 + i, `bb${i}`, 1));
        await store.settle([
          { type: 'output', id: a.id, lines: la.slice(0, 4), caps: capsA },
          { type: 'output', id: b.id, lines: lb.slice(0, 4), caps: capsB },
          { type: 'output', id: a.id, lines: la.slice(4), caps: capsA },
          { type: 'output', id: b.id, lines: lb.slice(4), caps: capsB },
        ]);
        assert.deepEqual(await store.output(a.id), expectedOutput(la, capsA));
        assert.deepEqual(await store.output(b.id), expectedOutput(lb, capsB));
      }));

    it('matches the rule over random chunkings, texts and caps', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        const random = seededRandom(7);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
        const texts = ['', 'a', 'hello world', 'é', '€€€', '😀x', 'line with some length to it', 'ü'.repeat(30)];
        for (const caps of [{ maxLines: 7, maxBytes: 1000 }, { maxLines: 1000, maxBytes: 64 }, { maxLines: 12, maxBytes: 40 }, { maxLines: 50, maxBytes: 5 }]) {
          const t = await add();
          const all: OutputLine[] = [];
          let seq = 1;
          for (let c = 0; c < 40; c++) {
            const n = 1 + Math.floor(random() * 30);
            const at = 1000 + c;
            const stream = pick(['stdout', 'stderr', 'log'] as const);
            const chunk = Array.from({ length: n }, () => line(seq++, pick(texts), at, stream));
            all.push(...chunk);
            await store.settle([{ type: 'output', id: t.id, lines: chunk, caps }]);
          }
          const out = await store.output(t.id);
          assert.deepEqual(out, expectedOutput(all, caps), JSON.stringify(caps));
          assert.ok(keptBytes(out) <= caps.maxBytes && out.length - 1 <= caps.maxLines);
        }
      }));
  });
}
