/**
 * Prometheus metrics for `GET /metrics`, on a registry of the server's own (never prom-client's global one, so
 * two servers in one process, or a host application's own metrics, never collide).
 *
 * Counters and the duration histogram count task facts as they are published (`rt.on`); gauges (queue depth by
 * state, pool threads and utilisation, bus traffic) are read from the runtime when Prometheus scrapes.
 */
import type { Registry } from 'prom-client';
import { lazyRequire } from '../lazy-require.ts';
import type { Runtime } from '../runtime.ts';
import type { QueueCounts } from '../store/store.ts';
import { TASK_STATES } from '../task.ts';

export interface ServerMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
  /** Stops counting (unsubscribes from the runtime) and empties the registry. */
  close(): void;
}

export interface MetricsOptions {
  /** Also expose prom-client's process metrics (CPU, memory, event-loop lag, GC). @default true */
  processMetrics?: boolean;
  /** How many SSE clients are connected (a gauge). */
  sseClients?: () => number;
}

/** prom-client, loaded by the first server's metrics: a runtime that serves no HTTP never loads it (lazy-require.ts). */
const loadPromClient = lazyRequire<typeof import('prom-client')>('prom-client');

/** Running tasks whose start time is remembered for the duration histogram; beyond it the map is reset. */
const MAX_TRACKED = 100_000;
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Builds the server's registry and starts counting the runtime's facts (why: metrics are per server, not global). */
export function createMetrics(rt: Runtime, options: MetricsOptions = {}): ServerMetrics {
  const { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } = loadPromClient();
  const registry = new Registry();
  const offs: Array<() => void> = [];
  const started = new Map<string, number>();
  /**
   * The store's counts, read once for the gauges of one scrape (prom-client collects them at once) and shared with
   * a scrape that comes while the read is under way. Why: on PostgreSQL the count per state reads every row.
   */
  let countsRead: Promise<QueueCounts> | undefined;
  const scrapeCounts = (): Promise<QueueCounts> => {
    countsRead ??= rt.counts().finally(() => {
      countsRead = undefined;
    });
    return countsRead;
  };

  new Gauge({
    name: 'troupe_tasks',
    help: 'Tasks in the store by state (queue depth)',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      try {
        const counts = await scrapeCounts();
        for (const state of TASK_STATES) this.set({ state }, counts.byState[state] ?? 0);
      } catch {
        // The runtime is closing: keep the last values rather than fail the whole scrape.
      }
    },
  });
  new Gauge({
    name: 'troupe_oldest_due_task_age_seconds',
    help: 'How long the longest-waiting due task has been due, since its runAt (0 when none is due)',
    registers: [registry],
    async collect() {
      try {
        const counts = await scrapeCounts();
        this.set(counts.oldestDueAt === undefined ? 0 : Math.max(0, (rt.options.clock.now() - counts.oldestDueAt) / 1000));
      } catch {
        // As above.
      }
    },
  });
  const finished = new Counter({
    name: 'troupe_tasks_finished_total',
    help: 'Tasks that reached a final state on this node, by name and state',
    labelNames: ['name', 'state'] as const,
    registers: [registry],
  });
  const startedTotal = new Counter({
    name: 'troupe_task_attempts_total',
    help: 'Attempts started on this node, by task name',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'troupe_task_duration_seconds',
    help: 'Run time of the final attempt of tasks that ended on this node, by task name',
    labelNames: ['name'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const retries = new Counter({
    name: 'troupe_task_retries_total',
    help: 'Failed attempts that will be retried, by task name',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'troupe_pool_threads',
    help: 'Worker threads in the handler pool',
    registers: [registry],
    collect() {
      this.set(rt.poolStats().threads);
    },
  });
  new Gauge({
    name: 'troupe_pool_busy_threads',
    help: 'Worker threads running a handler now',
    registers: [registry],
    collect() {
      this.set(rt.poolStats().busy);
    },
  });
  new Gauge({
    name: 'troupe_pool_queued',
    help: 'Handler runs waiting for a thread',
    registers: [registry],
    collect() {
      this.set(rt.poolStats().queued);
    },
  });
  new Gauge({
    name: 'troupe_pool_utilization',
    help: 'Share of pool thread time spent running handlers (0..1)',
    registers: [registry],
    collect() {
      this.set(rt.poolStats().utilization);
    },
  });
  new Gauge({
    name: 'troupe_task_concurrency_limit',
    help: 'Current limit of task names with adaptive concurrency',
    labelNames: ['name'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, limit] of Object.entries(rt.adaptiveLimits())) this.set({ name }, limit);
    },
  });
  let lastDelivered = 0;
  new Counter({
    name: 'troupe_bus_messages_total',
    help: 'Messages delivered between actors on the bus',
    registers: [registry],
    collect() {
      const delivered = rt.bus.stats.delivered;
      if (delivered > lastDelivered) this.inc(delivered - lastDelivered);
      lastDelivered = delivered;
    },
  });
  let lastDead = 0;
  new Counter({
    name: 'troupe_bus_dead_letters_total',
    help: 'Messages sent to an address nobody holds',
    registers: [registry],
    collect() {
      const dead = rt.bus.stats.deadLetters;
      if (dead > lastDead) this.inc(dead - lastDead);
      lastDead = dead;
    },
  });
  new Gauge({
    name: 'troupe_runtime_up',
    help: '1 while the runtime is running, 0 while it stops or is stopped',
    registers: [registry],
    collect() {
      this.set(rt.status === 'running' ? 1 : 0);
    },
  });
  if (options.sseClients) {
    const count = options.sseClients;
    new Gauge({
      name: 'troupe_http_sse_clients',
      help: 'Open server-sent-event streams',
      registers: [registry],
      collect() {
        this.set(count());
      },
    });
  }
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  offs.push(
    rt.on('task.started', (f) => {
      if (started.size >= MAX_TRACKED) started.clear();
      started.set(f.id, f.at);
      startedTotal.inc({ name: f.name });
    }),
    rt.on('task.retrying', (f) => {
      started.delete(f.id);
      retries.inc({ name: f.name });
    }),
    rt.on('task.succeeded', (f) => {
      started.delete(f.id);
      finished.inc({ name: f.name, state: 'succeeded' });
      duration.observe({ name: f.name }, f.durationMs / 1000);
    }),
  );
  const ended = (state: 'failed' | 'cancelled' | 'timed_out') => (f: { id: string; name: string; at: number }) => {
    const at = started.get(f.id);
    started.delete(f.id);
    finished.inc({ name: f.name, state });
    if (at !== undefined) duration.observe({ name: f.name }, Math.max(0, f.at - at) / 1000);
  };
  offs.push(rt.on('task.failed', ended('failed')), rt.on('task.cancelled', ended('cancelled')), rt.on('task.timed_out', ended('timed_out')));

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close() {
      for (const off of offs.splice(0)) off();
      started.clear();
      registry.clear();
    },
  };
}
