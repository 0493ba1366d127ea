/**
 * Runs inside a Piscina worker thread: loads handler modules (once per file URL per thread), builds each job's
 * `ctx`, and turns outcomes into replies the main thread can rebuild (errors keep code, name, stack and hints).
 *
 * Piscina hands this module one run at a time: one job, or several (a batch), packed by `batcher.ts`. A batch's
 * handlers are *called* in order; a synchronous handler runs to completion before the next is called, an
 * async one is awaited together with the rest, so async handlers of one batch overlap. The reply comes back
 * when every job of the batch has settled.
 *
 * Nothing costs anything unless used: `ctx.signal` is created on first read, and the side channel for
 * progress and log lines is opened on the first report.
 */
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { ErrorCodes, TroupeError, deserializeError, invalidOption, serializeError } from '../errors.ts';
import {
  CELLS_PER_SLOT, ReplyKinds, SlotFlags, channelNames, readRun, replyTag,
  type DownMessage, type UpMessage, type WireJob, type WireReplies, type WireRun, type WorkerData,
} from './batcher.ts';

type Handler = (input: unknown, ctx: JobContext) => unknown;

const data = workerData as WorkerData;
const cells = new Int32Array(data.cells);
const names = channelNames(data.channel);

/** Loaded handlers by file URL, or the import still under way. */
const handlers = new Map<string, Handler | Promise<Handler>>();
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
  /** Side messages sent so far. */
  sent = 0;
  #controller: AbortController | undefined;
  #abort: { reason: unknown } | undefined;

  constructor(job: WireJob) {
    this.id = job.id;
    this.name = job.n;
    this.attempt = job.a;
    this.slot = job.s;
    this.seq = job.q;
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
    up ??= new BroadcastChannel(names.up);
    const message: UpMessage = { s: this.slot, q: this.seq, k, v };
    up.postMessage(message);
    this.sent++;
  }
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

function pickHandler(href: string, mod: { default?: unknown }): Handler {
  const d = mod.default as Handler | { run?: unknown } | undefined;
  if (typeof d === 'function') return d;
  if (typeof d === 'object' && d !== null && typeof d.run === 'function') return d.run.bind(d) as Handler;
  throw new TroupeError(ErrorCodes.HANDLER_LOAD, `Handler module ${href} has no default export function`);
}

/** Imports a handler module once per thread. A failed import is forgotten (a later job tries again); a module without a handler stays refused. */
function loadHandler(href: string): Promise<Handler> {
  const loading = import(href).then(
    (mod: { default?: unknown }) => {
      const fn = pickHandler(href, mod);
      handlers.set(href, fn);
      return fn;
    },
    (cause: unknown) => {
      handlers.delete(href);
      throw new TroupeError(ErrorCodes.HANDLER_LOAD, `Could not load handler module ${href}`, { cause });
    },
  );
  handlers.set(href, loading);
  return loading;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null
    && typeof (value as { then?: unknown }).then === 'function';
}

/** Writes a job's outcome into its two reply cells. */
function finish(ctx: JobContext, ok: boolean, value: unknown, out: WireReplies, at: number): void {
  running[ctx.slot] = undefined;
  Atomics.or(cells, ctx.slot * CELLS_PER_SLOT, SlotFlags.DONE);
  if (ok && (typeof value === 'function' || typeof value === 'symbol')) {
    ok = false;
    value = new TroupeError(ErrorCodes.TASK_FAILED, `Handler of \`${ctx.name}\` returned a ${typeof value}, which cannot leave the worker thread`);
  }
  out[at] = replyTag(ok ? ReplyKinds.ok : ReplyKinds.error, ctx.sent);
  out[at + 1] = ok ? value : serializeError(value);
}

/** Calls the handler; returns a promise only when the job is still running. */
function invoke(fn: Handler, job: WireJob, ctx: JobContext, out: WireReplies, at: number): Promise<void> | undefined {
  let result: unknown;
  try {
    result = fn(job.i, ctx);
  } catch (error) {
    finish(ctx, false, error, out, at);
    return undefined;
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (v) => finish(ctx, true, v, out, at),
      (e: unknown) => finish(ctx, false, e, out, at),
    );
  }
  finish(ctx, true, result, out, at);
  return undefined;
}

/** Starts one job: skipped if main aborted it first; otherwise the handler runs with a fresh ctx. */
function start(job: WireJob, out: WireReplies, at: number): Promise<void> | undefined {
  const cell = job.s * CELLS_PER_SLOT;
  Atomics.store(cells, cell + 1, threadId);
  if (Atomics.or(cells, cell, SlotFlags.STARTED) & SlotFlags.ABORTED) {
    out[at] = replyTag(ReplyKinds.skipped, 0);
    out[at + 1] = undefined;
    return undefined;
  }
  const ctx = new JobContext(job);
  running[job.s] = ctx;
  const cached = handlers.get(job.h);
  if (typeof cached === 'function') return invoke(cached, job, ctx, out, at);
  return (cached ?? loadHandler(job.h)).then(
    (fn) => invoke(fn, job, ctx, out, at),
    (e: unknown) => finish(ctx, false, e, out, at),
  );
}

/** Piscina's entry: a run of one or more jobs in, their replies out. Never throws: failures are replies. */
export default function runJobs(wire: WireRun): WireReplies | Promise<WireReplies> {
  const jobs = readRun(wire);
  const out: WireReplies = new Array(jobs.length * 2);
  let waiting = 0;
  let done: ((r: WireReplies) => void) | undefined;
  const settleOne = () => {
    if (--waiting === 0 && done !== undefined) done(out);
  };
  for (let k = 0; k < jobs.length; k++) {
    const running = start(jobs[k]!, out, k * 2);
    if (running !== undefined) {
      waiting++;
      void running.then(settleOne);
    }
  }
  if (waiting === 0) return out;
  return new Promise((resolve) => {
    done = resolve;
  });
}
