// kill -9 of a runtime at several points loses no task: a new runtime on the same SQLite file finishes every task
// exactly once, and the stored attempt counts explain every re-run.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

const NODE = new URL('../fixtures/durable/node.ts', import.meta.url).pathname;
const COUNT = 3000;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/**
 * Starts a runtime process; resolves when a stdout line matches `until` (then SIGKILLs it) or it exits. With `hold`,
 * its tasks never return (see the fixture).
 */
function runNode(db: string, log: string, until?: (line: string) => boolean, attempts = 10, hold = false): Promise<{ killed: boolean; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const args = [NODE, db, log, String(COUNT), String(attempts), ...(hold ? ['hold'] : [])];
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const lines: string[] = [];
    let killed = false;
    let buffer = '';
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        if (!killed && until?.(line)) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (killed && signal === 'SIGKILL') resolve({ killed, lines });
      else if (code === 0) resolve({ killed, lines });
      else reject(new Error(`node exited ${code ?? signal}: ${stderr.slice(-2000)}`));
    });
  });
}

describe('crash recovery on SQLite', () => {
  it('SIGKILL while enqueueing, while running and while committing loses nothing and completes each task once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-crash-'));
    const db = path.join(dir, 'troupe.db');
    const log = path.join(dir, 'executions.log');
    try {
      // 1. Killed in the middle of enqueueing.
      const first = await runNode(db, log, (l) => l === 'enqueued 1200');
      assert.equal(first.killed, true);
      // 2. Killed while tasks run (enqueueing resumes idempotently first).
      const second = await runNode(db, log, (l) => l === 'succeeded 800');
      assert.equal(second.killed, true);
      // 3. Killed right after a burst of completions, while outcomes are being committed.
      const third = await runNode(db, log, (l) => /^succeeded \d+$/.test(l) && Number(l.split(' ')[1]) >= 300);
      assert.equal(third.killed, true);
      // 4. A final run completes everything.
      const last = await runNode(db, log);
      assert.ok(last.lines.includes('done'), 'the last node finished');

      const store = createSqliteStore(db);
      await store.open();
      try {
        const counts = await store.counts(Date.now());
        assert.equal(counts.byState.succeeded, COUNT, JSON.stringify(counts.byState));
        const executions = new Map<string, number>();
        for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
          if (!line) continue;
          const [id] = line.split(' ');
          executions.set(id!, (executions.get(id!) ?? 0) + 1);
        }
        const seenInputs = new Set<number>();
        let cursor: string | undefined;
        let attemptsTotal = 0;
        do {
          const page = await store.list({ limit: 500, ...(cursor ? { cursor } : {}) });
          for (const task of page.tasks) {
            seenInputs.add((task.input as { i: number }).i);
            assert.equal(task.state, 'succeeded');
            assert.equal(task.result, (task.input as { i: number }).i * 2);
            const ran = executions.get(task.id) ?? 0;
            assert.ok(ran >= 1, `task ${task.id} never ran`);
            // Every execution was a claimed attempt; a claim whose node died before running it counts too.
            assert.ok(task.attempts >= ran, `task ${task.id}: ${ran} executions but ${task.attempts} attempts`);
            attemptsTotal += task.attempts;
            const history = await store.history(task.id);
            assert.equal(history.filter((h) => h.to === 'succeeded').length, 1, `task ${task.id} succeeded once`);
          }
          cursor = page.nextCursor;
        } while (cursor);
        assert.equal(seenInputs.size, COUNT, 'one task per key, none lost');
        // Two kills landed while tasks were claimed: those attempts were counted, then the tasks ran again.
        assert.ok(attemptsTotal > COUNT, `attempts ${attemptsTotal} should exceed ${COUNT}`);
      } finally {
        await store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with one attempt (the default), the tasks a killed node ran run again: at least once, none failed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-crash-'));
    const db = path.join(dir, 'troupe.db');
    const log = path.join(dir, 'executions.log');
    try {
      // Kill it while it holds claimed tasks: its tasks never return, so once every task is enqueued and one has
      // started, it holds claimed ones until it dies.
      let enqueued = false;
      let started = false;
      const killed = await runNode(
        db,
        log,
        (l) => {
          if (l === `enqueued ${COUNT}`) enqueued = true;
          if (l.startsWith('started ')) started = true;
          return enqueued && started;
        },
        1,
        true,
      );
      assert.equal(killed.killed, true);
      const peek = createSqliteStore(db);
      await peek.open();
      const held = (await peek.counts(Date.now())).byState.running ?? 0;
      await peek.close();
      assert.ok(held > 0, 'a kill landed while the node held claimed tasks');
      const last = await runNode(db, log, undefined, 1);
      assert.ok(last.lines.includes('done'), 'the last node finished');
      const store = createSqliteStore(db);
      await store.open();
      try {
        const counts = await store.counts(Date.now());
        assert.deepEqual([counts.byState.succeeded, counts.byState.failed ?? 0], [COUNT, 0], JSON.stringify(counts.byState));
        const rerun = new Set<string>();
        const seen = new Set<string>();
        for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
          const [id, attempt] = line.split(' ');
          if (!id) continue;
          if (seen.has(id)) rerun.add(id);
          seen.add(id);
          if (attempt === '2') rerun.add(id);
        }
        // The tasks the killed node held went back through their expired lease with one attempt added.
        const extra = [];
        let cursor: string | undefined;
        do {
          const page = await store.list({ limit: 1000, ...(cursor ? { cursor } : {}) });
          extra.push(...page.tasks.filter((t) => t.maxAttempts === 2));
          cursor = page.nextCursor;
        } while (cursor);
        for (const t of extra) {
          assert.equal(t.attempts, 2, t.id);
          assert.ok((await store.history(t.id)).some((h) => h.reason === 'lease expired (one attempt added)'), t.id);
        }
        assert.equal(extra.length, held, 'each task the killed node held went back with one attempt added');
        for (const id of rerun) assert.ok(extra.some((t) => t.id === id), `${id} ran twice without a lost lease`);
      } finally {
        await store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
