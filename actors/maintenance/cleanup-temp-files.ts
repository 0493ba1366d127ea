/**
 * Built-in task `cleanup-temp-files`: removes stale files under the runtime's own temp root, then the
 * directories that this left empty.
 *
 * Rules, because this deletes files:
 * - Only inside the temp root (default `os.tmpdir()/troupe`). A `dir` is resolved against the root and must stay
 *   inside it, also after resolving symlinks; anything else is INVALID_INPUT and nothing is touched.
 * - Symlinks are never followed: a stale link is removed as a link, its target is left alone, and a directory
 *   whose real path has left the tree (swapped for a link mid-walk) is skipped.
 * - A file is stale when its mtime is older than `now − maxAgeHours`. A directory is removed only when it ended
 *   up empty *and* its own mtime was already stale, so a folder a task has just created is kept.
 * - One file that cannot be removed does not stop the rest: its path and error code are collected.
 * - A missing root or `dir` is not an error: nothing to clean.
 */
import { lstat, readdir, realpath, rmdir, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../src/clock.ts';
import { invalidInput, readInputObject, readMaxAgeHours } from './maintenance-input.ts';

export interface CleanupTempFilesInput {
  /** Files last modified longer ago than this many hours are removed. @default 24 */
  maxAgeHours: number;
  /** A folder inside the temp root to clean instead of the whole root (relative to the root, or absolute). */
  dir?: string;
}

export interface CleanupTempFilesDeps {
  clock: Clock;
  /** The runtime's temp root. @default path.join(os.tmpdir(), 'troupe') */
  tempRoot?: string;
}

export interface CleanupTempFilesResult {
  /** Files (and stale links) removed. */
  removed: number;
  /** Bytes of the regular files removed. */
  bytes: number;
  directoriesRemoved: number;
  /** Per-file failures, at most `MAX_REPORTED_ERRORS` of them; `errorCount` has the total. */
  errors: { path: string; code: string }[];
  errorCount: number;
  /** The folder that was cleaned (real path). */
  dir: string;
  maxAgeHours: number;
  /** Files modified before this time (epoch ms) were stale. */
  before: number;
}

export const MAX_REPORTED_ERRORS = 100;

/** The folder troupe and its tasks use for temporary files. */
export function defaultTempRoot(): string {
  return path.join(os.tmpdir(), 'troupe');
}

/**
 * Validates `{ maxAgeHours?, dir? }` at the door. A relative `dir` that climbs out (`..`, `a/../../b`) leaves every
 * root and is refused here; whether any other `dir` lies inside the root (an absolute one, a symlink) is checked when
 * run, where the root is known.
 */
export function parseCleanupTempFilesInput(raw: unknown): CleanupTempFilesInput {
  const input = readInputObject(raw, ['maxAgeHours', 'dir']);
  const out: CleanupTempFilesInput = { maxAgeHours: readMaxAgeHours(input.maxAgeHours) };
  if (input.dir !== undefined) {
    if (typeof input.dir !== 'string' || input.dir.trim() === '' || input.dir.includes('\0')) {
      throw invalidInput('dir', 'a folder path inside the temp root', input.dir);
    }
    const climbs = path.normalize(input.dir).split(path.sep)[0] === '..';
    if (!path.isAbsolute(input.dir) && climbs) throw invalidInput('dir', 'a folder path inside the temp root, not above it', input.dir);
    out.dir = input.dir;
  }
  return out;
}

/** Removes stale temp files (and then empty stale folders) under the temp root; never outside it. */
export async function cleanupTempFiles(
  input: Partial<CleanupTempFilesInput> | undefined,
  deps: CleanupTempFilesDeps,
): Promise<CleanupTempFilesResult> {
  const { maxAgeHours, dir } = parseCleanupTempFilesInput(input);
  const root = path.resolve(deps.tempRoot ?? defaultTempRoot());
  const target = dir === undefined ? root : path.resolve(root, dir);
  if (!isInside(root, target)) throw invalidInput('dir', `a folder inside the temp root (${root})`, dir);

  const before = deps.clock.now() - Math.round(maxAgeHours * 3_600_000);
  const result: CleanupTempFilesResult = {
    removed: 0,
    bytes: 0,
    directoriesRemoved: 0,
    errors: [],
    errorCount: 0,
    dir: target,
    maxAgeHours,
    before,
  };

  const realRoot = await realpathOrUndefined(root);
  if (realRoot === undefined) return result;
  const realTarget = await realpathOrUndefined(target);
  if (realTarget === undefined) return result;
  if (!isInside(realRoot, realTarget)) throw invalidInput('dir', `a folder inside the temp root (${root})`, dir);
  result.dir = realTarget;

  const fail = (file: string, error: unknown): void => {
    result.errorCount++;
    if (result.errors.length < MAX_REPORTED_ERRORS) result.errors.push({ path: file, code: codeOf(error) });
  };

  /** Cleans one folder; resolves true when it is empty afterwards. */
  async function walk(folder: string): Promise<boolean> {
    let names: string[];
    try {
      // A folder that is no longer where it was (replaced by a link) is not entered.
      if ((await realpath(folder)) !== folder) return false;
      names = await readdir(folder);
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') fail(folder, error);
      return false;
    }
    let remaining = names.length;
    for (const name of names) {
      const file = path.join(folder, name);
      try {
        const stat = await lstat(file);
        if (stat.isDirectory()) {
          const staleFolder = stat.mtimeMs < before;
          const empty = await walk(file);
          if (empty && staleFolder) {
            const outcome = await removeFolder(file);
            if (outcome === 'removed') result.directoriesRemoved++;
            if (outcome !== 'kept') remaining--;
          }
        } else if (stat.mtimeMs < before) {
          await unlink(file);
          result.removed++;
          if (stat.isFile()) result.bytes += stat.size;
          remaining--;
        }
      } catch (error) {
        if (codeOf(error) === 'ENOENT') remaining--;
        else fail(file, error);
      }
    }
    return remaining === 0;
  }

  /** rmdir, where "someone just put a file in it" is not a failure. */
  async function removeFolder(folder: string): Promise<'removed' | 'gone' | 'kept'> {
    try {
      await rmdir(folder);
      return 'removed';
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ENOENT') return 'gone';
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') fail(folder, error);
      return 'kept';
    }
  }

  await walk(realTarget);
  return result;
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!path.isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${path.sep}`));
}

async function realpathOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await realpath(file);
  } catch (error) {
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
