// The example configuration `npm start` serves: three tasks, no schedules (nothing periodic runs unless written here).
import { z } from 'zod';
import { defineConfig } from '../src/index.ts';

export default defineConfig({
  store: 'sqlite:../.troupe/examples.db',
  concurrency: 8,
  http: { host: '127.0.0.1', port: 7420 },
  tasks: {
    hash: {
      handler: './tasks/hash.ts',
      timeout: '30s',
      // Checked before anything is stored: `{ "text": 5 }` is refused with TROUPE_ERR_INVALID_INPUT, naming the field.
      input: z.object({ text: z.string(), rounds: z.number().int().min(1).max(10_000_000).optional() }),
      description: 'CPU-bound: repeated sha256 on a worker thread',
    },
    report: {
      command: process.execPath,
      args: (input: { steps?: number; delayMs?: number }) => ['scripts/report.js', String(input?.steps ?? 10), String(input?.delayMs ?? 100)],
      timeout: '10m',
      killGrace: '2s',
      description: 'A long-running command streaming lines and progress',
    },
    flaky: {
      handler: './tasks/flaky.ts',
      retry: { attempts: 3, backoff: 'exponential', delay: '200ms' },
      description: 'Fails twice, then succeeds: retries with backoff',
    },
  },
});
