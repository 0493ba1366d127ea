/**
 * Runs inside a Piscina worker thread: loads handler modules (once per file URL per thread), builds each job's
 * `ctx`, and turns outcomes into replies the main thread can rebuild (errors keep code, name, stack and hints).
 *
 * Piscina hands this module one run at a time: one job, or several (a batch), packed by `batcher.ts`. A batch's
 * handlers are *called* in order; a synchronous handler runs to completion before the next is called, an
 * async one is awaited together with the rest, so async handlers of one batch overlap. The run's reply leaves
 * when its last job settles; results that are ready earlier go ahead of it when a batch mate may hold them up
 * (see `runJobs`).
 *
 * Nothing costs anything unless used: `ctx.signal` is created on first read, and the side channel for
 * progress and log lines is opened on the first report.
 *
 * Each job's usage goes to main in its slot's cells (see `writeUsage`): the CPU time of a job that may be slow (its
 * handler never timed, or ≥ SLOW_CALL_MS a call: such jobs run alone on their thread) is the thread's CPU time from
 * the call to the settle, with the thread's memory at the settle; a fast handler's job (batched, well under 1 ms)
 * is charged the time spent inside its synchronous call, and its memory is not read.
 */
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { ErrorCodes, TroupeError, deserializeError, invalidOption, serializeError } from '../errors.ts';
import {
  CELLS_PER_SLOT, CPU_CELL, MEMORY_CELL, ReplyKinds, SlotFlags, StringTableReader, channelNames, packReply, readRun, replyKind, replyTag,
  type DownMessage, type UpMessage, type WireJob, type WireReplies, type WireReply, type WireRun, type WorkerData,
} from './batcher.ts';
import { RetireCheck } from './recycle.ts';
import { isolateMemoryKib, threadCpuMs } from './thread-usage.ts';
import { isThenable } from '../thenable.ts';
import type { FlowChild } from '../task.ts';

type Handler = (input: unknown, ctx: JobContext) => unknown;

/** A loaded handler and how long its calls take (a moving mean, ms; -1 before the first call ends). */
interface LoadedHandler {
  href: string;
  fn: Handler;
  meanMs: number;
  /** What main was last told: whether this handler is slow (main then stops batching its jobs). */
  toldSlow: boolean;
}

/** A handler slower than this on average is "slow": results go ahead of its calls, and main runs it alone. */
const SLOW_CALL_MS = 1;

const data = workerData as WorkerData;
const cells = new Int32Array(data.cells);
const strings = new StringTableReader(data.strings);
const names = channelNames(data.channel);
/** Recycling, when on: asks main to replace this thread once over its job count or heap limit. */
const retire = data.recycle === undefined ? undefined : new RetireCheck(data.recycle, threadId);

/** Loaded handlers by file URL, or the import still under way. */
const handlers = new Map<string, LoadedHandler | Promise<LoadedHandler>>();
/** The context of the job running in each slot of this thread. */
const running: (JobContext | undefined)[] = [];
let up: BroadcastChannel | undefined;

const down = new BroadcastChannel(names.down);
down.onmessage = (event: unknown) => {
  const m = (event as { data: DownMessage }).data;
  const ctx = running[m.s];
  if (ctx !== undefined && ctx.seq === m.q) ctx.abort('e' in m.r ? deserializeError(m.r.e) : m.r.v);
};
down.unref();

/** The `ctx` a handler gets. */
class JobContext {
  readonly id: string;
  readonly name: string;
  readonly attempt: number;
  readonly slot: number;
  readonly seq: number;
  /** A flow parent's children, in the order they were given (see `TaskContext.children`). */
  readonly children: readonly FlowChild[] | undefined;
  /** Side messages sent so far. */
  sent = 0;
  /** Set when the handler is called: what to time. */
  handler: LoadedHandler | undefined;
  calledAt = 0;
  /** The thread's CPU time at the call (threadCpuMs), for a job that may be slow; −1 when not read. */
  cpuAt = -1;
  /** Time spent inside the call, when it returned a promise (the job settles later); −1 otherwise. */
  syncMs = -1;
  #controller: AbortController | undefined;
  #abort: { reason: unknown } | undefined;

  constructor(job: WireJob) {
    this.id = job.id;
    this.name = job.n;
    this.attempt = job.a;
    this.slot = job.s;
    this.seq = job.q;
    this.children = job.c;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abort !== undefined) this.#controller.abort(this.#abort.reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#abort !== undefined) return;
    this.#abort = { reason };
    this.#controller?.abort(reason);
  }

  progress(value: number | { done: number; total: number }): void {
    this.#post('p', normalizeProgress(value));
  }

  log(line: string): void {
    this.#post('l', String(line));
  }

  #post(k: UpMessage['k'], v: unknown): void {
    postUp({ s: this.slot, q: this.seq, k, v });
    this.sent++;
  }
}

function postUp(message: UpMessage): void {
  if (up === undefined) {
    up = new BroadcastChannel(names.up);
    up.unref();
  }
  up.postMessage(message);
}

function normalizeProgress(value: unknown): { fraction: number; done?: number; total?: number } {
  if (typeof value === 'number' && Number.isFinite(value)) return { fraction: Math.min(1, Math.max(0, value)) };
  if (typeof value === 'object' && value !== null) {
    const { done, total } = value as { done?: unknown; total?: unknown };
    if (typeof done === 'number' && typeof total === 'number' && Number.isFinite(done) && Number.isFinite(total) && total > 0) {
      return { fraction: Math.min(1, Math.max(0, done / total)), done, total };
    }
  }
  throw invalidOption('ctx.progress()', 'a fraction in [0, 1] or `{ done, total }` with total > 0', value);
}

function pickHandler(href: string, mod: { default?: unknown }): LoadedHandler {
  const d = mod.default as Handler | { run?: unknown } | undefined;
  if (typeof d === 'function') return { href, fn: d, meanMs: -1, toldSlow: false };
  if (typeof d === 'object' && d !== null && typeof d.run === 'function') {
    return { href, fn: d.run.bind(d) as Handler, meanMs: -1, toldSlow: false };
  }
  throw new TroupeError(ErrorCodes.HANDLER_LOAD, `Handler module ${href} has no default export function`);
}

/** Imports a handler module once per thread. A failed import is forgotten (a later job tries again); a module without a handler stays refused. */
function loadHandler(href: string): Promise<LoadedHandler> {
  const loading = import(href).then(
    (mod: { default?: unknown }) => {
      const loaded = pickHandler(href, mod);
      handlers.set(href, loaded);
      return loaded;
    },
    (cause: unknown) => {
      handlers.delete(href);
      throw new TroupeError(ErrorCodes.HANDLER_LOAD, `Could not load handler module ${href}`, { cause });
    },
  );
  handlers.set(href, loading);
  return loading;
}

/** One run on this thread: its replies, and the finished jobs main has not been told about yet. */
interface RunState {
  jobs: WireJob[];
  out: WireReplies;
  /** Jobs not settled yet. */
  remaining: number;
  /** True while runJobs is still calling handlers synchronously. */
  starting: boolean;
  /** Settled jobs whose result is only in `out` so far. */
  unsent: number[];
  resolve: ((reply: WireReply) => void) | undefined;
}

/**
 * Sends the results of settled jobs ahead of the run's reply, on the side channel (after their own progress
 * and log lines, so their order holds), and marks them `early` in the reply.
 */
function flush(run: RunState): void {
  if (run.unsent.length === 0) return;
  const results: unknown[] = [];
  for (const k of run.unsent) {
    const job = run.jobs[k]!;
    results.push(job.s, job.q, run.out[2 * k], run.out[2 * k + 1]);
    run.out[2 * k] = replyTag(ReplyKinds.early, 0);
    run.out[2 * k + 1] = undefined;
  }
  run.unsent = [];
  try {
    postUp({ s: -1, q: -1, k: 'R', v: results });
  } catch {
    postOneByOne(run, results);
  }
}

/** A result that cannot be cloned fails its own job instead of taking the thread down with it. */
function postOneByOne(run: RunState, results: unknown[]): void {
  for (let at = 0; at < results.length; at += 4) {
    const one = results.slice(at, at + 4);
    try {
      postUp({ s: -1, q: -1, k: 'R', v: one });
    } catch (cause) {
      const job = run.jobs.find((j) => j.s === one[0] && j.q === one[1])!;
      const error = new TroupeError(ErrorCodes.TASK_FAILED, `Handler of \`${job.n}\` returned a value that cannot leave the worker thread`, { cause });
      postUp({ s: -1, q: -1, k: 'R', v: [one[0], one[1], replyTag(ReplyKinds.error, 0), serializeError(error)] });
    }
  }
}

/** Records that job `k` settled: the run's reply goes with the last one; earlier ones go ahead if others still run. */
function settled(run: RunState, k: number): void {
  run.remaining--;
  if (run.starting) {
    run.unsent.push(k);
  } else if (run.remaining === 0) {
    reply(run);
  } else {
    run.unsent.push(k);
    flush(run);
  }
}

/** Folds a call's time (`ms`, call to settle) into its handler's mean, and tells main when it turns slow or fast. */
function timeCall(h: LoadedHandler, ms: number): void {
  h.meanMs = h.meanMs < 0 ? ms : h.meanMs * 0.8 + ms * 0.2;
  // Hysteresis: slow from SLOW_CALL_MS up, fast again below half of it, so a handler near the line does not flap.
  const slow = h.toldSlow ? h.meanMs >= SLOW_CALL_MS / 2 : h.meanMs >= SLOW_CALL_MS;
  if (slow !== h.toldSlow) {
    h.toldSlow = slow;
    postUp({ s: -1, q: -1, k: 'S', v: [h.href, slow] });
  }
}

/**
 * Writes what a called job used into its slot's usage cells (before DONE, so main finds them with the reply):
 * thread CPU and memory when they were read at the call, else the time of the synchronous call (`ms` for a
 * handler that returned its value, `syncMs` for one that returned a promise).
 */
function writeUsage(ctx: JobContext, ms: number): void {
  const base = ctx.slot * CELLS_PER_SLOT;
  let cpu: number;
  if (ctx.cpuAt >= 0) {
    cpu = threadCpuMs() - ctx.cpuAt;
    Atomics.store(cells, base + MEMORY_CELL, isolateMemoryKib());
  } else {
    cpu = ctx.syncMs >= 0 ? ctx.syncMs : ms;
  }
  Atomics.store(cells, base + CPU_CELL, Math.min(0x7fffffff, Math.max(0, Math.round(cpu * 1000))));
}

/** Writes a job's outcome into its two reply cells. */
function finish(ctx: JobContext, ok: boolean, value: unknown, run: RunState, k: number): void {
  running[ctx.slot] = undefined;
  const h = ctx.handler;
  const ms = h === undefined ? 0 : performance.now() - ctx.calledAt;
  if (h !== undefined) writeUsage(ctx, ms);
  Atomics.or(cells, ctx.slot * CELLS_PER_SLOT, SlotFlags.DONE);
  if (h !== undefined) timeCall(h, ms);
  if (ok && (typeof value === 'function' || typeof value === 'symbol')) {
    ok = false;
    value = new TroupeError(ErrorCodes.TASK_FAILED, `Handler of \`${ctx.name}\` returned a ${typeof value}, which cannot leave the worker thread`);
  }
  run.out[2 * k] = replyTag(ok ? ReplyKinds.ok : ReplyKinds.error, ctx.sent);
  run.out[2 * k + 1] = ok ? value : serializeError(value);
  settled(run, k);
}

function skip(run: RunState, k: number): void {
  run.out[2 * k] = replyTag(ReplyKinds.skipped, 0);
  run.out[2 * k + 1] = undefined;
  run.remaining--;
  if (!run.starting && run.remaining === 0) reply(run);
}

/** Sends the run's reply (its last job settled); a thread over its recycling limits first asks to retire. */
function reply(run: RunState): WireReply {
  retire?.afterRun();
  const packed = packReply(run.out);
  run.resolve?.(packed);
  return packed;
}

/** Whether a call may take a while: never timed, or slow on average. */
function mayBeSlow(h: LoadedHandler): boolean {
  return h.meanMs < 0 || h.meanMs >= SLOW_CALL_MS;
}

/** Calls the handler, unless main aborted the job first. Results ready before a call that may be slow go ahead. */
function invoke(h: LoadedHandler, job: WireJob, ctx: JobContext, run: RunState, k: number): void {
  if (Atomics.or(cells, job.s * CELLS_PER_SLOT, SlotFlags.RUNNING) & SlotFlags.ABORTED) {
    skip(run, k);
    return;
  }
  const slow = mayBeSlow(h);
  if (run.unsent.length > 0 && slow) flush(run);
  running[job.s] = ctx;
  ctx.handler = h;
  if (slow) ctx.cpuAt = threadCpuMs();
  ctx.calledAt = performance.now();
  let result: unknown;
  try {
    result = h.fn(job.i, ctx);
  } catch (error) {
    finish(ctx, false, error, run, k);
    return;
  }
  if (isThenable(result)) {
    ctx.syncMs = performance.now() - ctx.calledAt;
    Promise.resolve(result).then(
      (v) => finish(ctx, true, v, run, k),
      (e: unknown) => finish(ctx, false, e, run, k),
    );
    return;
  }
  finish(ctx, true, result, run, k);
}

/** Takes one job: skipped if main aborted it already; otherwise its handler is loaded (once) and called. */
function start(run: RunState, k: number): void {
  const job = run.jobs[k]!;
  const cell = job.s * CELLS_PER_SLOT;
  Atomics.store(cells, cell + 1, threadId);
  if (Atomics.or(cells, cell, SlotFlags.STARTED) & SlotFlags.ABORTED) {
    skip(run, k);
    return;
  }
  const ctx = new JobContext(job);
  const cached = handlers.get(job.h);
  if (cached !== undefined && !(cached instanceof Promise)) {
    invoke(cached, job, ctx, run, k);
    return;
  }
  (cached ?? loadHandler(job.h)).then(
    (h) => invoke(h, job, ctx, run, k),
    (e: unknown) => finish(ctx, false, e, run, k),
  );
}

/**
 * Piscina's entry: a run of one or more jobs in, their replies out. Never throws: failures are replies.
 *
 * The run's reply leaves when its last job settles, so a ready result must not wait behind a slow batch mate:
 * - an async job that settles while others still run sends its result ahead at once;
 * - before a call that may be slow (a handler never timed, or slower than SLOW_CALL_MS on average), the results
 *   ready so far go ahead; so do they when the synchronous pass ends with jobs still running.
 * A synchronous handler that is fast on average but slow this time still holds back the results before it until
 * it returns. Fast batches (the throughput case) send nothing extra.
 */
export default function runJobs(wire: WireRun): WireReply | Promise<WireReply> {
  const jobs = readRun(wire, strings);
  const run: RunState = { jobs, out: new Array(jobs.length * 2), remaining: jobs.length, starting: true, unsent: [], resolve: undefined };
  retire?.took(jobs.length);
  for (let k = 0; k < jobs.length; k++) start(run, k);
  run.starting = false;
  if (run.remaining === 0) return reply(run);
  flush(run);
  return new Promise((resolve) => {
    run.resolve = resolve;
  });
}
