// The real `troupe` binary as a child process: `troupe run`'s exit codes, output and Ctrl-C.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CONFIG, killAll, serve, startTroupe, troupe } from './child.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'troupe-cli-'));

after(async () => {
  await killAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe('troupe run', () => {
  it('exits 0 with the result as JSON on stdout, output and progress on stderr', async () => {
    const [echo, steps] = await Promise.all([
      troupe(['run', 'echo', '--config', CONFIG, '--input', '{"text":"abc","n":[1,2]}']),
      troupe(['run', 'steps', '--config', CONFIG, '--input', '{"n":3}']),
    ]);
    assert.equal(echo.code, 0, echo.stderr);
    assert.deepEqual(JSON.parse(echo.stdout), { text: 'abc', n: [1, 2] });
    assert.equal(steps.code, 0, steps.stderr);
    assert.deepEqual(JSON.parse(steps.stdout), { steps: 3 });
    const lines = steps.stderr.trim().split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('step')), ['step 1 of 3', 'step 2 of 3', 'step 3 of 3']);
    assert.deepEqual(lines.filter((l) => l.startsWith('progress')), ['progress 33% (1/3)', 'progress 67% (2/3)', 'progress 100% (3/3)']);
    assert.equal(lines.length, 6, steps.stderr);
  });

  it('the argument parser\'s refusals are one `error TROUPE_ERR_INVALID_OPTION: …` line too, exit 2', async () => {
    const cases: [string[], string][] = [
      [['--bogus'], "unknown option '--bogus'"],
      [['cancel'], "missing required argument 'id'"],
      [['serve', '--port', 'abc'], "option '-p, --port <port>' argument 'abc' is invalid. a port is an integer from 0 to 65535, got abc"],
      [['list', '--limit'], "option '--limit <n>' argument missing"],
      [['status', 'a', 'b'], "too many arguments for 'status'. Expected 1 argument but got 2."],
      [['stauts', 'x'], "unknown command 'stauts' (Did you mean status?)"],
    ];
    const results = await Promise.all(cases.map(([args]) => troupe(args)));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, cases[i]![0].join(' '));
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `error TROUPE_ERR_INVALID_OPTION: ${cases[i]![1]} (see troupe --help)\n`);
    });
  });

  it('exits 1 with `error CODE: message` when the task fails, 2 for usage mistakes', async () => {
    const inputFile = path.join(tmp, 'input.json');
    writeFileSync(inputFile, '{"from":"file"}');
    const [fail, unknownTask, badJson, unknownCommand, missingArg, both, fromFile] = await Promise.all([
      troupe(['run', 'fail', '--config', CONFIG]),
      troupe(['run', 'nope', '--config', CONFIG]),
      troupe(['run', 'echo', '--config', CONFIG, '--input', '{text:abc}']),
      troupe(['frobnicate']),
      troupe(['run']),
      troupe(['run', 'echo', '--config', CONFIG, '--input', '1', '--input-file', inputFile]),
      troupe(['run', 'echo', '--config', CONFIG, '--input-file', inputFile]),
    ]);
    assert.equal(fail.code, 1);
    assert.equal(fail.stdout, '');
    assert.match(fail.stderr, /^error TROUPE_ERR_TASK_FAILED: boom\n$/);
    assert.equal(unknownTask.code, 2);
    assert.match(unknownTask.stderr, /^error TROUPE_ERR_UNKNOWN_TASK: .*`nope`.*\n$/);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /^error TROUPE_ERR_INVALID_INPUT: bad JSON in --input/);
    assert.equal(unknownCommand.code, 2);
    assert.equal(unknownCommand.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(unknownCommand.stderr, /^error TROUPE_ERR_INVALID_OPTION: unknown command 'frobnicate' \(see troupe --help\)\n$/);
    assert.equal(missingArg.code, 2);
    assert.equal(missingArg.stderr, "error TROUPE_ERR_INVALID_OPTION: missing required argument 'task' (see troupe --help)\n");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /TROUPE_ERR_INVALID_OPTION/);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepEqual(JSON.parse(fromFile.stdout), { from: 'file' });
  });

  it('Ctrl-C cancels the running task and exits 130', async () => {
    const p = startTroupe(['run', 'forever', '--config', CONFIG]);
    await p.waitFor(/^ready$/m, { stream: 'stderr', from: 0 });
    p.child.kill('SIGINT');
    const { code } = await p.exited;
    assert.equal(code, 130);
    assert.match(p.stderr, /^error TROUPE_ERR_CANCELLED: /m);
  });
});
