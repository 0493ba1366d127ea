/**
 * A command that is a flow parent reads its children's outcomes from a JSON file, named in its environment as
 * `TROUPE_CHILDREN_FILE`: an argument or a variable would meet the system's limits (128 KiB per string on Linux)
 * with a few hundred results, a file meets none. The file lives under the runtime's temp folder, is written just
 * before the process starts and removed when it ends; one left by a crash is removed by `cleanup-temp-files`.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { FlowChild } from '../task.ts';

/** The environment variable that names the file. */
export const CHILDREN_FILE_ENV = 'TROUPE_CHILDREN_FILE';

/** The folder, under the temp root, that holds the files of running flow parents. */
export const CHILDREN_DIR = 'flow-children';

/**
 * Writes `children` as a JSON array to a file of its own for this attempt, runs `fn` with the file's path, and
 * removes the file when `fn` settles (its outcome is kept as it is).
 */
export async function withChildrenFile<T>(
  tempRoot: string,
  task: { id: string; attempt: number },
  children: readonly FlowChild[],
  fn: (file: string) => Promise<T>,
): Promise<T> {
  const dir = path.join(tempRoot, CHILDREN_DIR);
  const file = path.join(dir, `${task.id}-${task.attempt}.json`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(file, JSON.stringify(children));
  } catch (cause) {
    // The process never started: a failed attempt (retried as the task's policy says), saying what to fix.
    throw new TroupeError(ErrorCodes.TASK_FAILED, `Could not write the children's file ${file} (the runtime's \`tempDir\`): ${(cause as Error).message}`, { cause });
  }
  try {
    return await fn(file);
  } finally {
    await rm(file, { force: true });
  }
}
