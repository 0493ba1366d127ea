/**
 * The executor holds capacity: at most `concurrency` runs at once, and at most a name's own `concurrency` of that
 * name. When it has room it asks the scheduler for work (`scheduler.demand`, one outstanding at a time); each
 * dispatched task gets a task actor, runs on the thread pool, as a subprocess or inline, and its outcome goes to
 * the tracker as a settle op. Task actors are this actor's children in the supervision tree.
 *
 * Outcome rules (first termination reason wins):
 * - cancel: the tracker already marked the task cancelled; nothing is written (a late result is dropped).
 * - shutdown, or a batch-mate of a thread that had to be ended: the task is released (its attempt not counted).
 * - timeout: another attempt if the policy allows, else `timed_out`.
 * - an error: PermanentError → `failed`; DelayError → runs again at its time; else retry with backoff while
 *   attempts remain, then `failed` (a dead letter).
 */
import type { Actor, ActorContext, TreeNode } from '../../src/actor/actor.ts';
import type { Clock } from '../../src/clock.ts';
import { ErrorCodes, TroupeError, serializeError, type SerializedError } from '../../src/errors.ts';
import type { TaskId } from '../../src/ids.ts';
import type { Logger } from '../../src/options.ts';
import type { ThreadPool } from '../../src/pool/thread-pool.ts';
import type { runCommand as RunCommand } from '../../src/process/run-command.ts';
import { normalizeProgress, type Registry, type ResolvedTask, type TaskContext } from '../../src/registry.ts';
import { computeBackoff } from '../../src/schedule/backoff.ts';
import type { SettleOp } from '../../src/store/store.ts';
import type { OutputStream, Progress, RetryPolicy, TaskRecord } from '../../src/task.ts';
import type { Telemetry } from '../../src/telemetry.ts';
import type { StatsBook } from '../../src/advice/stats-book.ts';
import type { FailureCause, RunOutcome } from '../../src/advice/stats-types.ts';
import { createAdaptiveLimit, type AdaptiveLimit } from './adaptive-limit.ts';
import type { TroupeMessage } from '../messages.ts';
import { createSchedulerDemand } from '../scheduler/messages.ts';
import { TaskActor } from '../task/task-actor.ts';
import type { ExecutorMessage } from './messages.ts';

export interface ExecutorDeps {
  registry: Registry;
  clock: Clock;
  owner: string;
  concurrency: number;
  logger: Logger;
  random: () => number;
  orchestrator: string;
  pool: () => ThreadPool;
  runCommand: typeof RunCommand;
  /** OpenTelemetry hooks, when the API is installed. */
  telemetry?: Telemetry;
  /** Per-name run statistics for the advisor. */
  stats?: StatsBook;
}

export class Executor implements Actor<TroupeMessage> {
  readonly #ctx: ActorContext<TroupeMessage>;
  readonly #d: ExecutorDeps;
  readonly #running = new Map<TaskId, TaskActor>();
  readonly #perName = new Map<string, number>();
  readonly #adaptive = new Map<string, AdaptiveLimit>();
  #limit: number;
  #demanding = false;
  #demandQueued = false;
  #draining = false;
  #drainWaiters: string[] = [];
  #stats = { started: 0, succeeded: 0, failed: 0, retried: 0, released: 0 };

  constructor(ctx: ActorContext<TroupeMessage>, deps: ExecutorDeps) {
    this.#ctx = ctx;
    this.#d = deps;
    this.#limit = deps.concurrency;
  }

  start(): void {
    this.#demand();
  }

  stop(): void {
    for (const run of this.#running.values()) run.end('shutdown');
  }

  describe(): Record<string, unknown> {
    const adaptive: Record<string, unknown> = {};
    for (const [name, limit] of this.#adaptive) adaptive[name] = limit.snapshot();
    return { running: this.#running.size, limit: this.#limit, draining: this.#draining, ...this.#stats, ...(this.#adaptive.size ? { adaptive } : {}) };
  }

  /** Current per-name limits of adaptive names. */
  adaptiveLimits(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, limit] of this.#adaptive) out[name] = limit.limit;
    return out;
  }

  #adaptiveOf(task: ResolvedTask): AdaptiveLimit {
    let limit = this.#adaptive.get(task.name);
    if (!limit) {
      limit = createAdaptiveLimit(task.adaptive as never, this.#d.clock);
      this.#adaptive.set(task.name, limit);
    }
    return limit;
  }

  children(): TreeNode[] {
    return [...this.#running.values()].map((run) => ({
      address: `task/${run.id}`,
      kind: 'task',
      status: run.state,
      restarts: 0,
      info: { name: run.name, attempt: run.attempt, startedAt: run.startedAt, ...(run.reason ? { ending: run.reason } : {}) },
    }));
  }

  /** Runs in progress on this node (ids). */
  runningIds(): TaskId[] {
    return [...this.#running.keys()];
  }

  receive(msg: TroupeMessage): void {
    const m = msg as ExecutorMessage;
    switch (m.type) {
      case 'executor.dispatch':
        this.#demanding = false;
        for (const task of m.tasks) this.#start(task);
        this.#demand();
        return;
      case 'executor.abort':
        this.#running.get(m.id)?.end(m.reason);
        return;
      case 'executor.abort-all':
        for (const run of this.#running.values()) run.end(m.reason);
        return;
      case 'executor.drain':
        this.#draining = true;
        this.#drainWaiters.push(m.replyTo);
        this.#maybeDrained();
        return;
      case 'executor.poke':
        this.#demand();
        return;
      default:
        return;
    }
  }

  /** Asks for work at most once per microtask turn, however many runs end in it. */
  #demand(): void {
    if (this.#demandQueued) return;
    this.#demandQueued = true;
    queueMicrotask(this.#sendDemand);
  }

  readonly #sendDemand = (): void => {
    this.#demandQueued = false;
    if (this.#draining) return;
    const free = this.#limit - this.#running.size;
    if (free <= 0) return;
    const perName: Record<string, number> = {};
    const exclude: string[] = [];
    for (const task of this.#d.registry.list()) {
      const cap = task.adaptive ? this.#adaptiveOf(task).limit : task.concurrency;
      if (cap === undefined) continue;
      const room = cap - (this.#perName.get(task.name) ?? 0);
      if (room <= 0) exclude.push(task.name);
      else if (room < free) perName[task.name] = room;
    }
    // One demand outstanding at a time; a newer one replaces it at the scheduler.
    this.#demanding = true;
    this.#ctx.tell(this.#d.orchestrator, createSchedulerDemand(free, perName, exclude));
  };

  #start(task: TaskRecord): void {
    const { clock } = this.#d;
    const def = this.#d.registry.get(task.name);
    const run = new TaskActor(task, clock, def?.killGraceMs ?? 5000);
    this.#running.set(task.id, run);
    this.#perName.set(task.name, (this.#perName.get(task.name) ?? 0) + 1);
    this.#stats.started++;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.started', id: task.id, name: task.name, attempt: task.attempts, owner: this.#d.owner, at: run.startedAt });
    if (!def) {
      this.#finish(run, undefined, new TroupeError(ErrorCodes.UNKNOWN_TASK, `No task named \`${task.name}\` is registered on this node`, { details: { permanent: true } }), true);
      return;
    }
    if (def.adaptive) {
      this.#adaptiveOf(def).onStart();
      run.t0 = performance.now();
    }
    if (this.#d.telemetry) run.span = this.#d.telemetry.startRun({ id: task.id, name: task.name, attempt: task.attempts, ...(task.options?.trace ? { trace: task.options.trace } : {}) });
    run.armTimeout(task.options?.timeoutMs ?? def.timeoutMs);
    // One callback per run for its outcome, whatever runs it (a handler job needs no promise).
    const done = (ok: boolean, value: unknown): void => {
      if (ok) this.#finish(run, def, undefined, false, value);
      else this.#finish(run, def, value, false);
    };
    let work: Promise<unknown> | undefined;
    try {
      work = this.#execute(def, run, task, done);
    } catch (error) {
      work = Promise.reject(error);
    }
    work?.then(
      (result) => done(true, result),
      (error: unknown) => done(false, error),
    );
  }

  /** Starts the run's code: a handler job reports to `done` itself (undefined); the other kinds return a promise. */
  #execute(def: ResolvedTask, run: TaskActor, task: TaskRecord, done: (ok: boolean, value: unknown) => void): Promise<unknown> | undefined {
    const onProgress = (p: Progress) => this.#progress(run, p);
    switch (def.kind) {
      case 'handler':
        this.#d.pool().submit({
          id: task.id,
          name: task.name,
          handler: def.handler,
          input: task.input,
          attempt: task.attempts,
          stops: run,
          onProgress,
          onLog: (text) => this.#output(run, 'log', text),
          done,
        });
        return undefined;
      case 'command': {
        const args = def.args(task.input);
        return this.#d
          .runCommand({
            command: def.command,
            args,
            ...(def.cwd ? { cwd: def.cwd } : {}),
            ...(def.env ? { env: def.env } : {}),
            killGraceMs: def.killGraceMs,
            signal: run.signal,
            maxLines: def.output.maxLines,
            maxBytes: def.output.maxBytes,
            onLine: (line) => this.#output(run, line.stream, line.text),
            onProgress,
          })
          .then((r) => (r.value !== undefined ? r.value : { exitCode: r.exitCode, lines: r.lines }));
      }
      case 'inline': {
        const ctx: TaskContext = {
          id: task.id,
          name: task.name,
          attempt: task.attempts,
          signal: run.signal,
          progress: (value) => {
            const p = normalizeProgress(value);
            if (p) onProgress(p);
          },
          log: (line) => this.#output(run, 'log', String(line)),
        };
        if (task.children) ctx.children = task.children;
        const result = Promise.resolve().then(() => def.run(task.input, ctx));
        // Inline code cannot be killed: once the hard signal fires, the run counts as ended.
        return new Promise((resolve, reject) => {
          const onHard = () => reject(run.hardSignal.reason);
          run.hardSignal.addEventListener('abort', onHard, { once: true });
          result.then(
            (v) => {
              run.hardSignal.removeEventListener('abort', onHard);
              resolve(v);
            },
            (e: unknown) => {
              run.hardSignal.removeEventListener('abort', onHard);
              reject(e);
            },
          );
        });
      }
    }
  }

  #progress(run: TaskActor, progress: Progress): void {
    if (!this.#running.has(run.id)) return;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.progress', id: run.id, name: run.name, progress, at: this.#d.clock.now() });
  }

  #output(run: TaskActor, stream: OutputStream, text: string): void {
    run.outputLines++;
    this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.output', id: run.id, name: run.name, stream, text, at: this.#d.clock.now() });
  }

  #finish(run: TaskActor, def: ResolvedTask | undefined, error: unknown, permanent: boolean, result?: unknown): void {
    if (this.#running.get(run.id) !== run) return;
    run.dispose();
    this.#running.delete(run.id);
    const left = (this.#perName.get(run.name) ?? 1) - 1;
    if (left <= 0) this.#perName.delete(run.name);
    else this.#perName.set(run.name, left);

    const op = this.#decide(run, def, error, permanent, result);
    if (def?.adaptive) {
      const code = (error as { code?: unknown } | undefined)?.code;
      this.#adaptive.get(run.name)?.onEnd({ durationMs: performance.now() - run.t0, ok: op?.type === 'succeeded', dropped: run.reason === 'timeout' || code === ErrorCodes.RESOURCE_LIMIT });
    }
    if (this.#d.stats && op && op.type !== 'release' && op.type !== 'progress' && op.type !== 'output') this.#observe(run, op, error);
    else if (this.#d.stats && run.reason === 'cancel') this.#observe(run, undefined, error);
    if (run.span) {
      const outcome = op === undefined ? 'cancelled' : op.type === 'retry' ? 'retrying' : op.type === 'release' ? 'released' : (op.type as 'succeeded' | 'failed' | 'timed_out');
      run.span.end(outcome, op && 'error' in op ? op.error : undefined);
    }
    if (op) this.#ctx.tell(this.#d.orchestrator, { type: 'tracker.settle', op, name: run.name, startedAt: run.startedAt });
    this.#maybeDrained();
    this.#demand();
  }

  #decide(run: TaskActor, def: ResolvedTask | undefined, error: unknown, permanent: boolean, result: unknown): SettleOp | undefined {
    const base = { id: run.id, owner: this.#d.owner, attempt: run.attempt, at: this.#d.clock.now() };
    const reason = run.reason;
    if (reason === 'cancel') {
      run.send({ type: 'cancel' });
      return undefined;
    }
    if (reason === 'shutdown' || (error !== undefined && isRequeue(error))) {
      run.send({ type: 'release' });
      this.#stats.released++;
      return { type: 'release', ...base, reason: reason === 'shutdown' ? 'shutdown' : 'thread ended' };
    }
    const policy: RetryPolicy | undefined = run.record.options?.retry ?? def?.retry;
    const maxAttempts = run.record.maxAttempts;
    const canRetry = !permanent && run.attempt < maxAttempts;
    if (reason === 'timeout') {
      const err = serializeError(new TroupeError(ErrorCodes.TIMEOUT, `Task \`${run.name}\` (${run.id}) timed out`, { cause: error }));
      if (run.send({ type: 'time_out', retry: canRetry }) && run.state === 'retrying') return this.#retryOp(base, policy, err);
      return { type: 'timed_out', ...base, error: err };
    }
    if (error === undefined) {
      run.send({ type: 'succeed' });
      this.#stats.succeeded++;
      return { type: 'succeeded', ...base, result: result === undefined ? null : result };
    }
    const err = serializeError(error);
    if (err.hint === 'delay' && typeof err.details?.until === 'number') {
      run.send({ type: 'fail', retry: true });
      this.#stats.retried++;
      return { type: 'retry', ...base, runAt: err.details.until as number, error: err, reason: 'delayed by the task' };
    }
    // A module that cannot load will not load on the next attempt either: no crash loop.
    const retry = canRetry && err.hint !== 'permanent' && err.details?.permanent !== true && err.code !== ErrorCodes.HANDLER_LOAD;
    run.send({ type: 'fail', retry });
    if (run.state === 'retrying') return this.#retryOp(base, policy, err);
    this.#stats.failed++;
    return { type: 'failed', ...base, error: err };
  }

  #observe(run: TaskActor, op: SettleOp | undefined, error: unknown): void {
    const at = this.#d.clock.now();
    const outcome: RunOutcome = op === undefined ? 'cancelled' : op.type === 'retry' ? 'retrying' : (op.type as RunOutcome);
    let cause: FailureCause | undefined;
    if (outcome !== 'succeeded' && outcome !== 'cancelled') {
      const code = (error as { code?: unknown } | undefined)?.code;
      const hint = op && 'error' in op ? op.error.hint : undefined;
      if (op && op.type === 'retry' && hint === 'delay') return;
      cause = run.reason === 'timeout' ? 'timeout' : code === ErrorCodes.WORKER_CRASHED ? 'crash' : code === ErrorCodes.RESOURCE_LIMIT ? 'out_of_memory' : hint === 'permanent' ? 'permanent' : 'error';
    }
    this.#d.stats!.observe({
      name: run.name,
      at,
      attempt: run.attempt,
      outcome,
      ...(cause ? { cause } : {}),
      durationMs: Math.max(0, at - run.startedAt),
      waitMs: Math.max(0, run.startedAt - run.record.runAt),
      outputLines: run.outputLines,
    });
  }

  #retryOp(base: { id: TaskId; owner: string; attempt: number; at: number }, policy: RetryPolicy | undefined, error: SerializedError): SettleOp {
    const delay = policy ? computeBackoff(policy, base.attempt, this.#d.random) : 0;
    this.#stats.retried++;
    return { type: 'retry', ...base, runAt: base.at + delay, error, reason: `retry in ${delay} ms` };
  }

  #maybeDrained(): void {
    if (!this.#draining || this.#running.size > 0 || this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) this.#ctx.tell(w, { type: 'reply', ok: true, value: true });
  }
}

/** Errors that say "not this task's fault, run it again": a batch-mate's thread ended, the pool's queue was full. */
function isRequeue(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; details?: { requeue?: unknown } };
  return e.details?.requeue === true || e.code === ErrorCodes.POOL_EXHAUSTED;
}
