/**
 * Output capture end to end, per store: a command floods both pipes; every line reaches `task.output` once, in
 * order per stream, with increasing seqs, and the store reads back exactly the lines that were published (seq,
 * stream, text, time), pages by seq included. Lines of one pipe chunk travel together (one message, one store
 * statement): none may be lost, reordered or renumbered on the way.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import type { OutputLine } from '../../src/task.ts';
import { tempDb } from '../helpers/temp-db.ts';

const PRINT_LINES = fileURLToPath(new URL('../fixtures/commands/print-lines.js', import.meta.url));
const LINES = 30_000;

async function capture(rt: Runtime, args: string[]): Promise<{ id: string; facts: OutputLine[] }> {
  const facts: OutputLine[] = [];
  let id: string | undefined;
  const off = rt.on('task.output', (f) => {
    if (f.id === id) facts.push(f.line);
  });
  try {
    const handle = rt.start('print', { args });
    id = handle.id;
    await handle.result;
  } finally {
    off();
  }
  return { id: id!, facts };
}

for (const store of ['memory', 'sqlite'] as const) {
  describe(`output capture (${store} store)`, () => {
    it('publishes and stores every line of a flood on both pipes, once, in order, with increasing seqs', async () => {
      const rt = await createRuntime({
        store: store === 'memory' ? 'memory' : `sqlite:${tempDb('output-capture')}`,
        maintenance: false,
        output: { maxLines: 100_000 },
        tasks: { print: { command: process.execPath, args: (i: { args: string[] }) => [PRINT_LINES, ...i.args], output: { maxLines: 100_000 } } },
      });
      try {
        const { id, facts } = await capture(rt, [String(LINES), '40', 'both']);
        const expected = Array.from({ length: LINES }, (_, i) => `line ${i + 1}`.padEnd(40, '.'));
        assert.deepEqual(facts.filter((l) => l.stream === 'stdout').map((l) => l.text), expected);
        assert.deepEqual(facts.filter((l) => l.stream === 'stderr').map((l) => l.text), expected);
        for (let i = 1; i < facts.length; i++) assert.ok(facts[i]!.seq > facts[i - 1]!.seq, `seq ${i} not above seq ${i - 1}`);
        // the store reads back exactly what was published, and pages by seq
        assert.deepEqual(await rt.output(id), facts);
        const page = await rt.output(id, { after: facts[12_344]!.seq, limit: 1000 });
        assert.deepEqual(page, facts.slice(12_345, 13_345));
      } finally {
        await rt.close();
      }
    });

    it('keeps the newest maxLines lines of a flood behind one marker', async () => {
      const rt = await createRuntime({
        store: store === 'memory' ? 'memory' : `sqlite:${tempDb('output-capture')}`,
        maintenance: false,
        output: { maxLines: 1000 },
        tasks: { print: { command: process.execPath, args: (i: { args: string[] }) => [PRINT_LINES, ...i.args] } },
      });
      try {
        const { id, facts } = await capture(rt, [String(LINES)]);
        assert.equal(facts.length, LINES);
        const stored = await rt.output(id);
        assert.equal(stored[0]!.stream, 'marker');
        assert.equal(stored[0]!.seq, facts[LINES - 1001]!.seq);
        assert.deepEqual(stored.slice(1), facts.slice(-1000));
      } finally {
        await rt.close();
      }
    });
  });
}
