/**
 * Built-in task `cleanup-runs`: deletes finished tasks (with their history and output) older than an age
 * threshold. Only final tasks are touched, judged by when they finished; queued and running work never is.
 */
import type { Clock } from '../../src/clock.ts';
import type { Store } from '../../src/store/store.ts';
import { readInputObject, readMaxAgeHours } from './maintenance-input.ts';

export interface CleanupRunsInput {
  /** Finished longer ago than this many hours. @default 24 */
  maxAgeHours: number;
}

export interface CleanupRunsResult {
  removed: number;
  maxAgeHours: number;
  /** The threshold used: tasks finished before this time (epoch ms) were removed. */
  before: number;
}

export interface CleanupRunsDeps {
  store: Pick<Store, 'purge'>;
  clock: Clock;
}

/** Validates `{ maxAgeHours? }` at the door (HTTP, REPL, enqueue): INVALID_INPUT on anything else. */
export function parseCleanupRunsInput(raw: unknown): CleanupRunsInput {
  const input = readInputObject(raw, ['maxAgeHours']);
  return { maxAgeHours: readMaxAgeHours(input.maxAgeHours) };
}

/** Purges final tasks that finished more than `maxAgeHours` ago, so history does not grow without bound. */
export async function cleanupRuns(
  input: Partial<CleanupRunsInput> | undefined,
  deps: CleanupRunsDeps,
): Promise<CleanupRunsResult> {
  const { maxAgeHours } = parseCleanupRunsInput(input);
  const before = deps.clock.now() - Math.round(maxAgeHours * 3_600_000);
  const removed = await deps.store.purge({ finishedBefore: before });
  return { removed, maxAgeHours, before };
}
