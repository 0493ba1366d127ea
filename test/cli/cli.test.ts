// The real `troupe` binary as a child process: serve + enqueue + status + logs -f + cancel + retry.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { killAll, serve, startTroupe, troupe, type TroupeProcess } from './child.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'troupe-cli-'));

after(async () => {
  await killAll();
  rmSync(tmp, { recursive: true, force: true });
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
