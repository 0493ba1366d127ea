/**
 * The floors under any task runtime on this machine, added to the same tinybench `Bench` as the systems they
 * bound (compare.bench.ts), so the ratios come from one run:
 *
 * - raw `worker_threads` messaging, the physical floor: echo workers (`parentPort.on('message', postMessage)`),
 *   `n` messages pipelined round-robin over the threads, or one message on idle threads;
 * - p-queue, the in-process floor: `n` no-op async jobs added at once with `concurrency`, or one job.
 *
 * Threads and queues are built in `beforeAll` and ended in `afterAll`, never inside the timed function.
 */
import { Worker } from 'node:worker_threads';
import PQueue from 'p-queue';
import type { Bench } from 'tinybench';

const ECHO = `const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`;

/** Echo threads with one shared reply counter: the least work a round trip through a thread can be. */
export class EchoThreads {
  readonly #workers: Worker[];
  #left = 0;
  #done: (() => void) | undefined;

  constructor(threads: number) {
    this.#workers = Array.from({ length: threads }, () => {
      const w = new Worker(ECHO, { eval: true });
      w.on('message', () => {
        if (--this.#left === 0) this.#done?.();
      });
      return w;
    });
  }

  /** Why: `n` round trips in flight at once, spread round-robin; resolves when every reply came back. */
  roundTrips(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.#left = n;
      this.#done = resolve;
      const ws = this.#workers;
      for (let i = 0; i < n; i++) ws[i % ws.length]!.postMessage(i);
    });
  }

  /** Why: every thread started and its message loop warm before the timed part. */
  async warm(): Promise<void> {
    await this.roundTrips(this.#workers.length * 64);
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

const noop = async (): Promise<void> => {};

export interface FloorTaskNames {
  workerBurst: string;
  pqueueBurst: string;
  workerIdle: string;
  pqueueIdle: string;
}

/** Why: adds the four floor rows (burst and idle, threads and p-queue) to a Bench shared with the systems; returns the closer. */
export function addFloorTasks(bench: Bench, names: FloorTaskNames, options: { burst: number; threads: number; concurrency: number; include: (name: string) => boolean }): () => Promise<void> {
  const { burst, threads, concurrency, include } = options;
  let echo: EchoThreads | undefined;
  const openEcho = async () => {
    echo = new EchoThreads(threads);
    await echo.warm();
  };
  const closeEcho = async () => {
    await echo?.close();
    echo = undefined;
  };
  let queue: PQueue | undefined;
  const openQueue = () => {
    queue = new PQueue({ concurrency });
  };
  const jobs = new Array<() => Promise<void>>(burst).fill(noop);

  if (include(names.workerBurst)) bench.add(names.workerBurst, async () => echo!.roundTrips(burst), { beforeAll: openEcho, afterAll: closeEcho });
  if (include(names.pqueueBurst)) {
    bench.add(names.pqueueBurst, async () => {
      await queue!.addAll(jobs);
    }, { beforeAll: openQueue });
  }
  if (include(names.workerIdle)) bench.add(names.workerIdle, async () => echo!.roundTrips(1), { beforeAll: openEcho, afterAll: closeEcho });
  if (include(names.pqueueIdle)) {
    bench.add(names.pqueueIdle, async () => {
      await queue!.add(noop);
    }, { beforeAll: openQueue });
  }
  return closeEcho;
}
