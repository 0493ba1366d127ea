// A handler that fails on its first two attempts, to show retries with backoff.
import { defineTask } from '../../src/define-task.ts';

export default defineTask(async (input: { succeedOn?: number } | null, ctx) => {
  const succeedOn = input?.succeedOn ?? 3;
  if (ctx.attempt < succeedOn) throw new Error(`transient failure on attempt ${ctx.attempt}`);
  return { attempt: ctx.attempt };
});
