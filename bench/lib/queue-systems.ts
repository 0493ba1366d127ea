/**
 * The durable queues measured side by side, behind one small interface, so the durable and latency suites run the
 * same workload on each: troupe on SQLite (WAL, synchronous NORMAL or FULL), on PostgreSQL and in memory; BullMQ on
 * Redis; pg-boss and graphile-worker on PostgreSQL. Every handler is an in-process no-op function (the peers run
 * their handlers on the main thread; troupe's matching kind is an inline task).
 *
 * Settings, each the one a user of that system would pick for throughput:
 * - troupe: `concurrency` = the workload's, defaults otherwise (claim batch 64, group commit, priority strategy);
 *   PostgreSQL store with its default pool (10) and LISTEN wake-ups.
 * - BullMQ: one `Worker` with `concurrency`; results kept (`removeOnComplete` off, its default).
 * - pg-boss 10: one `work()` with `batchSize` = concurrency (at most that many jobs in flight), polling at its
 *   minimum 0.5 s, and the handler calls `notifyWorker` after each batch so the worker fetches again at once
 *   instead of sleeping out the interval (without it pg-boss runs at batchSize / 0.5 s).
 * - graphile-worker 0.17: `concurrency`, local batching on as its performance guide configures it
 *   (`localQueue: { size: 500 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`).
 *
 * "Completed" means stored: troupe publishes `task.succeeded` after the commit and BullMQ emits `completed` after
 * the job moved in Redis; for pg-boss and graphile-worker (which complete after the handler returns, graphile in
 * batches) the count is confirmed in the database once the handlers have run.
 *
 * Each system's packages are imported when it is opened, so a child process measuring one system loads only
 * that system (its peak RSS is its own).
 */
import { randomBytes } from 'node:crypto';
import type { Runner, WorkerUtils } from 'graphile-worker';
import type pgTypes from 'pg';
import type { Runtime } from '../../src/runtime.ts';

export const QUEUE_SYSTEMS = [
  'troupe-memory',
  'troupe-sqlite-normal',
  'troupe-sqlite-full',
  'troupe-postgres',
  'bullmq',
  'pg-boss',
  'graphile-worker',
] as const;
export type QueueSystem = (typeof QUEUE_SYSTEMS)[number];

/** What each system needs from the machine: a server to reach, or nothing. */
export const NEEDS: Record<QueueSystem, 'postgres' | 'redis' | undefined> = {
  'troupe-memory': undefined,
  'troupe-sqlite-normal': undefined,
  'troupe-sqlite-full': undefined,
  'troupe-postgres': 'postgres',
  bullmq: 'redis',
  'pg-boss': 'postgres',
  'graphile-worker': 'postgres',
};

/** How each system is shown in tables. */
export const LABELS: Record<QueueSystem, string> = {
  'troupe-memory': 'troupe (memory)',
  'troupe-sqlite-normal': 'troupe-SQLite (WAL, NORMAL)',
  'troupe-sqlite-full': 'troupe-SQLite (WAL, FULL)',
  'troupe-postgres': 'troupe-PostgreSQL',
  bullmq: 'BullMQ (Redis)',
  'pg-boss': 'pg-boss (notify after batch)',
  'graphile-worker': 'graphile-worker (local batching)',
};

export interface SystemSpec {
  system: QueueSystem;
  concurrency: number;
  /** Where everything of this run lives, made unique by the parent so it can clean up after a crashed child. */
  namespace: { sqliteFile: string; pgSchema: string; redisPrefix: string };
  pgUrl: string;
  redisUrl: string;
}

export interface OpenedSystem {
  /** Adds jobs (payload `{ i }` for each number) with the system's bulk API, one call. */
  addMany(payloads: readonly number[]): Promise<void>;
  /** Adds one job with the system's single-add API. */
  addOne(payload: number): Promise<void>;
  /** Resolves once `total` jobs since `open` are stored as completed. */
  waitCompleted(total: number, timeoutMs?: number): Promise<void>;
  /** Refreshes planner statistics (PostgreSQL systems), as a database in use has them. */
  analyze(): Promise<void>;
  close(): Promise<void>;
}

const QUEUE = 'noop';

/** Why: a unique namespace per run; the parent keeps it to drop whatever a crashed child left. */
export function createNamespace(dir: string): SystemSpec['namespace'] {
  const tag = randomBytes(4).toString('hex');
  return { sqliteFile: `${dir}/bench-${tag}.db`, pgSchema: `bench_${tag}`, redisPrefix: `troupe-bench-${tag}` };
}

/** Counts completions and wakes whoever waits for a count. */
class Counter {
  count = 0;
  #waiters: Array<{ n: number; resolve: () => void }> = [];
  add(k = 1): void {
    this.count += k;
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => (this.count >= w.n ? (w.resolve(), false) : true));
  }
  reach(n: number, timeoutMs: number, what: string): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: ${this.count}/${n} completed after ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

async function pollUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, intervalMs = 5): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not stored after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function loadPg(): Promise<typeof pgTypes> {
  return (await import('pg')).default;
}

async function analyzeSchema(url: string, schema: string): Promise<void> {
  const pg = await loadPg();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ t: string }>(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = $1`, [schema]);
    for (const { t } of rows) await admin.query(`ANALYZE ${t}`);
  } finally {
    await admin.end();
  }
}

/** Why: opens one system with a running worker whose handler calls `onRun(i)`; every suite measures through this. */
export async function openSystem(spec: SystemSpec, onRun: (i: number) => void): Promise<OpenedSystem> {
  switch (spec.system) {
    case 'troupe-memory':
    case 'troupe-sqlite-normal':
    case 'troupe-sqlite-full':
    case 'troupe-postgres':
      return openTroupe(spec, onRun);
    case 'bullmq':
      return openBullmq(spec, onRun);
    case 'pg-boss':
      return openPgBoss(spec, onRun);
    case 'graphile-worker':
      return openGraphile(spec, onRun);
  }
}

async function openTroupe(spec: SystemSpec, onRun: (i: number) => void): Promise<OpenedSystem> {
  const { createRuntime } = await import('../../src/runtime.ts');
  const createPostgresStore = spec.system === 'troupe-postgres' ? (await import('../../src/store/postgres/postgres-store.ts')).createPostgresStore : undefined;
  const store =
    spec.system === 'troupe-memory'
      ? 'memory'
      : spec.system === 'troupe-postgres'
        ? createPostgresStore!(spec.pgUrl, { schema: spec.namespace.pgSchema, strategy: 'priority' })
        : `sqlite:${spec.namespace.sqliteFile}`;
  const rt: Runtime = await createRuntime({
    store,
    concurrency: spec.concurrency,
    maintenance: false,
    ...(spec.system === 'troupe-sqlite-full' ? { synchronous: 'FULL' as const } : {}),
    tasks: {
      [QUEUE]: {
        run: (input: { i: number }) => {
          onRun(input.i);
          return null;
        },
      },
    },
  });
  const done = new Counter();
  const off = rt.on('task.succeeded', () => done.add());
  return {
    addMany: async (payloads) => {
      await rt.enqueueMany(payloads.map((i) => ({ name: QUEUE, input: { i } })));
    },
    addOne: async (i) => {
      await rt.enqueue(QUEUE, { i });
    },
    waitCompleted: (total, timeoutMs = 600_000) => done.reach(total, timeoutMs, spec.system),
    analyze: async () => {
      if (spec.system === 'troupe-postgres') await analyzeSchema(spec.pgUrl, spec.namespace.pgSchema);
    },
    close: async () => {
      off();
      await rt.close();
    },
  };
}

function redisConnection(url: string): { host: string; port: number; maxRetriesPerRequest: null } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

async function openBullmq(spec: SystemSpec, onRun: (i: number) => void): Promise<OpenedSystem> {
  const { Queue, Worker } = await import('bullmq');
  const connection = redisConnection(spec.redisUrl);
  const prefix = spec.namespace.redisPrefix;
  const queue = new Queue(QUEUE, { connection, prefix });
  const done = new Counter();
  const worker = new Worker(QUEUE, async (job) => {
    onRun((job.data as { i: number }).i);
    return null;
  }, { connection, prefix, concurrency: spec.concurrency });
  worker.on('completed', () => done.add());
  worker.on('error', () => {});
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  return {
    addMany: async (payloads) => {
      await queue.addBulk(payloads.map((i) => ({ name: QUEUE, data: { i } })));
    },
    addOne: async (i) => {
      await queue.add(QUEUE, { i });
    },
    waitCompleted: (total, timeoutMs = 600_000) => done.reach(total, timeoutMs, spec.system),
    analyze: async () => {},
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}

async function openPgBoss(spec: SystemSpec, onRun: (i: number) => void): Promise<OpenedSystem> {
  const PgBoss = (await import('pg-boss')).default;
  const pg = await loadPg();
  const schema = spec.namespace.pgSchema;
  const boss = new PgBoss({ connectionString: spec.pgUrl, schema, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue(QUEUE);
  const handled = new Counter();
  let workerId = '';
  workerId = await boss.work<{ i: number }>(QUEUE, { batchSize: spec.concurrency, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    for (const job of jobs) onRun(job.data.i);
    handled.add(jobs.length);
    if (workerId) boss.notifyWorker(workerId);
  });
  const admin = new pg.Client({ connectionString: spec.pgUrl });
  await admin.connect();
  const completedSql = `SELECT count(*)::int AS n FROM "${schema}".job WHERE name = '${QUEUE}' AND state = 'completed'`;
  return {
    addMany: async (payloads) => {
      await boss.insert(payloads.map((i) => ({ name: QUEUE, data: { i } })));
    },
    addOne: async (i) => {
      await boss.send(QUEUE, { i });
    },
    waitCompleted: async (total, timeoutMs = 600_000) => {
      await handled.reach(total, timeoutMs, spec.system);
      await pollUntil(async () => (await admin.query<{ n: number }>(completedSql)).rows[0]!.n >= total, timeoutMs, spec.system);
    },
    analyze: () => analyzeSchema(spec.pgUrl, schema),
    close: async () => {
      await boss.stop({ graceful: true, wait: true, timeout: 5000 });
      await admin.end();
    },
  };
}

async function openGraphile(spec: SystemSpec, onRun: (i: number) => void): Promise<OpenedSystem> {
  const { Logger: GraphileLogger, makeWorkerUtils, run: runGraphile } = await import('graphile-worker');
  const pg = await loadPg();
  const schema = spec.namespace.pgSchema;
  const logger = new GraphileLogger(() => () => {});
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: spec.pgUrl, schema, logger });
  await utils.migrate();
  const handled = new Counter();
  const runner: Runner = await runGraphile({
    connectionString: spec.pgUrl,
    schema,
    logger,
    concurrency: spec.concurrency,
    noHandleSignals: true,
    taskList: {
      [QUEUE]: async (payload) => {
        onRun((payload as { i: number }).i);
        handled.add();
      },
    },
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  const admin = new pg.Client({ connectionString: spec.pgUrl });
  await admin.connect();
  // graphile-worker deletes a job when it completes: all stored once no job is left.
  const leftSql = `SELECT count(*)::int AS n FROM "${schema}"._private_jobs`;
  return {
    addMany: async (payloads) => {
      await utils.addJobs(payloads.map((i) => ({ identifier: QUEUE, payload: { i } })));
    },
    addOne: async (i) => {
      await utils.addJob(QUEUE, { i });
    },
    waitCompleted: async (total, timeoutMs = 600_000) => {
      await handled.reach(total, timeoutMs, spec.system);
      await pollUntil(async () => (await admin.query<{ n: number }>(leftSql)).rows[0]!.n === 0, timeoutMs, spec.system);
    },
    analyze: () => analyzeSchema(spec.pgUrl, schema),
    close: async () => {
      await runner.stop();
      await utils.release();
      await admin.end();
    },
  };
}

/** Why: the parent drops what a run left behind (schema, Redis keys), also after a crashed child. */
export async function dropNamespace(spec: SystemSpec): Promise<void> {
  const need = NEEDS[spec.system];
  if (need === 'postgres') {
    const pg = await loadPg();
    const admin = new pg.Client({ connectionString: spec.pgUrl });
    await admin.connect();
    try {
      await admin.query(`DROP SCHEMA IF EXISTS "${spec.namespace.pgSchema}" CASCADE`);
    } finally {
      await admin.end();
    }
  } else if (need === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${spec.namespace.redisPrefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}
