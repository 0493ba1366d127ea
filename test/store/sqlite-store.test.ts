import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { OutputLine } from '../../src/task.ts';
import { withStore } from './contract/context.ts';
import { runStoreContract } from './store.contract.ts';

const root = mkdtempSync(join(tmpdir(), 'troupe-sqlite-contract-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

runStoreContract('sqlite', async (options) => createSqliteStore(join(root, `store-${++n}.db`), options));

describe('sqlite output runs', () => {
  it('stores a text the same way whether its line goes in a long run or alone (NUL, lone surrogates)', () =>
    withStore(async (options) => createSqliteStore(join(root, `store-${++n}.db`), options), {}, async ({ store, add }) => {
      const t = await add();
      const texts = ['a\u0000b', '\ud800x', 'x\udfff', 'z\ud83d', '😀', '\u0000', 'plain'];
      // a long run: one stream, one time, consecutive seqs; then each text alone (the streams alternate)
      const run = Array.from({ length: 70 }, (_, i): OutputLine => ({ seq: 1 + i, stream: 'stdout', text: texts[i % texts.length]!, at: 1 }));
      const alone = Array.from({ length: 70 }, (_, i): OutputLine => ({ seq: 101 + i, stream: i % 2 ? 'stdout' : 'stderr', text: texts[i % texts.length]!, at: 2 }));
      assert.deepEqual(await store.settle([{ type: 'output', id: t.id, lines: [...run, ...alone] }]), [true]);
      const out = await store.output(t.id);
      assert.equal(out.length, 140);
      for (let i = 0; i < 70; i++) assert.equal(out[i]!.text, out[70 + i]!.text, `line ${i}`);
      assert.equal(out[0]!.text, 'a\u0000b');
    }));
});
