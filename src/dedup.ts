/**
 * Dedup modes of an enqueue, besides the idempotency key. A dedup key is scoped to the task name; the decision is
 * taken in the store's enqueue transaction, so it holds across nodes (PostgreSQL serialises enqueues of one key).
 *
 * - `throttle`: if a task of that name and key was created within the window (in any state), the enqueue is
 *   ignored and answers that task's id (`created: false`). At most one task per window.
 * - `debounce`: if a task of that name and key has not started yet (`queued` or `scheduled`, no attempt made),
 *   the enqueue replaces its input and pushes its `runAt` to `now + window`, answering its id (`created: false`,
 *   state `scheduled`); otherwise a new task is created to run at `now + window`. The task runs once the enqueues
 *   stop for a whole window, with the latest input.
 */
import { invalidOption } from './errors.ts';
import { plainObject } from './options.ts';
import type { DedupMode, DedupSpec, NewTask } from './task.ts';
import { parseDuration } from './units.ts';
import { hasBadText } from './store/json-value.ts';

/** The history reason of a debounced task pushed back by a newer enqueue. */
/**
 * Checks an idempotency key (`enqueue(…, { key })`, `troupe enqueue --key`): a non-empty string of at most 512
 * characters, without NUL or unpaired surrogates (what every store keeps as it is). Why here: the CLI checks it
 * before a request is sent, with the same words as the runtime.
 */
export function checkKey(key: unknown, path: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512 || hasBadText(key)) {
    throw invalidOption(path, 'a non-empty string of at most 512 characters, without NUL or unpaired surrogates', key);
  }
  return key;
}

/** The largest priority magnitude an enqueue takes (`options.priority`, `--priority`). */
export const PRIORITY_LIMIT = 2 ** 31;

export const DEBOUNCED_REASON = 'debounced';

const DEDUP_KEYS = new Set(['key', 'mode', 'window']);
const MODES: readonly DedupMode[] = ['throttle', 'debounce'];

/** Enqueue option `dedup`. */
export interface DedupOptions {
  /** Tasks of one name with the same key are deduplicated (at most 512 characters). */
  key: string;
  mode: DedupMode;
  /** The window: `'5s'`, `500`, … (positive). */
  window: number | string;
}

/** Why: validate the enqueue option once, at the door. */
export function resolveDedup(value: unknown, path: string): DedupSpec {
  const o = plainObject(value, path, DEDUP_KEYS);
  if (typeof o.key !== 'string' || o.key.length === 0 || o.key.length > 512 || hasBadText(o.key)) {
    throw invalidOption(`${path}.key`, 'a non-empty string of at most 512 characters, without NUL or unpaired surrogates', o.key);
  }
  if (!MODES.includes(o.mode as DedupMode)) throw invalidOption(`${path}.mode`, "'throttle' or 'debounce'", o.mode);
  const windowMs = parseDuration(o.window, `${path}.window`, { positive: true });
  return { key: o.key, mode: o.mode as DedupMode, windowMs };
}

/** Why: under `throttle`, a task created after this time (exclusive) answers for the new one. */
export function throttleSince(task: NewTask & { dedup: DedupSpec }): number {
  return task.createdAt - task.dedup.windowMs;
}

/** Why: when a debounced task runs: a whole window after the latest enqueue (later if the enqueue asked so). */
export function debounceRunAt(task: NewTask & { dedup: DedupSpec }): number {
  return Math.max(task.runAt, task.createdAt + task.dedup.windowMs);
}
