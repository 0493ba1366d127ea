import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, lstat, lutimes, mkdir, mkdtemp, readdir, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  cleanupTempFiles,
  defaultTempRoot,
  parseCleanupTempFilesInput,
} from '../../../actors/maintenance/cleanup-temp-files.ts';
import { ManualClock } from '../../../src/clock.ts';
import { ErrorCodes } from '../../../src/errors.ts';

const HOUR = 3_600_000;
const now = Date.now();
const clock = new ManualClock(now);
const OLD = new Date(now - 48 * HOUR);

let base: string;
before(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'troupe-cleanup-test-')));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}

async function file(p: string, content: string, mtime?: Date): Promise<void> {
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, content);
  if (mtime) await utimes(p, mtime, mtime);
}

/**
 * root/
 *   old.txt (old, 10 bytes)      new.txt (new)
 *   nested/a/old.log (old)       nested/a/new.log (new)     → nested/a stays
 *   stale/deep/old.bin (old; folders old too)             → the whole branch goes
 *   fresh-empty/ (new, empty)                              → stays: a task may have just made it
 *   link-out → ../outside (old link)                       → the link goes, never its target
 *   link-file → ../outside/secret.txt (new link)           → stays
 * outside/secret.txt (old), outside/sub/x (old)            → never touched
 */
async function buildTree(name: string): Promise<{ root: string; outside: string }> {
  const root = path.join(base, name, 'root');
  const outside = path.join(base, name, 'outside');
  await file(path.join(outside, 'secret.txt'), 'secret', OLD);
  await file(path.join(outside, 'sub', 'x'), 'x', OLD);
  await file(path.join(root, 'old.txt'), '0123456789', OLD);
  await file(path.join(root, 'new.txt'), 'new');
  await file(path.join(root, 'nested', 'a', 'old.log'), 'old-log', OLD);
  await file(path.join(root, 'nested', 'a', 'new.log'), 'new-log');
  await file(path.join(root, 'stale', 'deep', 'old.bin'), 'bin', OLD);
  await mkdir(path.join(root, 'fresh-empty'));
  await symlink(outside, path.join(root, 'link-out'));
  await lutimes(path.join(root, 'link-out'), OLD, OLD);
  await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link-file'));
  // Folder times last, deepest first: creating entries bumped them.
  for (const dir of ['stale/deep', 'stale', 'nested/a', 'nested']) await utimes(path.join(root, dir), OLD, OLD);
  await utimes(path.join(outside, 'sub'), OLD, OLD);
  await utimes(outside, OLD, OLD);
  return { root, outside };
}

describe('cleanupTempFiles', () => {
  it('removes old files and stale empty folders, keeps new ones, never follows links out', async () => {
    const { root, outside } = await buildTree('main');
    const result = await cleanupTempFiles({ maxAgeHours: 24 }, { clock, tempRoot: root });

    assert.equal(result.removed, 4, 'old.txt, nested/a/old.log, stale/deep/old.bin and the link-out link');
    assert.equal(result.bytes, 10 + 7 + 3);
    assert.equal(result.directoriesRemoved, 2, 'stale/deep and stale');
    assert.deepEqual(result.errors, []);
    assert.equal(result.errorCount, 0);
    assert.equal(result.before, now - 24 * HOUR);
    assert.equal(result.dir, root);

    assert.deepEqual((await readdir(root)).sort(), ['fresh-empty', 'link-file', 'nested', 'new.txt']);
    assert.deepEqual(await readdir(path.join(root, 'nested', 'a')), ['new.log']);
    assert.ok(await exists(path.join(outside, 'secret.txt')), 'a link target outside the root is never touched');
    assert.ok(await exists(path.join(outside, 'sub', 'x')));

    const again = await cleanupTempFiles({ maxAgeHours: 24 }, { clock, tempRoot: root });
    assert.deepEqual([again.removed, again.directoriesRemoved, again.errorCount], [0, 0, 0], 'idempotent');
  });

  it('the age threshold is by mtime against the injected clock', async () => {
    const { root } = await buildTree('clock');
    const later = new ManualClock(now + 72 * HOUR);
    const result = await cleanupTempFiles({ maxAgeHours: 24 }, { clock: later, tempRoot: root });
    // Three days on, everything under the root is stale: it ends empty, but the root itself stays.
    assert.deepEqual(await readdir(root), []);
    assert.equal(result.removed, 7);
    assert.equal(result.directoriesRemoved, 5, 'stale/deep, stale, nested/a, nested, fresh-empty');
  });

  it('cleans only `dir` when given, relative to the root or absolute inside it', async () => {
    const { root } = await buildTree('dir');
    const result = await cleanupTempFiles({ maxAgeHours: 24, dir: 'nested' }, { clock, tempRoot: root });
    assert.equal(result.removed, 1);
    assert.ok(await exists(path.join(root, 'old.txt')), 'outside `dir` nothing is touched');
    assert.ok(!(await exists(path.join(root, 'nested', 'a', 'old.log'))));
    const abs = await cleanupTempFiles({ maxAgeHours: 24, dir: path.join(root, 'stale') }, { clock, tempRoot: root });
    assert.equal(abs.removed, 1);
    assert.ok(await exists(path.join(root, 'stale')), 'the folder asked for is emptied, not removed');
  });

  it('rejects a `dir` outside the root, also through a symlink, and touches nothing', async () => {
    const { root, outside } = await buildTree('reject');
    for (const dir of ['..', '../outside', outside, '/', 'nested/../../outside', 'link-out', 'link-out/sub']) {
      await assert.rejects(cleanupTempFiles({ maxAgeHours: 1, dir }, { clock, tempRoot: root }), { code: ErrorCodes.INVALID_INPUT }, dir);
    }
    assert.ok(await exists(path.join(outside, 'sub', 'x')));
    assert.ok(await exists(path.join(root, 'old.txt')));
  });

  it('a missing root or dir is nothing to clean', async () => {
    const missing = await cleanupTempFiles({ maxAgeHours: 1 }, { clock, tempRoot: path.join(base, 'nope') });
    assert.deepEqual([missing.removed, missing.bytes, missing.directoriesRemoved, missing.errorCount], [0, 0, 0, 0]);
    const { root } = await buildTree('missing-dir');
    const none = await cleanupTempFiles({ maxAgeHours: 1, dir: 'not-there' }, { clock, tempRoot: root });
    assert.equal(none.removed, 0);
  });

  it('per-file errors are collected with their code, and the rest is still cleaned', async (t) => {
    const root = path.join(base, 'errors');
    await file(path.join(root, 'locked', 'old.txt'), 'locked', OLD);
    await file(path.join(root, 'sealed', 'old.txt'), 'sealed', OLD);
    await file(path.join(root, 'free', 'old.txt'), 'free', OLD);
    for (const dir of ['', 'free']) await chmod(path.join(root, dir), 0o777);
    await chmod(path.join(root, 'locked'), 0o555);
    await chmod(path.join(root, 'sealed'), 0o000);
    t.after(() => Promise.all([chmod(path.join(root, 'locked'), 0o755), chmod(path.join(root, 'sealed'), 0o755)]));

    let result: Awaited<ReturnType<typeof cleanupTempFiles>>;
    if (process.getuid?.() === 0) {
      // Root ignores file modes: run the task as `nobody`, where EACCES is real.
      await chmod(base, 0o755);
      await chmod(path.join(base, 'errors'), 0o777);
      // tsx caches compiled files in TMPDIR: keep the child's cache inside the test's temp folder.
      const childTmp = path.join(base, 'child-tmp');
      await mkdir(childTmp, { mode: 0o777 });
      await chmod(childTmp, 0o777);
      const script = fileURLToPath(new URL('./fixtures/run-cleanup-temp-files.ts', import.meta.url));
      const tsx = fileURLToPath(import.meta.resolve('tsx'));
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', tsx, script, root, '24'], {
        uid: 65534,
        gid: 65534,
        cwd: root,
        env: { ...process.env, HOME: childTmp, TMPDIR: childTmp },
        timeout: 20_000,
      });
      result = JSON.parse(stdout) as typeof result;
    } else {
      result = await cleanupTempFiles({ maxAgeHours: 24 }, { clock, tempRoot: root });
    }
    assert.equal(result.removed, 1, 'free/old.txt');
    assert.equal(result.errorCount, 2);
    assert.deepEqual(
      result.errors.map((e) => [path.relative(root, e.path), e.code]).sort(),
      [
        [path.join('locked', 'old.txt'), 'EACCES'],
        ['sealed', 'EACCES'],
      ],
    );
    assert.ok(await exists(path.join(root, 'locked', 'old.txt')));
  });
});

describe('parseCleanupTempFilesInput', () => {
  it('defaults maxAgeHours to 24 and accepts numeric strings', () => {
    assert.deepEqual(parseCleanupTempFilesInput(undefined), { maxAgeHours: 24 });
    assert.deepEqual(parseCleanupTempFilesInput({ maxAgeHours: '6', dir: 'jobs' }), { maxAgeHours: 6, dir: 'jobs' });
    // Checked against the root when run: it may lie inside it.
    assert.deepEqual(parseCleanupTempFilesInput({ dir: '/tmp/troupe/jobs' }), { maxAgeHours: 24, dir: '/tmp/troupe/jobs' });
    assert.deepEqual(parseCleanupTempFilesInput({ dir: 'a/../b' }), { maxAgeHours: 24, dir: 'a/../b' });
  });

  it('rejects bad input with INVALID_INPUT', () => {
    for (const raw of [{ maxAgeHours: 0 }, { maxAgeHours: 87_601 }, { dir: '' }, { dir: 5 }, { dir: 'a\0b' }, { dir: '..' }, { dir: '../x' }, { dir: 'a/../../x' }, { temp_dir: '/' }, 'x']) {
      assert.throws(() => parseCleanupTempFilesInput(raw), { code: ErrorCodes.INVALID_INPUT }, JSON.stringify(raw));
    }
  });

  it('the default root is troupe’s own folder in the OS temp dir', () => {
    assert.equal(defaultTempRoot(), path.join(tmpdir(), 'troupe'));
  });
});
