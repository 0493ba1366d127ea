// A CPU-bound handler: hashes `text` `rounds` times on a worker thread and reports progress.
import { createHash } from 'node:crypto';
import { defineTask } from '../../src/define-task.ts';

export default defineTask(async (input: { text: string; rounds?: number }, ctx) => {
  const rounds = input.rounds ?? 20_000;
  let digest = input.text;
  for (let i = 1; i <= rounds; i++) {
    digest = createHash('sha256').update(digest).digest('hex');
    if (i % 5000 === 0) {
      ctx.progress({ done: i, total: rounds });
      if (ctx.signal.aborted) throw ctx.signal.reason;
    }
  }
  return { digest, rounds };
});
