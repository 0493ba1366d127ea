/**
 * `troupe/testing`: helpers for users' own tests — a manual clock and a throw-away runtime on the memory store.
 */
import { ManualClock } from './clock.ts';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from './runtime.ts';

export { ManualClock } from './clock.ts';

/** A runtime on the memory store with a ManualClock (unless one is given); `await using rt = …` closes it. */
export async function createTestRuntime(options: CreateRuntimeOptions = {}): Promise<Runtime & { clock: ManualClock }> {
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock();
  const rt = await createRuntime({ store: 'memory', maintenance: false, ...options, clock });
  return Object.assign(rt, { clock });
}
