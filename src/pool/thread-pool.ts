/**
 * The thread pool for handler tasks: a Piscina 5 pool that runs `handler-worker.ts`, plus a queue in front of it
 * that packs waiting jobs into batches.
 *
 * Dispatch: at most `maxThreads` Piscina runs are in flight. A job that finds a run free goes at once, alone
 * (no added latency when the pool is idle). Otherwise it waits in the queue, and each time a run comes back the
 * waiting jobs are spread over the free runs, up to `maxBatch` per run: Piscina's per-`run()` cost (≈31 µs of
 * main-thread time) is then paid once per batch. Jobs of a handler the workers measured as slow (≥ 1 ms a call)
 * always go alone: batching would save nothing and could hold their batch mates' results back. A result that is
 * ready before its batch's reply is sent ahead (see `runJobs` in handler-worker.ts).
 *
 * Stops, per job: through `stops` (the owner calls the pool back at once, no AbortSignal needed), or through the
 * two signals (an abort is noticed at once once a job has listeners, else within one sweep, see abort-watch.ts):
 * - `signal` (soft): a job whose handler was not called yet is dropped and rejects with the reason at once; a
 *   running one gets the abort in its `ctx.signal` (same reason) and settles with whatever the handler does.
 * - `hardSignal`: a job not called yet is dropped as above; a running one has its thread ended and rejects with
 *   the reason. The other unfinished jobs of its batch reject with WORKER_CRASHED and `details.requeue: true`.
 * - a thread that dies (process.exit, an uncaught error, resource limits): see crash-verdict.ts for who is blamed
 *   (WORKER_CRASHED, or RESOURCE_LIMIT when out of memory) and who may run again (`details.requeue: true`).
 *   Piscina replaces the thread.
 *
 * Recycling (`recycle`, see recycle.ts): a thread over `maxTasks` jobs or its heap limit finishes its run, is
 * ended once its reply is settled, and its run's place stays taken until it has exited; Piscina starts a fresh
 * one for the next run. A batch is then at most `maxTasks` jobs, so a thread runs fewer than 2 × maxTasks.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import type { Piscina } from 'piscina';
import { ErrorCodes, TroupeError, deserializeError, type SerializedError } from '../errors.ts';
import { lazyRequire } from '../lazy-require.ts';
import { AbortWatch, abortedSignalOf } from './abort-watch.ts';
import {
  ReplyKinds, RunWriter, SlotFlags, SlotTable, StringTable, channelNames, encodeReason, isBareReply, replyKind, replySideMessages, replyTag, resolveBatchSize, singleRun,
  type DownMessage, type UpMessage, type WireReplies, type WireReply, type WireRun, type WorkerData,
} from './batcher.ts';
import { Verdicts, judgeFailedRun } from './crash-verdict.ts';
import { RetireBoard, recyclingOn, type RecycleOptions } from './recycle.ts';
import type { FlowChild } from '../task.ts';

export interface ThreadPoolOptions {
  minThreads: number;
  maxThreads: number;
  /** A thread idle this long is ended, down to `minThreads`. */
  idleTimeoutMs: number;
  /** Jobs that may wait for a thread before `run()` is refused; `'auto'` = maxThreads² × maxBatch. */
  maxQueue: number | 'auto';
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
  /** Most jobs sent in one worker message when the queue is deep. @default 64 */
  maxBatch?: number;
  /** Replace a thread after `maxTasks` jobs or above `maxRssMb` of heap, without failing its jobs. @default undefined (never) */
  recycle?: RecycleOptions;
  /** Told about failures that belong to no job (a thread failing while idle, a throwing progress/log callback). */
  onError?(error: unknown): void;
}

export interface HandlerJob {
  id: string;
  name: string;
  /** File URL href of the handler module. */
  handler: string;
  input: unknown;
  attempt: number;
  /** A flow parent's children, handed to the handler as `ctx.children`. */
  children?: readonly FlowChild[] | undefined;
  /** Soft cancel/timeout: `ctx.signal` aborts inside the worker, with this signal's reason. Ignored with `stops`. */
  signal?: AbortSignal;
  /** Hard stop: the job's thread is ended if the handler still runs. Ignored with `stops`. */
  hardSignal?: AbortSignal;
  /** The job's stops without AbortSignals (a task run): preferred over `signal`/`hardSignal` when given. */
  stops?: JobStops;
  onProgress?(p: { fraction: number; done?: number; total?: number }): void;
  onLog?(text: string): void;
  /**
   * What the job used, told just before its outcome when its handler was called (see thread-usage.ts and
   * handler-worker.ts): `cpuMs`, the CPU time of its call (a fast handler's: the time inside its synchronous
   * call); `memoryMb`, the memory its thread's isolate held when it settled (undefined when not read: fast handlers).
   */
  onUsage?(cpuMs: number, memoryMb: number | undefined): void;
}

/** A job given to `submit`: its outcome comes to `done` instead of a promise. */
export interface CallbackJob extends HandlerJob {
  /**
   * Called once with `(true, result)` or `(false, error)` (what `run()` would resolve or reject with); never
   * synchronously from `submit`, but it may be from a stop (inside the `stops` owner's call).
   */
  done(ok: boolean, value: unknown): void;
}

/**
 * A job's soft and hard stop, kept by its owner without AbortSignals: a run that is almost never stopped should
 * not pay for two of them. The pool reads the level at submit and is called back on each later stop.
 */
export interface JobStops {
  /** 0 = not stopped, 1 = soft stop (like `signal` aborted), 2 = hard stop (like `hardSignal` aborted). */
  readonly stopLevel: 0 | 1 | 2;
  /** The stop's reason (the same for both levels). */
  readonly stopReason: unknown;
  /** The pool watches the job while it holds it (`watcher.onStop(token, hard)` on each stop); undefined to stop. */
  watchStops(watcher: StopWatcher | undefined, token?: unknown): void;
}

/** Told by a JobStops owner when its job is stopped. */
export interface StopWatcher {
  onStop(token: unknown, hard: boolean): void;
  /**
   * Whether the job's code was taken up (a worker thread took it); false while it waits for a thread. Why: a run's
   * timeout bounds its handler's work, not the wait of a run queued behind busy threads (see TaskActor.armTimeout).
   */
  started?(token: unknown): boolean;
}

/** Signals that never abort, for jobs given neither signals nor `stops`. */
const NEVER = new AbortController().signal;

export interface ThreadPoolStats {
  threads: number;
  /** Piscina runs in flight (each one job or one batch). */
  busy: number;
  /** Jobs waiting for a thread. */
  queued: number;
  /** Jobs settled. */
  completed: number;
  /** Piscina runs made so far; `completed / runs` is the mean batch size. */
  runs: number;
  /** Piscina's utilization (0–1). */
  utilization: number;
  /** Threads replaced by recycling (`recycle.maxTasks` / `recycle.maxRssMb`). */
  recycled: number;
}

export interface ThreadPool {
  /** Resolves with the handler's result, or rejects with an Error (deserialized; code and hints kept). */
  run(job: HandlerJob): Promise<unknown>;
  /** `run()` without a promise: the outcome goes to `job.done` (a hot caller saves a promise and its callbacks per job). */
  submit(job: CallbackJob): void;
  readonly stats: ThreadPoolStats;
  readonly status: PoolStatus;
  threadIds(): number[];
  /** Drains (or with `force`, drops the queue and ends the threads). Idempotent: the same promise. */
  close(options?: { force?: boolean }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export type PoolStatus = 'running' | 'stopping' | 'stopped';

/** Piscina, loaded when the first pool is made: a runtime without handler tasks never loads it (lazy-require.ts). */
const loadPiscina = lazyRequire<typeof import('piscina')>('piscina');

const WORKER_FILE = new URL('./handler-worker.ts', import.meta.url).href;
const EntryStates = { queued: 0, sent: 1, settled: 2 } as const;
type EntryState = (typeof EntryStates)[keyof typeof EntryStates];

/**
 * Workers load TypeScript through tsx. On Node 20 tsx's `--import tsx` registers its ESM hooks only on the main
 * thread, so each worker registers them itself through tsx's API (`register-tsx.mjs`), before Piscina loads
 * `handler-worker.ts`.
 * Measured start of one worker: ≈35 ms bare, ≈130–180 ms with the hooks (their own loader thread).
 */
const WORKER_EXEC_ARGV = ['--import', new URL('./register-tsx.mjs', import.meta.url).href];

interface Run {
  entries: Entry[];
  /** We ended its thread on purpose (hard stop). */
  hardStopped: boolean;
}

/** One job's bookkeeping. */
class Entry {
  state: EntryState = EntryStates.queued;
  slot = -1;
  run: Run | undefined;
  /** Side messages received, and the reply (tag, value) held back until all of them came. */
  received = 0;
  replyTag = -1;
  replyValue: unknown;
  /** Send alone (after its batch could not be cloned). */
  solo = false;
  /** Abort listeners attached (only jobs that outlive one sweep get them). */
  listening = false;
  readonly seq: number;
  readonly job: HandlerJob & { signal: AbortSignal; hardSignal: AbortSignal };
  /** The promise's settlers (`run`), or undefined when the outcome goes to `job.done` (`submit`). */
  readonly resolve: ((value: unknown) => void) | undefined;
  readonly reject: ((error: unknown) => void) | undefined;

  constructor(seq: number, job: HandlerJob, resolve?: (v: unknown) => void, reject?: (e: unknown) => void) {
    this.seq = seq;
    if (job.stops === undefined && (job.signal === undefined || job.hardSignal === undefined)) {
      job = { ...job, signal: job.signal ?? NEVER, hardSignal: job.hardSignal ?? NEVER };
    }
    this.job = job as Entry['job'];
    this.resolve = resolve;
    this.reject = reject;
  }
}

class HandlerThreadPool implements ThreadPool, StopWatcher {
  readonly #piscina: Piscina;
  readonly #maxRuns: number;
  readonly #maxBatch: number;
  readonly #maxQueue: number;
  readonly #slots: SlotTable;
  /** Handler URLs and task names the workers read by number. */
  readonly #strings = new StringTable();
  readonly #bySlot: (Entry | undefined)[] = [];
  /** Entries whose run came back before all their side messages did. */
  readonly #held = new Map<number, Entry>();
  /** Handlers the workers measured as slow (≥ 1 ms a call): their jobs go alone, batching would only delay results. */
  readonly #slowHandlers = new Set<string>();
  readonly #up: BroadcastChannel;
  readonly #down: BroadcastChannel;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #retire: RetireBoard | undefined;
  readonly #aborts: AbortWatch<Entry> = new AbortWatch<Entry>({
    onAbort: (entry, signal) => this.#onAbort(entry, signal === entry.job.hardSignal, signal.reason),
    sweep: (watch) => this.#sweep(watch),
  });
  #queue: Entry[] = [];
  #head = 0;
  #queued = 0;
  #runs = 0;
  #seq = 0;
  #completed = 0;
  #dispatched = 0;
  #recycled = 0;
  #status: PoolStatus = 'running';
  #forced = false;
  #closing: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  constructor(options: ThreadPoolOptions) {
    this.#maxRuns = options.maxThreads;
    this.#retire = recyclingOn(options.recycle) ? new RetireBoard(options.recycle, options.maxThreads) : undefined;
    const maxTasks = options.recycle?.maxTasks ?? 0;
    const maxBatch = Math.max(1, options.maxBatch ?? 64);
    this.#maxBatch = Math.min(maxBatch, maxTasks > 0 ? maxTasks : Infinity);
    this.#maxQueue = options.maxQueue === 'auto' ? options.maxThreads ** 2 * maxBatch : options.maxQueue;
    this.#onError = options.onError;
    this.#slots = new SlotTable(this.#maxRuns * this.#maxBatch);
    const prefix = `troupe-pool-${randomUUID()}`;
    const names = channelNames(prefix);
    this.#up = new BroadcastChannel(names.up);
    this.#up.onmessage = (event: unknown) => this.#onSideMessage((event as { data: UpMessage }).data);
    this.#up.unref();
    this.#down = new BroadcastChannel(names.down);
    this.#down.unref();
    const workerData: WorkerData = {
      channel: prefix,
      cells: this.#slots.cells.buffer as SharedArrayBuffer,
      strings: this.#strings.buffer,
      ...(this.#retire ? { recycle: this.#retire.data } : {}),
    };
    const { Piscina } = loadPiscina();
    this.#piscina = new Piscina({
      filename: WORKER_FILE,
      minThreads: options.minThreads,
      maxThreads: options.maxThreads,
      idleTimeout: options.idleTimeoutMs,
      maxQueue: Infinity,
      execArgv: WORKER_EXEC_ARGV,
      workerData,
      ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
      ...(this.#retire ? { loadBalancer: this.#retire.balancer() } : {}),
    });
    this.#piscina.on('error', (error: unknown) => this.#report(error));
  }

  get status(): PoolStatus {
    return this.#status;
  }

  get stats(): ThreadPoolStats {
    return {
      threads: this.#piscina.threads.length,
      busy: this.#runs,
      queued: this.#queued,
      completed: this.#completed,
      runs: this.#dispatched,
      utilization: this.#piscina.utilization,
      recycled: this.#recycled,
    };
  }

  threadIds(): number[] {
    return this.#piscina.threads.map((w) => w.threadId);
  }

  run(job: HandlerJob): Promise<unknown> {
    const refusal = this.#refusal(job);
    if (refusal !== undefined) return Promise.reject(refusal);
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#enter(new Entry(++this.#seq, job, resolve, reject));
    return promise;
  }

  submit(job: CallbackJob): void {
    const refusal = this.#refusal(job);
    if (refusal !== undefined) queueMicrotask(() => job.done(false, refusal));
    else this.#enter(new Entry(++this.#seq, job));
  }

  /** Why a job cannot be taken now (closed, already stopped, queue full), or undefined. */
  #refusal(job: HandlerJob): unknown {
    if (this.#status !== 'running') return new TroupeError(ErrorCodes.CLOSED, 'The thread pool is closed');
    if (job.stops !== undefined) {
      if (job.stops.stopLevel > 0) return job.stops.stopReason;
    } else {
      if (job.hardSignal?.aborted) return job.hardSignal.reason;
      if (job.signal?.aborted) return job.signal.reason;
    }
    if (this.#runs >= this.#maxRuns && this.#queued >= this.#maxQueue) {
      return new TroupeError(ErrorCodes.POOL_EXHAUSTED, `The thread pool queue is full (${this.#maxQueue} jobs waiting)`, { details: { maxQueue: this.#maxQueue } });
    }
    return undefined;
  }

  /** Takes a job: at once when a run is free and nothing waits, else into the queue. */
  #enter(entry: Entry): void {
    const { job } = entry;
    if (job.stops !== undefined) job.stops.watchStops(this, entry);
    else this.#aborts.arm();
    if (this.#runs < this.#maxRuns && this.#queued === 0) {
      this.#dispatch([entry]);
    } else {
      this.#queue.push(entry);
      this.#queued++;
    }
  }

  close(options: { force?: boolean } = {}): Promise<void> {
    if (options.force === true && !this.#forced && this.#status !== 'stopped') this.#force();
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#status = 'stopping';
    if (!this.#isIdle()) await new Promise<void>((resolve) => (this.#idle = resolve));
    try {
      await (this.#forced ? this.#piscina.destroy() : this.#piscina.close());
    } catch (error) {
      this.#report(error);
    }
    this.#aborts.close();
    this.#up.close();
    this.#down.close();
    this.#status = 'stopped';
  }

  /** Drops the queue (CLOSED) and ends the threads; runs in flight then reject with CLOSED. */
  #force(): void {
    this.#forced = true;
    this.#status = 'stopping';
    for (let i = this.#head; i < this.#queue.length; i++) {
      const e = this.#queue[i]!;
      if (e.state === EntryStates.queued) this.#settle(e, new TroupeError(ErrorCodes.CLOSED, 'The thread pool was closed before the job started'));
    }
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
    for (const e of this.#held.values()) {
      if (replyKind(e.replyTag) === ReplyKinds.early) this.#settle(e, new TroupeError(ErrorCodes.CLOSED, 'The thread pool was closed before the result arrived'));
      else this.#settleReply(e, e.replyTag, e.replyValue);
    }
    this.#held.clear();
    this.#up.unref();
    void this.#piscina.destroy().catch((error: unknown) => this.#report(error));
    this.#checkIdle();
  }

  #isIdle(): boolean {
    return this.#runs === 0 && this.#queued === 0 && this.#held.size === 0;
  }

  #checkIdle(): void {
    if (this.#idle !== undefined && this.#isIdle()) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
  }

  #report(error: unknown): void {
    try {
      this.#onError?.(error);
    } catch {
      // A failing error hook must not break the pool.
    }
  }

  /** Waiting jobs are checked for aborts; jobs in flight get listeners (see abort-watch.ts). */
  #sweep(watch: AbortWatch<Entry>): boolean {
    let pending = false;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const e = this.#queue[i]!;
      if (e.state !== EntryStates.queued || e.job.stops !== undefined) continue;
      pending = true;
      watch.check(e);
    }
    for (const e of this.#bySlot) {
      if (e === undefined || e.state !== EntryStates.sent || e.job.stops !== undefined) continue;
      pending = true;
      watch.adopt(e);
    }
    return pending;
  }

  /** Sends waiting jobs while runs are free, spread over the free runs. */
  #pump(): void {
    while (this.#runs < this.#maxRuns && this.#queued > 0) {
      const size = resolveBatchSize(this.#queued, this.#maxRuns - this.#runs, this.#maxBatch);
      const batch: Entry[] = [];
      while (batch.length < size && this.#head < this.#queue.length) {
        const e = this.#queue[this.#head]!;
        if (e.state !== EntryStates.queued) {
          this.#head++;
          continue;
        }
        const alone = e.solo || (this.#slowHandlers.size > 0 && this.#slowHandlers.has(e.job.handler));
        if (alone && batch.length > 0) break;
        this.#head++;
        this.#queued--;
        batch.push(e);
        if (alone) break;
      }
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (batch.length === 0) break;
      this.#dispatch(batch);
    }
    if (this.#queued === 0 && this.#head > 0) {
      this.#queue = [];
      this.#head = 0;
    }
  }

  #dispatch(entries: Entry[]): void {
    const run: Run = { entries, hardStopped: false };
    // A job alone (every job of an idle pool) is packed without a writer.
    const writer = entries.length === 1 ? undefined : new RunWriter(this.#strings);
    let wire: WireRun | undefined;
    for (const e of entries) {
      const slot = this.#slots.alloc();
      if (slot === undefined) throw new TroupeError(ErrorCodes.INTERNAL, 'No free job slot in the thread pool');
      e.slot = slot;
      e.run = run;
      e.state = EntryStates.sent;
      this.#bySlot[slot] = e;
      const { job } = e;
      if (writer === undefined) wire = singleRun(this.#strings, slot, e.seq, job.handler, job.input, job.id, job.name, job.attempt, job.children);
      else writer.add(slot, e.seq, job.handler, job.input, job.id, job.name, job.attempt, job.children);
    }
    this.#runs++;
    this.#dispatched++;
    this.#piscina.run(writer === undefined ? wire! : writer.finish()).then(
      (reply: WireReply) => this.#onRunDone(run, reply),
      (error: unknown) => this.#onRunFailed(run, error),
    );
  }

  #releaseSlot(e: Entry): number {
    const flags = this.#slots.flags(e.slot);
    // Its usage is told now, while the slot's cells are still its own (the next run may take the slot at once).
    if (e.state !== EntryStates.settled && e.job.onUsage !== undefined) this.#tellUsage(e);
    this.#bySlot[e.slot] = undefined;
    this.#slots.release(e.slot);
    e.slot = -1;
    return flags;
  }

  #onRunDone(run: Run, reply: WireReply): void {
    const { entries } = run;
    // A bare result: the run's one job succeeded with no side messages (see WireReply).
    const bare = isBareReply(reply);
    const replies = reply as WireReplies;
    const retiring = this.#retiringThread(entries);
    if (retiring === undefined) this.#runs--;
    for (const e of entries) this.#releaseSlot(e);
    if (retiring !== undefined) this.#retireThread(retiring);
    // The next batch leaves before this one's outcomes are handled (their callbacks may run long): the thread
    // works meanwhile instead of waiting for the main thread.
    this.#pump();
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.state === EntryStates.settled) continue;
      if (bare) {
        this.#settleReply(e, replyTag(ReplyKinds.ok, 0), reply);
        continue;
      }
      const tag = replies[2 * k] as number;
      if (replyKind(tag) === ReplyKinds.early || e.received < replySideMessages(tag)) {
        e.replyTag = tag;
        e.replyValue = replies[2 * k + 1];
        this.#held.set(e.seq, e);
        this.#up.ref();
      } else {
        this.#settleReply(e, tag, replies[2 * k + 1]);
      }
    }
    this.#checkIdle();
  }

  /** The thread that ran these jobs and asked to retire (its threadId and cell), if it did. */
  #retiringThread(entries: Entry[]): { threadId: number; cell: number } | undefined {
    if (this.#retire === undefined) return undefined;
    const threadId = this.#slots.threadOf(entries[0]!.slot);
    const cell = this.#retire.find(threadId);
    return cell === -1 ? undefined : { threadId, cell };
  }

  /**
   * Ends a thread that asked to retire; it has no job (one run per thread, its reply settled). Its run's place
   * stays taken until it has exited, so the next run goes to the fresh thread Piscina starts in its place.
   */
  #retireThread({ threadId, cell }: { threadId: number; cell: number }): void {
    const worker = this.#piscina.threads.find((w) => w.threadId === threadId);
    const release = (): void => {
      this.#retire!.clear(cell);
      this.#runs--;
      this.#pump();
      this.#checkIdle();
    };
    if (worker === undefined) {
      // Already gone (its run failed as it ended): nothing to end.
      queueMicrotask(release);
      return;
    }
    this.#recycled++;
    worker.once('exit', release);
    worker.terminate().catch((error: unknown) => this.#report(error));
  }

  /** A run that failed: see crash-verdict.ts for who is blamed and who may run again. */
  #onRunFailed(run: Run, error: unknown): void {
    const { entries } = run;
    const retiring = this.#retiringThread(entries);
    if (retiring === undefined) this.#runs--;
    const flags = entries.map((e) => this.#releaseSlot(e));
    const verdicts = judgeFailedRun(flags, {
      hardStopped: run.hardStopped,
      cloneFailed: (error as { name?: unknown } | null)?.name === 'DataCloneError',
    });
    const outOfMemory = (error as { code?: unknown } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    const resend: Entry[] = [];
    entries.forEach((e, k) => {
      if (e.state === EntryStates.settled) return;
      const name = e.job.name;
      if (this.#forced) {
        this.#settle(e, new TroupeError(ErrorCodes.CLOSED, 'The thread pool was closed while the job ran', { cause: error }));
        return;
      }
      switch (verdicts[k]) {
        case Verdicts.resend:
          resend.push(e);
          break;
        case Verdicts.invalidInput:
          this.#settle(e, new TroupeError(ErrorCodes.INVALID_INPUT, `Input of \`${name}\` cannot be sent to a worker thread`, { cause: error }));
          break;
        case Verdicts.requeue:
          this.#settle(e, new TroupeError(ErrorCodes.WORKER_CRASHED, `The worker thread of \`${name}\` ended before the job finished; it can run again`, { cause: error, details: { requeue: true } }));
          break;
        default:
          this.#settle(e, outOfMemory
            ? new TroupeError(ErrorCodes.RESOURCE_LIMIT, `Handler of \`${name}\` ran out of memory (worker resource limits)`, { cause: error, details: { requeue: false } })
            : new TroupeError(ErrorCodes.WORKER_CRASHED, `The worker thread running \`${name}\` died`, { cause: error, details: { requeue: false } }));
      }
    });
    for (const e of resend) {
      e.state = EntryStates.queued;
      e.solo = true;
    }
    this.#queue.splice(this.#head, 0, ...resend);
    this.#queued += resend.length;
    if (retiring !== undefined) this.#retireThread(retiring);
    this.#pump();
    this.#checkIdle();
  }

  /** StopWatcher: whether a worker thread has taken the job (it waits in the queue, or in Piscina's, until then). */
  started(token: unknown): boolean {
    const e = token as Entry;
    if (e.state === EntryStates.queued) return false;
    if (e.state === EntryStates.settled || e.slot === -1) return true;
    return (this.#slots.flags(e.slot) & SlotFlags.STARTED) !== 0;
  }

  /** StopWatcher: a job with `stops` was stopped. */
  onStop(token: unknown, hard: boolean): void {
    const e = token as Entry;
    this.#onAbort(e, hard, e.job.stops!.stopReason);
  }

  #onAbort(e: Entry, hard: boolean, reason: unknown): void {
    if (e.state === EntryStates.settled) return;
    if (e.state === EntryStates.queued) {
      this.#queued--;
      this.#settle(e, reason);
      this.#checkIdle();
      return;
    }
    if (e.slot === -1) return; // held: finished, waiting for its side messages
    const prior = this.#slots.markAborted(e.slot);
    if ((prior & SlotFlags.RUNNING) === 0) {
      this.#settle(e, reason); // the worker will see ABORTED and not call the handler
      return;
    }
    if ((prior & SlotFlags.DONE) !== 0) return;
    if (hard) {
      const threadId = this.#slots.threadOf(e.slot);
      e.run!.hardStopped = true;
      this.#settle(e, reason);
      const worker = this.#piscina.threads.find((w) => w.threadId === threadId);
      void worker?.terminate();
      return;
    }
    const message: DownMessage = { s: e.slot, q: e.seq, r: encodeReason(reason) };
    try {
      this.#down.postMessage(message);
    } catch {
      this.#down.postMessage({ ...message, r: { v: String(reason) } });
    }
  }

  /** The job of a side message: by slot while its run is out, else among the held ones. */
  #entryOf(slot: number, seq: number): Entry | undefined {
    const e = this.#bySlot[slot];
    if (e !== undefined && e.seq === seq) return e;
    return this.#held.get(seq);
  }

  #onSideMessage(m: UpMessage): void {
    if (m.k === 'R') {
      this.#onEarlyResults(m.v as unknown[]);
      return;
    }
    if (m.k === 'S') {
      const [href, slow] = m.v as [string, boolean];
      if (slow) this.#slowHandlers.add(href);
      else this.#slowHandlers.delete(href);
      return;
    }
    const e = this.#entryOf(m.s, m.q);
    if (e === undefined || e.state === EntryStates.settled) return;
    e.received++;
    try {
      if (m.k === 'p') e.job.onProgress?.(m.v as { fraction: number });
      else e.job.onLog?.(m.v as string);
    } catch (error) {
      this.#report(error);
    }
    if (e.replyTag !== -1 && replyKind(e.replyTag) !== ReplyKinds.early && e.received >= replySideMessages(e.replyTag)) {
      this.#unhold(e);
      this.#settleReply(e, e.replyTag, e.replyValue);
      this.#checkIdle();
    }
  }

  /** Results a worker sent ahead of their run's reply (their batch mates still run): settled now. */
  #onEarlyResults(results: unknown[]): void {
    for (let at = 0; at < results.length; at += 4) {
      const e = this.#entryOf(results[at] as number, results[at + 1] as number);
      if (e === undefined || e.state === EntryStates.settled) continue;
      this.#unhold(e);
      this.#settleReply(e, results[at + 2] as number, results[at + 3]);
    }
    this.#checkIdle();
  }

  #unhold(e: Entry): void {
    if (!this.#held.delete(e.seq)) return;
    if (this.#held.size === 0) this.#up.unref();
  }

  #settleReply(e: Entry, tag: number, value: unknown): void {
    const kind = replyKind(tag);
    // A result sent ahead of its run's reply: its slot is still held (the others were told at release).
    if (e.slot !== -1 && e.job.onUsage !== undefined && (kind === ReplyKinds.ok || kind === ReplyKinds.error)) this.#tellUsage(e);
    if (kind === ReplyKinds.ok) this.#settle(e, undefined, true, value);
    else if (kind === ReplyKinds.error) this.#settle(e, deserializeError(value as SerializedError));
    else if (e.job.stops !== undefined) this.#settle(e, e.job.stops.stopReason);
    else this.#settle(e, (abortedSignalOf(e) ?? e.job.signal).reason);
  }

  /** Tells a job what it used, from its slot's cells, when its handler was called (the worker wrote them). */
  #tellUsage(e: Entry): void {
    const cpu = this.#slots.cpuMicros(e.slot);
    if (cpu < 0) return;
    const memory = this.#slots.memoryKib(e.slot);
    try {
      e.job.onUsage!(cpu / 1000, memory < 0 ? undefined : memory / 1024);
    } catch (error) {
      this.#report(error);
    }
  }

  /** Settles a job once: rejects with `error`, or resolves with `value` when `ok`. */
  #settle(e: Entry, error: unknown, ok = false, value?: unknown): void {
    e.state = EntryStates.settled;
    if (e.job.stops !== undefined) e.job.stops.watchStops(undefined);
    else if (e.listening) this.#aborts.release(e);
    this.#completed++;
    if (e.resolve === undefined) (e.job as CallbackJob).done(ok, ok ? value : error);
    else if (ok) e.resolve(value);
    else e.reject!(error);
  }
}

/** Creates the pool that runs handler modules on worker threads, batching jobs when the queue is deep. */
export function createThreadPool(options: ThreadPoolOptions): ThreadPool {
  return new HandlerThreadPool(options);
}
