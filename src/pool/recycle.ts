/**
 * Worker recycling: a thread that has run `maxTasks` jobs, or whose heap is above `maxRssMb` after a run, is
 * replaced without failing any job.
 *
 * The worker decides, at the end of a run (its jobs all settled), and writes its threadId into a shared cell
 * *before* its reply leaves. Piscina hands the freed thread the next queued run while it handles that reply
 * (before the pool sees it), so the pool's load balancer reads the cells and never picks a thread that asked to
 * retire. Once the reply is settled the pool ends the thread (it has no job: one run per thread at a time) and
 * keeps that run's place taken until the thread has exited, so the next run goes to a fresh thread Piscina starts,
 * never to one that is about to go. The cell is freed when the thread has exited.
 *
 * Heap is the isolate's `used_heap_size` (worker threads share the process RSS, so per-thread RSS does not exist);
 * garbage not yet collected counts, so set `maxRssMb` well above the handler's working set.
 */
import { getHeapStatistics } from 'node:v8';
import type { Piscina } from 'piscina';

/** Pool options for recycling (per thread). */
export interface RecycleOptions {
  /** Jobs a thread runs before it is replaced (a batch in flight finishes first). @default undefined (no limit) */
  maxTasks?: number;
  /** Heap in use (MB) above which a thread is replaced after its current run. @default undefined (no limit) */
  maxRssMb?: number;
}

/** What a worker needs to retire itself (sent in Piscina's `workerData`). */
export interface RecycleData {
  /** Jobs a thread runs before it is replaced (0 = no limit). */
  maxTasks: number;
  /** Heap in use (bytes) above which, after a run, the thread is replaced (0 = no limit). */
  maxHeapBytes: number;
  /** Int32 cells: threadIds of the threads that asked to retire, 0 when free. */
  cells: SharedArrayBuffer;
}

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

/** Whether the options ask for recycling at all. */
export function recyclingOn(options: RecycleOptions | undefined): options is RecycleOptions {
  return options !== undefined && ((options.maxTasks ?? 0) > 0 || (options.maxRssMb ?? 0) > 0);
}

/** Main side: the cells where threads ask to retire, and the balancer that skips them. */
export class RetireBoard {
  readonly data: RecycleData;
  readonly #cells: Int32Array;

  /** `capacity`: the most threads that can be alive at once (Piscina's maxThreads); twice that is kept. */
  constructor(options: RecycleOptions, capacity: number) {
    const cells = new SharedArrayBuffer(Math.max(2, capacity * 2) * Int32Array.BYTES_PER_ELEMENT);
    this.#cells = new Int32Array(cells);
    this.data = {
      maxTasks: options.maxTasks ?? 0,
      maxHeapBytes: Math.round((options.maxRssMb ?? 0) * 1024 * 1024),
      cells,
    };
  }

  /** The cell holding `threadId`, or -1 when that thread did not ask to retire. */
  find(threadId: number): number {
    if (threadId <= 0) return -1;
    const cells = this.#cells;
    for (let i = 0; i < cells.length; i++) if (Atomics.load(cells, i) === threadId) return i;
    return -1;
  }

  /** Frees a cell once its thread has exited. */
  clear(cell: number): void {
    Atomics.store(this.#cells, cell, 0);
  }

  /**
   * Piscina's least-busy choice (one run per thread: a thread with nothing in flight), skipping the threads that
   * asked to retire.
   */
  balancer(): LoadBalancer {
    return (_task, workers) => {
      for (const w of workers) if (w.currentUsage === 0 && this.find(w.id) === -1) return w;
      return null;
    };
  }
}

/** Worker side: counts jobs, checks the heap after each run, and asks to retire once over a limit. */
export class RetireCheck {
  readonly #data: RecycleData;
  readonly #cells: Int32Array;
  readonly #threadId: number;
  #tasks = 0;
  #asked = false;

  constructor(data: RecycleData, threadId: number) {
    this.#data = data;
    this.#cells = new Int32Array(data.cells);
    this.#threadId = threadId;
  }

  /** Counts the jobs of a run as they are taken. */
  took(jobs: number): void {
    this.#tasks += jobs;
  }

  /** Called when a run's last job settled, just before its reply leaves: asks to retire if over a limit. */
  afterRun(): void {
    if (this.#asked) return;
    const { maxTasks, maxHeapBytes } = this.#data;
    const over = (maxTasks > 0 && this.#tasks >= maxTasks)
      || (maxHeapBytes > 0 && getHeapStatistics().used_heap_size > maxHeapBytes);
    if (!over) return;
    const cells = this.#cells;
    for (let i = 0; i < cells.length; i++) {
      if (Atomics.compareExchange(cells, i, 0, this.#threadId) === 0) {
        this.#asked = true;
        return;
      }
    }
    // No free cell (cannot happen with at most maxThreads threads alive): asked again after the next run.
  }
}
