// troupe loads the optional dependencies a runtime does not use only when they are first used: a runtime on SQLite
// that runs inline tasks never loads the PostgreSQL driver, Piscina, execa, croner, pidusage, fastify or prom-client
// (each costs every process megabytes of RSS and heap: src/lazy-require.ts), and each one is loaded, and works,
// when it is used.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { tempDb } from '../helpers/temp-db.ts';

const SCRIPT = new URL('../fixtures/lazy/report-loaded.ts', import.meta.url).pathname;

describe('optional dependencies', () => {
  it('are loaded at first use, not when troupe is imported', async () => {
    // A fresh process: this test runner has loaded some of them already.
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', SCRIPT, tempDb('lazy')], { timeout: 60_000 });
    const steps = stdout.trim().split('\n').map((line) => JSON.parse(line) as { step: string; loaded: string[] });
    assert.deepEqual(steps, [
      { step: 'sqlite runtime ran an inline task', loaded: [] },
      { step: 'cron', loaded: ['croner'] },
      { step: 'postgres', loaded: ['pg', 'croner'] },
      { step: 'command', loaded: ['pg', 'execa', 'croner'] },
      { step: 'health', loaded: ['pg', 'execa', 'croner', 'pidusage'] },
      { step: 'thread pool', loaded: ['pg', 'piscina', 'execa', 'croner', 'pidusage'] },
      { step: 'http server', loaded: ['pg', 'piscina', 'execa', 'croner', 'pidusage', 'fastify', 'prom-client'] },
    ]);
  });
});
