/**
 * `defineTask` types a handler module's default export, so task files get `input` and `ctx` typed without
 * importing anything else:
 *
 * @example
 * // tasks/hash.ts
 * export default defineTask(async (input: { text: string }, ctx) => {
 *   ctx.progress(0.5);
 *   return createHash('sha256').update(input.text).digest('hex');
 * });
 */
import type { TaskContext } from './registry.ts';

export type { TaskContext };

/** A handler: what a handler module's default export is. */
export type TaskHandler<I = unknown, O = unknown> = (input: I, ctx: TaskContext) => O | Promise<O>;

/** Returns `fn` unchanged, typed as a handler (the worker accepts it, or any function, as a default export). */
export function defineTask<I = unknown, O = unknown>(fn: TaskHandler<I, O>): TaskHandler<I, O> {
  return fn;
}
