/**
 * One task actor per run: it holds the run's lifecycle state (moved only through the task machine's table),
 * owns the run's stop signals and its timers, and records the first reason the run was ended
 * (`timeout`, `cancel` or `shutdown`) — later reasons never overwrite it.
 *
 * Ending a run is two-step: the soft stop comes first (ctx.signal in a handler, SIGTERM for a command); if the
 * code is still running after `killGraceMs`, the hard stop ends the thread (the subprocess layer does its own
 * SIGKILL after the same grace).
 *
 * The two AbortControllers are made only when someone reads `signal` / `hardSignal` (an inline task, a test): a
 * run on the thread pool and a command are watched through `watchStops` instead, so the common run that is never
 * stopped costs no AbortController (two of them were ≈3 µs of main-thread time per run, plus their garbage).
 */
import type { Clock, TimerHandle } from '../../src/clock.ts';
import { ErrorCodes, TroupeError } from '../../src/errors.ts';
import type { TaskId } from '../../src/ids.ts';
import type { FlowChild, Progress, TaskRecord, TaskState } from '../../src/task.ts';
import type { CallbackJob, JobStops, StopWatcher } from '../../src/pool/thread-pool.ts';
import type { ResolvedTask } from '../../src/registry.ts';
import type { RunSpan } from '../../src/telemetry.ts';
import { nextTaskState, type TaskEvent } from './task-machine.ts';

/** Why a run ends early. `paused`: only a run still waiting for its slot (the executor's #hold), never started. */
export type EndReason = 'timeout' | 'cancel' | 'shutdown' | 'paused';

/**
 * Where a run given to the thread pool as its own job (`asJob`) reports: one object for every run, so a run
 * costs no closures and no job object of its own.
 */
export interface RunSink {
  runDone(run: TaskActor, ok: boolean, value: unknown): void;
  runProgress(run: TaskActor, progress: Progress): void;
  runLog(run: TaskActor, text: string): void;
}

export class TaskActor implements JobStops, CallbackJob {
  /** The run's OpenTelemetry span, when tracing is on. */
  span: RunSpan | undefined;
  /** Lines this run produced (stdout, stderr, ctx.log), for the advisor's statistics. */
  outputLines = 0;
  /** CPU time of the run, when it was measured (RunObservation.cpuMs says what it is per kind). */
  cpuMs: number | undefined = undefined;
  /** Its peak memory in MiB, when it was measured (RunObservation.peakRssMb says what it is per kind). */
  peakRssMb: number | undefined = undefined;
  /** performance.now() at start, for adaptive concurrency (sub-millisecond durations). */
  t0 = 0;
  /** Its index in the executor's RunTable (−1 when not in one). */
  listIndex = -1;
  readonly id: TaskId;
  readonly name: string;
  readonly attempt: number;
  readonly startedAt: number;
  readonly record: TaskRecord;
  /** The task's definition when it started (set by the executor). */
  def: ResolvedTask | undefined;
  /** As a thread-pool job (`asJob`): the handler module's href and the input. */
  handler = '';
  input: unknown;
  #sink: RunSink | undefined;
  #controller: AbortController | undefined;
  #hard: AbortController | undefined;
  /** 0 = not stopped, 1 = soft stop, 2 = hard stop (see JobStops). */
  #level: 0 | 1 | 2 = 0;
  #stopReason: unknown;
  #watcher: StopWatcher | undefined;
  #token: unknown;
  readonly #clock: Clock;
  #state: TaskState = 'queued';
  #reason: EndReason | undefined;
  #timeout: TimerHandle | undefined;
  #timeoutMs = 0;
  #grace: TimerHandle | undefined;
  #killGraceMs: number;

  constructor(record: TaskRecord, clock: Clock, killGraceMs: number) {
    this.record = record;
    this.id = record.id;
    this.name = record.name;
    this.attempt = record.attempts;
    this.startedAt = record.startedAt ?? clock.now();
    this.#clock = clock;
    this.#killGraceMs = killGraceMs;
    this.send({ type: 'start' });
  }

  get state(): TaskState {
    return this.#state;
  }

  /** The first reason this run was ended, if it was. */
  get reason(): EndReason | undefined {
    return this.#reason;
  }

  /** Soft signal: passed to running code as ctx.signal / execa's cancelSignal. */
  get signal(): AbortSignal {
    this.#controller ??= controllerFor(this.#level >= 1, this.#stopReason);
    return this.#controller.signal;
  }

  /** Hard signal: ends the worker thread when the code ignored the soft one. */
  get hardSignal(): AbortSignal {
    this.#hard ??= controllerFor(this.#level >= 2, this.#stopReason);
    return this.#hard.signal;
  }

  get stopLevel(): 0 | 1 | 2 {
    return this.#level;
  }

  get stopReason(): unknown {
    return this.#stopReason;
  }

  watchStops(watcher: StopWatcher | undefined, token?: unknown): void {
    this.#watcher = watcher;
    this.#token = token;
  }

  /** The run as its own thread-pool job: the pool reads its fields and stops, and reports to `sink`. */
  asJob(handler: string, input: unknown, sink: RunSink): this {
    this.handler = handler;
    this.input = input;
    this.#sink = sink;
    return this;
  }

  /** CallbackJob: a flow parent's children (`ctx.children` in the worker). */
  get children(): readonly FlowChild[] | undefined {
    return this.record.children;
  }

  /** CallbackJob: the run watches its own stops. */
  get stops(): JobStops {
    return this;
  }

  /** CallbackJob: the pool's outcome. */
  done(ok: boolean, value: unknown): void {
    this.#sink!.runDone(this, ok, value);
  }

  /** CallbackJob: progress from the handler. */
  onProgress(progress: Progress): void {
    this.#sink?.runProgress(this, progress);
  }

  /** CallbackJob: `ctx.log` from the handler. */
  onLog(text: string): void {
    this.#sink?.runLog(this, text);
  }

  /** CallbackJob: what the handler's call used (also told by a command run); undefined leaves a figure unknown. */
  onUsage(cpuMs: number | undefined, memoryMb: number | undefined): void {
    this.cpuMs = cpuMs;
    this.peakRssMb = memoryMb;
  }

  /** Applies a lifecycle event through the machine's table; false when the machine does not allow it. */
  send(event: TaskEvent): boolean {
    const next = nextTaskState(this.#state, event);
    if (next === undefined) return false;
    this.#state = next;
    return true;
  }

  /**
   * Arms the run's timeout (0 = none). It bounds the run's own work, not a handler run's wait for a worker thread
   * (more handler runs are dispatched than there are threads; those behind long jobs wait in the pool's queue): a
   * run its pool has not started (StopWatcher.started) when first looked at, START_PROBE_MS in, is looked at again
   * every START_PROBE_MS, and gets the full timeout from when a thread took it. A run started by then keeps its
   * timeout from dispatch, as any other run.
   */
  armTimeout(ms: number): void {
    if (ms <= 0) return;
    this.#timeoutMs = ms;
    const first = Math.min(ms, START_PROBE_MS);
    this.#timeout = this.#clock.setTimeout(() => this.#probeStart(first, false), first);
  }

  #probeStart(elapsed: number, waited: boolean): void {
    const watcher = this.#watcher;
    if (watcher?.started !== undefined && !watcher.started(this.#token)) {
      this.#timeout = this.#clock.setTimeout(() => this.#probeStart(0, true), START_PROBE_MS);
      return;
    }
    const left = waited ? this.#timeoutMs : this.#timeoutMs - elapsed;
    if (left <= 0) this.end('timeout');
    else this.#timeout = this.#clock.setTimeout(() => this.end('timeout'), left);
  }

  /** Ends the run for `reason`: aborts the soft signal now and the hard one after the grace. First reason wins. */
  end(reason: EndReason): void {
    this.#reason ??= reason;
    if (this.#level > 0) return;
    const code = this.#reason === 'timeout' ? ErrorCodes.TIMEOUT : this.#reason === 'cancel' ? ErrorCodes.CANCELLED : ErrorCodes.CLOSED;
    const message =
      this.#reason === 'timeout' ? `Task \`${this.name}\` (${this.id}) timed out` :
      this.#reason === 'cancel' ? `Task \`${this.name}\` (${this.id}) was cancelled` :
      this.#reason === 'paused' ? `Task \`${this.name}\` (${this.id}) was given back: its name or group was paused` :
      `Task \`${this.name}\` (${this.id}) was stopped by shutdown`;
    // The grace timer first: the stop may end the run (and dispose it) before #stop returns.
    this.#grace = this.#clock.setTimeout(() => this.#stop(2, this.#stopReason), this.#killGraceMs);
    this.#stop(1, new TroupeError(code, message));
  }

  /** Moves to stop `level`: the signals read so far abort, the pool's watcher (if any) is told. */
  #stop(level: 1 | 2, reason: unknown): void {
    this.#level = level;
    this.#stopReason = reason;
    (level === 1 ? this.#controller : this.#hard)?.abort(reason);
    this.#watcher?.onStop(this.#token, level === 2);
  }

  /** Clears the run's timers. */
  dispose(): void {
    this.#clock.clearTimeout(this.#timeout);
    this.#clock.clearTimeout(this.#grace);
  }
}

/** How soon after dispatch, and then how often while it waits, a run with a timeout looks whether a thread took it. */
const START_PROBE_MS = 25;

/** A controller for a signal read late: already aborted with `reason` when the stop it stands for came. */
function controllerFor(aborted: boolean, reason: unknown): AbortController {
  const controller = new AbortController();
  if (aborted) controller.abort(reason);
  return controller;
}
