/**
 * Brings the compile-time protocol tests (messages.types.ts) into the suite. `npm run typecheck` is what proves
 * the `@ts-expect-error` lines are still errors; set TROUPE_TYPE_TESTS=1 to have this file run the compiler on
 * them as well (about 9 s on a 2-core machine).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as typeTests from './messages.types.ts';

const file = fileURLToPath(new URL('./messages.types.ts', import.meta.url));

describe('type tests', () => {
  it('the message type tests exist, load, and still hold their expected errors', () => {
    assert.equal(existsSync(file), true);
    assert.equal(typeof typeTests.accepted, 'function');
    assert.equal(typeof typeTests.refused, 'function');
    const expectations = readFileSync(file, 'utf8').match(/^\s*\/\/ @ts-expect-error \S/gm) ?? [];
    assert.ok(expectations.length >= 15, `expected at least 15 @ts-expect-error lines with a reason, found ${expectations.length}`);
  });

  it(
    'compiles: every @ts-expect-error is a real error and everything else type-checks',
    { skip: process.env.TROUPE_TYPE_TESTS ? false : 'set TROUPE_TYPE_TESTS=1 to run the compiler here (npm run typecheck covers it)' },
    async () => {
      const { default: ts } = await import('typescript');
      const root = path.resolve(path.dirname(file), '../..');
      const config = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
      const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
      const program = ts.createProgram([file], options);
      const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
      const text = diagnostics.map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `line ${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      });
      assert.deepEqual(text, []);
    },
  );
});
