// The supervisor REPL of the real binary: driven through a pipe (attached to `troupe serve`, and embedded), and
// through a pseudo-terminal (`script` from util-linux) for Tab completion, history and the Ctrl-C key.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, closedPort, CONFIG, killAll, serve, startCommand, startTroupe, type TroupeProcess } from '../cli/child.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'troupe-repl-'));
const ID = '[0-9a-f]{28}';
let server: { url: string; process: TroupeProcess };

before(async () => {
  server = await serve();
});

after(async () => {
  if (server && server.process.child.exitCode === null) {
    server.process.child.kill('SIGTERM');
    await server.process.exited;
  }
  await killAll();
  rmSync(tmp, { recursive: true, force: true });
});

/** Sends one line and waits for what it should print. */
async function send(repl: TroupeProcess, line: string, expect: RegExp): Promise<RegExpMatchArray> {
  const seen = repl.waitFor(expect);
  repl.write(`${line}\n`);
  return seen;
}

describe('repl attached to a server, through a pipe', () => {
  it('shows the tree, follows a task to its end, stops a follow on Ctrl-C, cancels, and survives mistakes', async () => {
    const history = path.join(tmp, 'pipe-history');
    const repl = startTroupe(['repl', '--url', server.url], { TROUPE_REPL_HISTORY: history });
    await repl.waitFor(/troupe repl — http:\/\/127\.0\.0\.1:\d+/, { from: 0 });

    const tree = repl.waitFor(/^└─ executor\s+actor\s+running\s+restarts 0/m);
    repl.write('tree\n');
    await tree;
    assert.match(repl.stdout, /^root\s+supervisor\s+running\s+one-for-one/m);
    assert.match(repl.stdout, /^├─ tracker\s+actor\s+running/m);

    const gate = path.join(tmp, 'gate-r');
    const [, gateId] = await send(repl, `enqueue gate {"file": ${JSON.stringify(gate)}}`, new RegExp(`^(${ID})$`, 'm'));
    await send(repl, `tail ${gateId}`, /^waiting for gate-r$/m);
    const ended = repl.waitFor(new RegExp(`^${gateId} succeeded → \\{"opened":true\\}$`, 'm'));
    writeFileSync(gate, '');
    await ended;

    const [, id] = await send(repl, 'enqueue forever', new RegExp(`^(${ID})$`, 'm'));
    await send(repl, `tail ${id!.slice(0, 18)}`, /^ready$/m);
    const stopped = repl.waitFor(new RegExp(`^stopped following ${id} `, 'm'));
    repl.child.kill('SIGINT');
    await stopped;
    await send(repl, `cancel ${id}`, new RegExp(`^cancelled ${id}$`, 'm'));
    await send(repl, `inspect ${id}`, /^state\s+cancelled$/m);
    assert.match(repl.stdout, /running → cancelled\s+1\s+cancelled by user/);

    await send(repl, 'bogus', /^error TROUPE_ERR_INVALID_OPTION: unknown command `bogus` — type help for the list$/m);
    await send(repl, 'run echo {bad', /^error TROUPE_ERR_INVALID_INPUT: bad JSON in the input: /m);
    await send(repl, 'run nope', /^error TROUPE_ERR_UNKNOWN_TASK: /m);
    await send(repl, 'inspect', /^error TROUPE_ERR_INVALID_OPTION: usage: inspect <id>$/m);
    await send(repl, 'ps cancelled forever', new RegExp(`^${id}\\s+forever\\s+cancelled\\s+1/1`, 'm'));
    await send(repl, 'run steps {"n": 2}', /succeeded → \{"steps":2\}$/m);
    assert.match(repl.stdout, /^step 1 of 2\nprogress 50% \(1\/2\)\nstep 2 of 2\nprogress 100% \(2\/2\)\n/m);
    await send(repl, 'pause steps', /^paused steps/m);
    await send(repl, 'resume steps', /^resumed steps$/m);
    await send(repl, 'restart executor', /^restarted executor$/m);
    await send(repl, 'advise {"recurring": true}', /^pattern\s+schedule$/m);

    repl.write('exit\n');
    const { code } = await repl.exited;
    assert.equal(code, 0, repl.stderr);
    const kept = readFileSync(history, 'utf8').split('\n');
    assert.equal(kept[0], 'tree');
    assert.ok(kept.includes(`cancel ${id}`));
    assert.equal(kept.at(-2), 'exit');
  });

  it('ps refuses a word that is neither a state nor a task name (a misspelt state is not an empty table)', async () => {
    const repl = startTroupe(['repl', '--url', server.url], { TROUPE_REPL_HISTORY: path.join(tmp, 'h-ps') });
    await repl.waitFor(/troupe repl — /, { from: 0 });
    await send(repl, 'ps faild', /^error TROUPE_ERR_INVALID_OPTION: `faild` is neither a state \(scheduled, queued, .*\) nor a registered task name/m);
    await send(repl, 'ps nope', /^error TROUPE_ERR_INVALID_OPTION: `nope` is neither a state/m);
    await send(repl, 'ps failed stubborn', /^no tasks/m);
    for (const count of ['0', '-1', '1.5', '1001']) {
      await send(repl, `ps ${count}`, new RegExp(`^error TROUPE_ERR_INVALID_OPTION: a count is a whole number from 1 to 1000, got \`${count.replace('.', '\\.')}\` — usage: ps \\[state\\] \\[name\\] \\[limit\\]$`, 'm'));
    }
    await send(repl, 'ps failed 1000', /^no tasks/m);
    repl.child.stdin?.end();
    assert.equal((await repl.exited).code, 0, repl.stderr);
  });

  it('an id prefix that several recent tasks start with is refused, naming them, wherever an id is taken', async () => {
    const repl = startTroupe(['repl', '--url', server.url], { TROUPE_REPL_HISTORY: path.join(tmp, 'h-prefix') });
    await repl.waitFor(/troupe repl — /, { from: 0 });
    const [, a] = await send(repl, 'enqueue echo {"n":1}', new RegExp(`^(${ID})$`, 'm'));
    const [, b] = await send(repl, 'enqueue echo {"n":2}', new RegExp(`^(${ID})$`, 'm'));
    // Ids of one process share their leading (time) digits; 4 characters is the shortest prefix taken.
    let common = 0;
    while (a![common] === b![common]) common++;
    assert.ok(common >= 4, `${a} and ${b} share at least 4 leading characters`);
    const prefix = a!.slice(0, common);
    for (const command of ['inspect', 'tail', 'cancel', 'retry']) {
      await send(repl, `${command} ${prefix}`, new RegExp(`^error TROUPE_ERR_INVALID_OPTION: \`${prefix}\` is the start of 2 recent task ids \\(${b}, ${a}\\) — type more of the id$`, 'm'));
    }
    await send(repl, `inspect ${a!.slice(0, common + 1)}`, new RegExp(`^id\\s+${a}$`, 'm'));
    repl.child.stdin?.end();
    assert.equal((await repl.exited).code, 0, repl.stderr);
  });

  it('leaves quietly (exit 141) when its stdout is closed by the reader (`| head`)', async () => {
    const repl = startTroupe(['repl', '--url', server.url], { TROUPE_REPL_HISTORY: path.join(tmp, 'h-epipe') });
    await repl.waitFor(/troupe repl — /, { from: 0 });
    repl.child.stdout?.destroy();
    repl.write('types\nhealth\nps\n');
    const { code } = await repl.exited;
    assert.equal(code, 141, repl.stderr);
    assert.equal(repl.stderr, '');
  });

  it('an unreachable server is one line; the REPL keeps running', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const repl = startTroupe(['repl', '--url', url], { TROUPE_REPL_HISTORY: path.join(tmp, 'h-unreachable') });
    await repl.waitFor(new RegExp(`^error TROUPE_ERR_CLOSED: cannot reach ${url}: connection refused — is \`troupe serve\` running\\?`, 'm'), { from: 0 });
    await send(repl, 'ps', /^error TROUPE_ERR_CLOSED: cannot reach/m);
    await send(repl, 'help tail', /^tail <id>$/m);
    repl.child.stdin?.end();
    assert.equal((await repl.exited).code, 0);
  });
});

describe('repl embedded from a config', () => {
  it('runs the same commands against an in-process runtime', async () => {
    const repl = startTroupe(['repl', '--config', CONFIG], { TROUPE_REPL_HISTORY: path.join(tmp, 'h-embedded') });
    await repl.waitFor(/troupe repl — embedded runtime \(.*troupe\.config\.ts, store memory\)/, { from: 0 });
    await send(repl, 'run echo {"a": 1}', /succeeded → \{"a":1\}$/m);
    await send(repl, 'tree', /^└─ executor\s+actor\s+running/m);
    await send(repl, 'health', /^status\s+ok$/m);
    await send(repl, 'maint log-statistics', new RegExp(`^${ID}  \\(\`tail`, 'm'));
    await send(repl, 'ps', /^ID\s+NAME\s+STATE/m);
    repl.write('exit\n');
    assert.equal((await repl.exited).code, 0, repl.stderr);
  });
});

const hasScript = spawnSync('script', ['--version']).status === 0;

describe('repl in a pseudo-terminal', () => {
  it('completes with Tab, recalls history from an earlier session, and Ctrl-C stops a follow, not the REPL', { skip: hasScript ? false : 'util-linux `script` is not installed: no pseudo-terminal to test Tab and Ctrl-C keys' }, async () => {
    const history = path.join(tmp, 'pty-history');
    writeFileSync(history, 'types\n');
    const pty = startCommand('script', ['-qfec', `${process.execPath} ${BIN} repl --url ${server.url}`, '/dev/null'], { TROUPE_REPL_HISTORY: history, NO_COLOR: '1' });
    await pty.waitFor(/troupe> $/, { from: 0 });

    // Up-arrow brings back the last line of the earlier session.
    let seen = pty.waitFor(/troupe> types$/);
    pty.write('\x1b[A');
    await seen;
    seen = pty.waitFor(/^echo\s+inline\s+returns its input$/m);
    pty.write('\r');
    await seen;

    // Tab completes the command, then the task name (readline echoes only the completed rest).
    const mark = pty.stdout.length;
    pty.write('ru\t');
    await pty.waitFor(/run $/, { from: mark });
    pty.write('ec\t');
    await pty.waitFor(/run echo $/, { from: mark });
    seen = pty.waitFor(/succeeded → \{"a":2\}$/m);
    pty.write('{"a":2}\r');
    await seen;

    // Ctrl-C (the key, in raw mode) ends the follow and the prompt comes back.
    seen = pty.waitFor(new RegExp(`^(${ID})$`, 'm'));
    pty.write('enqueue forever\r');
    const [, id] = await seen;
    seen = pty.waitFor(/^ready$/m);
    pty.write(`tail ${id}\r`);
    await seen;
    seen = pty.waitFor(new RegExp(`stopped following ${id}[^\\n]*\\n(?:.*\\n)*?troupe> $`));
    pty.write('\x03');
    await seen;
    const before = pty.stdout.length;
    pty.write(`cancel ${id.slice(0, 18)}\t`);
    await pty.waitFor(new RegExp(`cancel ${id} $`), { from: before });
    seen = pty.waitFor(new RegExp(`^cancelled ${id}$`, 'm'));
    pty.write('\r');
    await seen;

    // Ctrl-C on a half-typed line drops the line (and does not ask to leave).
    const typed = pty.stdout.length;
    pty.write('hel');
    await pty.waitFor(/hel$/, { from: typed });
    pty.write('\x03');
    seen = pty.waitFor(/^tail <id>$/m);
    pty.write('help tail\r');
    await seen;
    assert.doesNotMatch(pty.stdout, /press Ctrl-C again/);

    // At an empty prompt Ctrl-C asks for a second one, which leaves.
    seen = pty.waitFor(/press Ctrl-C again, type exit or press Ctrl-D to leave/);
    pty.write('\x03');
    await seen;
    pty.write('\x03');
    const { code } = await pty.exited;
    assert.equal(code, 0, pty.stdout);
    assert.deepEqual(readFileSync(history, 'utf8').trim().split('\n'), ['types', 'run echo {"a":2}', 'enqueue forever', `tail ${id}`, `cancel ${id}`, 'help tail']);
  });
});
