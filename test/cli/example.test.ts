// `npm start` (examples/main.ts) follows the command line's colour rule: bold labels on a terminal only, never
// with NO_COLOR or into a pipe. Each run is stopped once its first line is out.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { killAll, startCommand, troupe } from './child.ts';

after(killAll);

/** The first line `npm start` prints (the runtime's node id), raw, escape codes kept. */
async function firstLine(env: Record<string, string | undefined>): Promise<string> {
  const p = startCommand(process.execPath, ['--import', 'tsx', 'examples/main.ts'], { NO_COLOR: undefined, FORCE_COLOR: undefined, ...env });
  await p.waitFor(/troupe runtime \S+ on \w+\n/, { from: 0, timeout: 60_000 });
  p.child.kill('SIGKILL');
  await p.exited;
  return p.stdout.split('\n')[0]!;
}

describe('npm start', () => {
  it('prints no escape codes into a pipe or with NO_COLOR, and bold labels when colour is forced', async () => {
    // One after the other: the example's store is one SQLite file.
    const piped = await firstLine({});
    const noColor = await firstLine({ NO_COLOR: '1', FORCE_COLOR: '1' });
    const forced = await firstLine({ FORCE_COLOR: '1' });
    assert.match(piped, /^ {5}troupe runtime /);
    assert.doesNotMatch(piped, /\x1b/);
    assert.doesNotMatch(noColor, /\x1b/);
    assert.match(forced, /^\x1b\[1m {4}\x1b\[22m troupe runtime /);
  });

  it('shows every pattern at work before it serves', async () => {
    const p = startCommand(process.execPath, ['--import', 'tsx', 'examples/main.ts'], { NO_COLOR: '1' });
    await p.waitFor(/unknown task → TROUPE_ERR_UNKNOWN_TASK\n/, { from: 0, timeout: 90_000 });
    p.child.kill('SIGKILL');
    await p.exited;
    const out = p.stdout;
    assert.match(out, /^P1 {3}run\('hash'\) → [0-9a-f]{16}…$/m);
    assert.match(out, /^P2 {3}\[stdout\] step 5\/5: processed 5000 rows$/m);
    assert.match(out, /^P2 {3}progress 100 %$/m);
    assert.match(out, /^P2 {3}result \{"rows":5000\}$/m);
    assert.match(out, /^P3 {3}runAll → fulfilled, fulfilled, fulfilled, fulfilled$/m);
    assert.match(out, /^P4 {3}enqueue\('flaky'\) → succeeded after 3 attempts; history: queued → running → retrying → /m);
    assert.match(out, /^P5 {3}schedule every 1s fired twice, then removed$/m);
    assert.match(out, /^P6 {3}4 borrows, at most 2 at once → resources [12], [12], [12], [12] \(2 opened, 2 kept\)$/m);
    assert.match(out, /^P7 {3}advise\(long, streaming\) → start: /m);
  });
});

describe('the example config', () => {
  it("refuses a hash input its schema does not take, naming the field, before anything runs (exit 2)", async () => {
    const p = await troupe(['run', 'hash', '--config', 'examples/troupe.config.ts', '--store', 'memory', '--input', '{"text":5}']);
    assert.equal(p.code, 2, p.stderr);
    assert.match(p.stderr, /^error TROUPE_ERR_INVALID_INPUT: Input of `hash` is invalid: text: /);
    const ok = await troupe(['run', 'hash', '--config', 'examples/troupe.config.ts', '--store', 'memory', '--input', '{"text":"a","rounds":1}']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).rounds, 1);
  });
});
