// The real `troupe` binary as a child process, with no server: errors that name what to do, serve's second signal, advise.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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

describe('troupe without a server', () => {
  it('an unreachable server is one line naming the URL and what to do; exit 1', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await troupe(['status', '01a2000000000000000000000000', '--url', url]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error TROUPE_ERR_CLOSED: cannot reach ${url}: connection refused — is \`troupe serve\` running? (set --url or TROUPE_URL)\n`);
  });

  it('enqueue refuses a bad --key or --priority itself, naming the flag, before any request (exit 2)', async () => {
    // The server is unreachable: a request would answer TROUPE_ERR_CLOSED (exit 1) instead.
    const url = `http://127.0.0.1:${await closedPort()}`;
    const cases: [string[], RegExp][] = [
      [['--key', ''], /^error TROUPE_ERR_INVALID_OPTION: Expected `--key` to be a non-empty string of at most 512 characters/],
      [['--key', 'k'.repeat(513)], /^error TROUPE_ERR_INVALID_OPTION: Expected `--key` to be a non-empty string of at most 512 characters/],
      [['--priority', String(2 ** 31 + 1)], /^error TROUPE_ERR_INVALID_OPTION: Expected `--priority` to be an integer from -2147483648 to 2147483648/],
    ];
    for (const [args, message] of cases) {
      const r = await troupe(['enqueue', 'echo', ...args, '--url', url]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
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
    // Its value is read as the HTTP query string reads `?maxAgeHours=`: decimal digits only.
    const [stats, twice, exponent, hex, tooOld] = await Promise.all([
      troupe(['maint', 'log-statistics', '--max-age-hours', '3'], nowhere),
      troupe(['maint', 'cleanup-runs', '--max-age-hours', '2', '--input', '{"maxAgeHours":3}'], nowhere),
      troupe(['maint', 'cleanup-runs', '--max-age-hours', '1e2'], nowhere),
      troupe(['maint', 'cleanup-temp-files', '--max-age-hours', '0x10'], nowhere),
      troupe(['maint', 'cleanup-runs', '--max-age-hours', '87601'], nowhere),
    ]);
    for (const [r, text] of [[exponent, '1e2'], [hex, '0x10'], [tooOld, '87601']] as const) {
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `error TROUPE_ERR_INVALID_OPTION: Expected \`--max-age-hours\` to be a positive decimal number of hours, at most 87600, got \`${text}\`\n`);
    }
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
