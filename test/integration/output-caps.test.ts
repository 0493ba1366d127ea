/**
 * Output caps end to end, per store: what a task keeps is its newest lines within both caps of its definition's
 * `output` (or the runtime's), behind one marker, whatever kind of task printed them (a command's lines arriving in
 * many pipe chunks, an inline or a handler task's `ctx.log`), and a command's `lines.dropped` says how many of its
 * lines that cost.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { utf8Length } from '../../src/output-caps.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import type { OutputLine } from '../../src/task.ts';
import { PG_SKIP, schemaStoreUrl, trackSchemas } from '../helpers/pg.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { expectedOutput } from '../store/contract/output-caps.ts';

const PRINT_CHUNKS = fileURLToPath(new URL('../fixtures/commands/print-chunks.js', import.meta.url));
const CHATTY = new URL('../fixtures/handlers/chatty.ts', import.meta.url);

const schemas = trackSchemas('outcaps');
after(() => schemas.dropAll());

const STORES: Array<{ label: string; skip?: string; store: () => string }> = [
  { label: 'memory', store: () => 'memory' },
  { label: 'SQLite', store: () => `sqlite:${tempDb('output-caps')}` },
  {
    label: 'PostgreSQL',
    skip: PG_SKIP,
    store: () => schemaStoreUrl(schemas),
  },
];

/** Starts `name`, collects its `task.output` facts, and returns them with its result once it has ended. */
async function capture(rt: Runtime, name: string, input?: unknown): Promise<{ id: string; facts: OutputLine[]; result: unknown }> {
  const facts: OutputLine[] = [];
  let id: string | undefined;
  const off = rt.on('task.output', (f) => {
    if (f.id === id) facts.push(f.line);
  });
  try {
    const handle = rt.start(name, input);
    id = handle.id;
    return { id, facts, result: await handle.result };
  } finally {
    off();
  }
}

const keptBytes = (lines: readonly OutputLine[]): number => lines.reduce((n, l) => n + (l.stream === 'marker' ? 0 : utf8Length(l.text)), 0);

for (const { label, skip, store } of STORES) {
  describe(`output caps (${label} store)`, skip ? { skip } : {}, () => {
    const withRuntime = async (options: CreateRuntimeOptions, fn: (rt: Runtime) => Promise<void>): Promise<void> => {
      const rt = await createRuntime({ store: store(), maintenance: false, ...options });
      try {
        await fn(rt);
      } finally {
        await rt.close();
      }
    };

    it("keeps a command's newest lines within its maxBytes over many pipe chunks, and lines.dropped says how many went", () =>
      withRuntime(
        // 300 lines of 40 characters, 'line N ' and é padding (71 bytes from line 100), 3 per write: 2 KB holds 28
        { tasks: { print: { command: process.execPath, args: [PRINT_CHUNKS, '300', '3', '40'], output: { maxBytes: '2KB' } } } },
        async (rt) => {
          const { id, facts, result } = await capture(rt, 'print');
          assert.equal(facts.length, 300);
          assert.ok(new Set(facts.map((f) => f.at)).size > 5, 'the lines came in many chunks');
          const stored = await rt.output(id);
          assert.deepEqual(stored, expectedOutput(facts, { maxLines: 10_000, maxBytes: 2000 }));
          assert.equal(stored.length, 29);
          assert.ok(keptBytes(stored) <= 2000);
          assert.deepEqual(stored[0], { seq: facts[271]!.seq, stream: 'marker', text: '[272 earlier lines dropped]', at: facts[271]!.at });
          assert.deepEqual(result, { exitCode: 0, lines: { stdout: 300, stderr: 0, dropped: 272 } });
        },
      ));

    it("keeps a command's newest maxLines over many pipe chunks", () =>
      withRuntime({ tasks: { print: { command: process.execPath, args: [PRINT_CHUNKS, '60', '1', '0'], output: { maxLines: 10 } } } }, async (rt) => {
        const { id, facts, result } = await capture(rt, 'print');
        const stored = await rt.output(id);
        assert.deepEqual(stored, expectedOutput(facts, { maxLines: 10, maxBytes: 10_000_000 }));
        assert.equal(stored[0]!.text, '[50 earlier lines dropped]');
        assert.deepEqual(result, { exitCode: 0, lines: { stdout: 60, stderr: 0, dropped: 50 } });
      }));

    it("keeps an inline task's log within the runtime's output.maxBytes, a line longer than it cut to it", () =>
      withRuntime(
        {
          output: { maxBytes: 300 },
          tasks: {
            logs: {
              run: async (_input: unknown, ctx) => {
                for (let i = 0; i < 200; i++) ctx.log(`log line ${i}`);
                ctx.log('€'.repeat(150));
                return 'done';
              },
            },
          },
        },
        async (rt) => {
          const { id, facts } = await capture(rt, 'logs');
          assert.equal(facts.length, 201);
          const stored = await rt.output(id);
          assert.deepEqual(stored, expectedOutput(facts, { maxLines: 10_000, maxBytes: 300 }));
          // 450 bytes cut to 300: the first 100 euro signs, alone
          assert.deepEqual(stored.map((l) => l.text), ['[200 earlier lines dropped]', '€'.repeat(100)]);
          assert.ok(keptBytes(stored) <= 300);
        },
      ));

    it("keeps a handler task's log within its maxLines", () =>
      withRuntime({ tasks: { chatty: { handler: CHATTY, output: { maxLines: 20 } } } }, async (rt) => {
        const { id, facts, result } = await capture(rt, 'chatty', { lines: 500 });
        assert.equal(result, 500);
        assert.equal(facts.length, 500);
        const stored = await rt.output(id);
        assert.deepEqual(stored, expectedOutput(facts, { maxLines: 20, maxBytes: 10_000_000 }));
        assert.equal(stored[0]!.text, '[480 earlier lines dropped]');
      }));
  });
}
