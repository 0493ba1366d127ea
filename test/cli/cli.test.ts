// The real `troupe` binary as a child process: run exit codes, and serve + enqueue + status + logs -f + cancel.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closedPort, CONFIG, killAll, serve, startTroupe, troupe, type TroupeProcess } from './child.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'troupe-cli-'));
/** Ports `troupe serve` accepts but fetch refuses (https://fetch.spec.whatwg.org/#port-blocking). */
const FETCH_BAD_PORTS = [10080, 6000, 6665, 6666, 6667, 6668, 6669, 4190, 6679];

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

describe('troupe serve and the client commands', () => {
  const token = 'cli-test-token-0123456789';
  let server: { url: string; process: TroupeProcess };
  const client = (args: string[], env: Record<string, string | undefined> = {}) => troupe(args, { TROUPE_URL: server.url, TROUPE_TOKEN: token, ...env });

  before(async () => {
    server = await serve(['--store', `sqlite:${path.join(tmp, 'serve.db')}`, '--grace', '300ms'], { TROUPE_TOKEN: token });
  });

  after(async () => {
    if (server.process.child.exitCode === null) {
      server.process.child.kill('SIGTERM');
      await server.process.exited;
    }
  });

  it('prints the URL it bound and the store it opened', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await server.process.waitFor(/^\s+store\s+sqlite$/m, { from: 0 });
  });

  it('enqueue → status → logs -f follows the output to the end; exit 0 when the task succeeded', async () => {
    const gate = path.join(tmp, 'gate-1');
    const enqueued = await client(['enqueue', 'gate', '--input', JSON.stringify({ file: gate })]);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const id = enqueued.stdout.trim();
    assert.match(id, /^[0-9a-f]{28}$/);

    const logs = startTroupe(['logs', id, '-f'], { TROUPE_URL: server.url, TROUPE_TOKEN: token });
    await logs.waitFor(/waiting for gate-1/, { from: 0 });
    const running = await client(['status', id, '--json']);
    assert.equal(running.code, 0, running.stderr);
    assert.equal(JSON.parse(running.stdout).state, 'running');

    writeFileSync(gate, '');
    const { code } = await logs.exited;
    assert.equal(code, 0, logs.stderr);
    assert.deepEqual(logs.stdout.trim().split('\n'), ['waiting for gate-1', 'gate opened']);
    assert.match(logs.stderr, new RegExp(`${id} succeeded → \\{"opened":true\\}`));

    const status = await client(['status', id]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /^state\s+succeeded$/m);
    assert.match(status.stdout, /^result\s+\{"opened":true\}$/m);
    assert.match(status.stdout, /running → succeeded/);
    const stored = await client(['logs', id]);
    assert.deepEqual(stored.stdout.trim().split('\n'), ['waiting for gate-1', 'gate opened']);
  });

  it('cancel ends a running command; logs -f exits 1; retry puts it back', async () => {
    const id = (await client(['enqueue', 'forever'])).stdout.trim();
    const logs = startTroupe(['logs', id, '--follow'], { TROUPE_URL: server.url, TROUPE_TOKEN: token });
    await logs.waitFor(/^ready$/m, { from: 0 });

    const cancel = await client(['cancel', id]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, `cancelled ${id}\n`);
    const { code } = await logs.exited;
    assert.equal(code, 1);
    assert.match(logs.stderr, new RegExp(`${id} cancelled`));

    const [again, status, listed, table] = await Promise.all([
      client(['cancel', id, '--json']),
      client(['status', id, '--json']),
      client(['list', '--state', 'cancelled', '--json']),
      client(['list', '--name', 'forever']),
    ]);
    assert.deepEqual(JSON.parse(again.stdout), { id, cancelled: false });
    const view = JSON.parse(status.stdout);
    assert.equal(view.state, 'cancelled');
    assert.equal(view.error.code, 'TROUPE_ERR_CANCELLED');
    assert.ok(JSON.parse(listed.stdout).tasks.some((t: { id: string }) => t.id === id));
    assert.match(table.stdout, /^ID\s+NAME\s+STATE/);
    assert.match(table.stdout, new RegExp(`^${id}\\s+forever\\s+cancelled`, 'm'));

    const retry = await client(['retry', id]);
    assert.equal(retry.code, 0, retry.stderr);
    const follow = startTroupe(['logs', id, '-f'], { TROUPE_URL: server.url, TROUPE_TOKEN: token });
    await follow.waitFor(/^ready\n(?:.*\n)*ready$/m, { from: 0 });
    assert.equal((await client(['cancel', id])).code, 0);
    assert.equal((await follow.exited).code, 1);
  });

  it('says clearly what is wrong: bad token, unknown task, no such task, bad option', async () => {
    const [noToken, badToken, unknownTask, missing, badState, badUrl, badDelay] = await Promise.all([
      client(['list'], { TROUPE_TOKEN: undefined }),
      client(['list', '--token', 'wrong']),
      client(['enqueue', 'nope']),
      client(['status', '01a2000000000000000000000000']),
      client(['list', '--state', 'done']),
      client(['list', '--url', 'not a url']),
      client(['enqueue', 'forever', '--delay', '-5']),
    ]);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /^error TROUPE_ERR_UNAUTHORIZED: .*401.*--token or set TROUPE_TOKEN\n$/);
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /^error TROUPE_ERR_UNAUTHORIZED: .*token was refused/);
    assert.equal(unknownTask.code, 2);
    assert.match(unknownTask.stderr, /^error TROUPE_ERR_UNKNOWN_TASK: /);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error TROUPE_ERR_NOT_FOUND: /);
    assert.equal(badState.code, 2);
    assert.match(badState.stderr, /^error TROUPE_ERR_INVALID_OPTION: Expected `--state`/);
    assert.equal(badUrl.code, 2);
    assert.equal(badDelay.code, 2);
    assert.match(badDelay.stderr, /^error TROUPE_ERR_INVALID_OPTION: Expected `--delay`/);
    for (const r of [noToken, badToken, unknownTask, missing, badState, badUrl, badDelay]) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('health, types and maint --wait', async () => {
    const [health, types, maint] = await Promise.all([
      client(['health', '--json']),
      client(['types']),
      client(['maint', 'cleanup-runs', '--max-age-hours', '48', '--wait', '--json']),
    ]);
    assert.equal(health.code, 0, health.stderr);
    const info = JSON.parse(health.stdout);
    assert.equal(info.status, 'ok');
    assert.ok(info.report?.checks, 'the full report');
    assert.match(types.stdout, /^steps\s+command\s+prints n lines/m);
    assert.equal(maint.code, 0, maint.stderr);
    const done = JSON.parse(maint.stdout);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result.maxAgeHours, 48);
  });

  it('logs -f whose stdout is closed by its reader (`| head`) ends quietly with 141, no stack trace', async () => {
    // A task that prints until stopped: the follow is still writing when its reader goes away.
    const id = (await client(['enqueue', 'chatter'])).stdout.trim();
    const logs = startTroupe(['logs', id, '-f'], { TROUPE_URL: server.url, TROUPE_TOKEN: token });
    await logs.waitFor(/^line \d+$/m, { from: 0 });
    logs.child.stdout?.destroy();
    const { code } = await logs.exited;
    assert.equal(code, 141, logs.stderr);
    assert.equal(logs.stderr, '');
    assert.equal((await client(['cancel', id])).code, 0);
  });

  it('stops gracefully on SIGTERM: running work is stopped, the process exits 0', async () => {
    const id = (await client(['enqueue', 'forever'])).stdout.trim();
    const logs = startTroupe(['logs', id, '-f'], { TROUPE_URL: server.url, TROUPE_TOKEN: token });
    await logs.waitFor(/^ready$/m, { from: 0 });
    const stopping = server.process.waitFor(/^stopped$/m);
    server.process.child.kill('SIGTERM');
    await stopping;
    const { code } = await server.process.exited;
    assert.equal(code, 0, server.process.stderr);
    assert.match(server.process.stdout, /SIGTERM: stopping/);
    await logs.exited;
  });
});

describe('troupe without a server', () => {
  it('an unreachable server is one line naming the URL and what to do; exit 1', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await troupe(['status', '01a2000000000000000000000000', '--url', url]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error TROUPE_ERR_CLOSED: cannot reach ${url}: connection refused — is \`troupe serve\` running? (set --url or TROUPE_URL)\n`);
  });

  it('a second signal stops serve at once when tasks do not end (exit 130)', async () => {
    const { url, process: p } = await serve(['--grace', '100ms']);
    const id = (await troupe(['enqueue', 'stubborn'], { TROUPE_URL: url })).stdout.trim();
    const logs = startTroupe(['logs', id, '-f'], { TROUPE_URL: url });
    await logs.waitFor(/^ready$/m, { from: 0 });
    const stopping = p.waitFor(/SIGINT: stopping/);
    p.child.kill('SIGINT');
    await stopping;
    p.child.kill('SIGINT');
    const { code } = await p.exited;
    assert.equal(code, 130);
    assert.match(p.stderr, /SIGINT again: stopping now/);
    logs.child.kill('SIGTERM');
    await logs.exited;
  });

  it('reaches a server on a port fetch refuses (10080, 6000…: the Fetch spec\'s "bad ports")', async () => {
    let served: { url: string; process: TroupeProcess } | undefined;
    for (const port of FETCH_BAD_PORTS) {
      const p = startTroupe(['serve', '--config', CONFIG, '--port', String(port)]);
      const outcome = await Promise.race([p.waitFor(/troupe serving (http:\/\/\S+)/, { from: 0 }).catch(() => undefined), p.exited.then(() => undefined)]);
      if (outcome) {
        served = { url: outcome[1]!, process: p };
        break;
      }
      assert.match(p.stderr, /address is in use/, p.stderr);
    }
    assert.ok(served, `all of ${FETCH_BAD_PORTS.join(', ')} are in use`);
    const health = await troupe(['health', '--json', '--url', served.url]);
    assert.equal(health.code, 0, health.stderr);
    assert.equal(JSON.parse(health.stdout).status, 'ok');
    const id = (await troupe(['enqueue', 'steps', '--input', '{"n":2}', '--url', served.url])).stdout.trim();
    const logs = await troupe(['logs', id, '-f', '--url', served.url]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.deepEqual(logs.stdout.trim().split('\n'), ['step 1 of 2', 'step 2 of 2']);
    served.process.child.kill('SIGTERM');
    await served.process.exited;
  });

  it('refuses what it would otherwise ignore: advise <task> with trait flags, repl --store without --config', async () => {
    const [advise, noResult, repl] = await Promise.all([
      troupe(['advise', 'echo', '--count', '5']),
      troupe(['advise', 'echo', '--no-result', '--high-frequency']),
      troupe(['repl', '--store', 'memory']),
    ]);
    assert.equal(advise.code, 2);
    assert.equal(advise.stderr, 'error TROUPE_ERR_INVALID_OPTION: give either a task name (advice from its measured history) or trait flags, not both: echo with --count\n');
    assert.equal(noResult.code, 2);
    assert.match(noResult.stderr, /not both: echo with --high-frequency, --no-result\n$/);
    assert.equal(repl.code, 2);
    assert.match(repl.stderr, /^error TROUPE_ERR_INVALID_OPTION: --store needs --config/);
    // Refused before any request (no server at this address): --max-age-hours where it means nothing was sent as
    // `maxAgeHours` and came back as the server's "Invalid body: must NOT have additional properties"; given with
    // a different `maxAgeHours` in --input, one of the two was dropped silently.
    const nowhere = { TROUPE_URL: 'http://127.0.0.1:9' };
    const [stats, twice] = await Promise.all([
      troupe(['maint', 'log-statistics', '--max-age-hours', '3'], nowhere),
      troupe(['maint', 'cleanup-runs', '--max-age-hours', '2', '--input', '{"maxAgeHours":3}'], nowhere),
    ]);
    assert.equal(stats.code, 2, stats.stderr);
    assert.equal(stats.stderr, 'error TROUPE_ERR_INVALID_OPTION: --max-age-hours is for cleanup-runs and cleanup-temp-files, not log-statistics\n');
    assert.equal(twice.code, 2, twice.stderr);
    assert.equal(twice.stderr, 'error TROUPE_ERR_INVALID_OPTION: give the age once: --max-age-hours 2 or `maxAgeHours` in --input (3), not both\n');
  });

  it('advise needs no server', async () => {
    const r = await troupe(['advise', '--duration', '2m', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).pattern, 'start');
  });
});
