/**
 * Runs a "command" task: one program as a subprocess, never through a shell. On POSIX it is started by the spawn
 * server (`spawn-client.ts`: a small helper process forks it, so this process pays no fork of its own heap and
 * its event loop does not stall), and read here from its own pipes; with `spawn: 'direct'`, on Windows, or if the
 * server cannot start, it is started here through execa. Both ways give the same guarantees and results.
 *
 * What it guarantees, each one a bug of the system troupe replaces:
 * - Cancel and timeout end the whole process tree (SIGTERM to the process group, SIGKILL after `killGraceMs`),
 *   not just the program started; see `process-group.ts`.
 * - Both pipes are always read, concurrently, as the data arrives: a child that floods stderr never blocks.
 * - Output is decoded as UTF-8 with replacement; bad bytes become U+FFFD and never fail the run.
 * - Trailing output (a last line without `\n`) is delivered before the promise settles.
 * - Output is streamed line by line to `onLine` and not buffered here (`buffer: false`): a command may print a
 *   million lines with bounded memory and is never killed for it. The result only counts the lines, plus how many
 *   a `LineBuffer` with the same `maxLines`/`maxBytes` would have dropped (what a store keeping the task's output
 *   within those caps drops of this run's lines, src/output-caps.ts). `onLines` gets the same lines per pipe
 *   chunk (all the lines one chunk completed, in one call), so a consumer pays its per-call cost once per chunk;
 *   a pending batch is handed over before any progress line that follows it, so the order across both holds.
 * - stdout lines `::progress …` and `::result <json>` are the progress protocol (`progress-protocol.ts`).
 *
 * The mapping onto execa: `killSignal: 'SIGTERM'`, `forceKillAfterDelay` (the grace; on POSIX the group kill
 * takes its place), `cleanup`, `detached` (own process group), `shell: false`, `stdin: 'ignore'`, `buffer: false`,
 * `encoding: 'buffer'`, `reject: false` (the result is mapped here), `nodeOptions: []` (troupe never sets
 * `node: true`; spares execa a filter of `process.execArgv` per run). Cancel and timeout are not execa's: this
 * file ends the tree itself (`subprocess.kill()`, the group kill on POSIX) and records the first termination
 * reason, so a timeout that fires after a cancel still reports the cancel, and the reverse. Why: the cancel can
 * then come from the run's own stop watch (`stops`, what the executor passes) instead of an AbortSignal, which
 * spares a run an AbortController and execa's listeners on it; a timer exists only when a timeout is set.
 *
 * Errors: non-zero exit or death by a signal troupe did not send → `COMMAND_FAILED` with
 * `details: { exitCode, signal, stderrTail }`; spawn failure (ENOENT, EACCES, bad cwd) → `COMMAND_FAILED` with
 * the system error as `cause`; timeout → `TIMEOUT`; cancel → `CANCELLED` with `cause = signal.reason` (or the
 * stop reason of `stops`); a callback
 * (`onLine`, `onProgress`, `onSpawn`) that throws → `INTERNAL` with the thrown error as `cause`, after the tree
 * was ended.
 */
import { statSync } from 'node:fs';
import type { execa as Execa } from 'execa';
import { ErrorCodes, TroupeError } from '../errors.ts';
import { LineSplitter, LineWindow, utf8Length, type OutputLine, type OutputStream } from './line-capture.ts';
import { ProcessGroup, USE_PROCESS_GROUPS } from './process-group.ts';
import { parseProtocolLine, type CommandProgress } from './progress-protocol.ts';
import type { StopWatcher } from '../pool/thread-pool.ts';
import { InvalidSpawnOptions, launchViaServer, type LaunchEvents, type LaunchOutcome } from './spawn-client.ts';
import { UsageSampler, type ProcessUsage } from './process-usage.ts';

/** One command run, with resolved options (the registry validates user input before this point). */
export interface CommandSpec {
  /** The program: a path or a name looked up in PATH. Never run through a shell. */
  command: string;
  /** Arguments, passed as they are (no quoting, no expansion). */
  args: readonly string[];
  /** Working directory. @default process.cwd() */
  cwd?: string;
  /** Variables merged over `process.env`. */
  env?: Readonly<Record<string, string>>;
  /** Ends the run with `TIMEOUT` after this many milliseconds; 0 or undefined means no limit. @default 0 */
  timeoutMs?: number;
  /** Milliseconds between SIGTERM to the process group and SIGKILL. */
  killGraceMs: number;
  /** Aborting it ends the process tree and rejects with `CANCELLED` (`cause` is `signal.reason`). */
  signal?: AbortSignal;
  /**
   * The same as `signal`, from a run's stop watch (a task actor): its first stop ends the process tree and rejects
   * with `CANCELLED` (`cause` is `stopReason`); the hard stop is the group's own SIGKILL after the grace.
   */
  stops?: CommandStops;
  /** Line cap of the task's kept output, used to report `lines.dropped`. */
  maxLines: number;
  /** Byte cap of the task's kept output; also the longest line (longer lines are cut into pieces). */
  maxBytes: number;
  /** Every output line, live, in order per stream (protocol lines excluded). */
  onLine?: (line: OutputLine) => void;
  /**
   * The same lines as `onLine`, one call per pipe chunk: the texts of the lines that chunk completed, oldest first
   * (never empty). Before `onProgress` is called, the lines printed before the progress line are handed over.
   */
  onLines?: (stream: OutputStream, texts: string[]) => void;
  /** Every `::progress` line. */
  onProgress?: (progress: CommandProgress) => void;
  /** Called once with the child's pid as soon as it exists. */
  onSpawn?: (pid: number) => void;
  /**
   * Called once before the run settles (also when it fails), when the child was started: its CPU time and peak
   * resident memory, each undefined when unknown (see process-usage.ts; Linux only). Without it nothing is sampled.
   */
  onUsage?: (cpuMs: number | undefined, peakRssMb: number | undefined) => void;
  /**
   * Who forks the child: `'server'`, the spawn server (POSIX; see `spawn-client.ts`), or `'direct'`, this process
   * through execa. Windows always spawns directly. @default 'server'
   */
  spawn?: 'server' | 'direct';
}

/** A source of stops that is watched rather than listened to (why: no AbortController per run). */
export interface CommandStops {
  /** 0 until the first stop. */
  readonly stopLevel: number;
  readonly stopReason: unknown;
  /** Sets (or, with undefined, clears) the one watcher told of each stop. */
  watchStops(watcher: StopWatcher | undefined): void;
}

/** A run that exited with code 0. */
export interface CommandResult {
  exitCode: 0;
  pid: number;
  durationMs: number;
  /** The last valid `::result <json>` value, if the command printed one. */
  value?: unknown;
  lines: {
    /** Output lines delivered per stream (protocol lines excluded). */
    stdout: number;
    stderr: number;
    /**
     * Lines of this run that a `LineBuffer` with the same caps would have dropped: what a store keeping the task's
     * output within them drops of this run's lines, counted as if they were the task's only lines (so on a first
     * attempt, what it dropped; a retry's lines follow those of the attempts before).
     */
    dropped: number;
  };
}

const TAIL_LINES = 5;
const TAIL_CHARS = 500;
/** How long pipes may stay open after the leader exited and its group was ended (a descendant that left the group). */
const STREAM_DRAIN_MS = 500;

const running = new Set<number>();

/** Pids of the command processes alive now (why: the health check samples their CPU and memory). */
export function activeCommandPids(): number[] {
  return [...running];
}

/** Runs one command to completion (why: the process executor's single entry point into subprocesses). */
export async function runCommand(spec: CommandSpec): Promise<CommandResult> {
  const execa = loadedExeca ?? (await loadExeca());
  const { signal, stops } = spec;
  if (signal?.aborted === true || (stops !== undefined && stops.stopLevel > 0)) {
    throw new TroupeError(ErrorCodes.CANCELLED, `Command \`${spec.command}\` was cancelled before it started`, {
      cause: signal?.aborted === true ? signal.reason : stops!.stopReason,
      details: { exitCode: null, signal: null, stderrTail: '' },
    });
  }
  const started = performance.now();
  const capture = new Capture(spec);
  // The cancel and the timeout are watched from here on: one that comes before the pid is known is kept and
  // carried out as soon as the child exists.
  capture.watch();
  let outcome: LaunchOutcome;
  try {
    outcome = await launch(spec, capture);
  } catch (error) {
    capture.finish();
    if (error instanceof InvalidSpawnOptions) {
      throw new TroupeError(ErrorCodes.INVALID_OPTION, `Command \`${spec.command}\` has invalid options`, { cause: error.cause ?? error });
    }
    throw error;
  }
  capture.finish();
  capture.reportUsage(outcome);

  if (capture.ended === 'cancel') {
    throw new TroupeError(ErrorCodes.CANCELLED, `Command \`${spec.command}\` was cancelled`, {
      cause: capture.cancelCause,
      details: capture.details(outcome),
    });
  }
  if (capture.ended === 'timeout') {
    throw new TroupeError(ErrorCodes.TIMEOUT, `Command \`${spec.command}\` timed out after ${spec.timeoutMs} ms`, {
      details: { ...capture.details(outcome), timeoutMs: spec.timeoutMs },
    });
  }
  if (capture.callbackFailed) {
    throw new TroupeError(ErrorCodes.INTERNAL, `An output callback of command \`${spec.command}\` threw`, {
      cause: capture.callbackError,
      details: capture.details(outcome),
    });
  }
  if (outcome.failed) throw createFailedError(spec.command, outcome, capture.details(outcome), spec.cwd);
  const lines = { stdout: capture.stdoutLines, stderr: capture.stderrLines, dropped: capture.dropped };
  const durationMs = performance.now() - started;
  const pid = capture.pid!;
  return capture.hasValue ? { exitCode: 0, pid, durationMs, value: capture.value, lines } : { exitCode: 0, pid, durationMs, lines };
}

/** Starts the child the spec's way and resolves with how it ended (pipes included). */
async function launch(spec: CommandSpec, capture: Capture): Promise<LaunchOutcome> {
  if (spec.spawn !== 'direct' && USE_PROCESS_GROUPS) {
    const env = spec.env === undefined ? process.env : { ...process.env, ...spec.env };
    const run = await launchViaServer(spec.command, spec.args, spec.cwd ?? process.cwd(), env, capture);
    if (run !== undefined) {
      capture.pipes = run;
      return run.outcome;
    }
  }
  const execa = loadedExeca ?? (await loadExeca());
  let subprocess: Subprocess;
  try {
    subprocess = spawnCommand(execa, spec);
  } catch (error) {
    throw new InvalidSpawnOptions((error as Error).message, (error as NodeJS.ErrnoException).code, { cause: error });
  }
  capture.pipes = new DirectPipes(subprocess);
  // Each pipe chunk is split into lines, and the lines it completed go to `onLines` together. The splitters see
  // the end of the output after the run settled (`finish`): execa settles only once both pipes ended.
  subprocess.stdout?.on('data', (chunk: Uint8Array) => capture.data('stdout', chunk));
  subprocess.stderr?.on('data', (chunk: Uint8Array) => capture.data('stderr', chunk));
  const pid = subprocess.pid;
  if (pid !== undefined) {
    if (USE_PROCESS_GROUPS) {
      // execa's own kills (forceKillAfterDelay, cleanup) reach the group too.
      subprocess.kill = ((signal?: NodeJS.Signals | number | Error) => capture.group!.kill(signal)) as typeof subprocess.kill;
    } else {
      capture.directKill = () => subprocess.kill();
    }
    subprocess.once('exit', () => capture.leaderExited());
    capture.spawned(pid);
  }
  return subprocess as Promise<LaunchOutcome>;
}

/** The pipes of a child spawned here through execa. */
class DirectPipes {
  readonly #subprocess: Subprocess;
  constructor(subprocess: Subprocess) {
    this.#subprocess = subprocess;
  }
  pipesOpen(): boolean {
    const { stdout, stderr } = this.#subprocess;
    return !((stdout === null || stdout.readableEnded) && (stderr === null || stderr.readableEnded));
  }
  cutPipes(): void {
    this.#subprocess.stdout?.destroy();
    this.#subprocess.stderr?.destroy();
  }
}

type Subprocess = ReturnType<typeof spawnCommand>;

/**
 * The output side of one run: line splitting, counting, the stderr tail, the batches for `onLines`, the progress
 * protocol and the callbacks' failure.
 * Why one object with lazy parts: most commands of a busy runtime print little or nothing, and every object a run
 * allocates is paid again right after the fork (the first write to each copy-on-write page faults). A splitter
 * (with its decoder), the line window and the tail exist only once their pipe delivered a chunk; the pipe-drain
 * timer only when a pipe is still open as the leader exits.
 */
class Capture implements StopWatcher, LaunchEvents {
  /** The child's pid, once it exists. */
  pid: number | undefined = undefined;
  /** Its process group (POSIX), once it exists. */
  group: ProcessGroup | undefined = undefined;
  /** Windows: execa's leader-only kill. */
  directKill: (() => void) | undefined = undefined;
  /** The run's pipes, once the launch has them. */
  pipes: { pipesOpen(): boolean; cutPipes(): void } | undefined = undefined;
  /** The first termination reason troupe gave the run, if any. */
  ended: 'cancel' | 'timeout' | undefined = undefined;
  cancelCause: unknown = undefined;
  stdoutLines = 0;
  stderrLines = 0;
  value: unknown = undefined;
  hasValue = false;
  callbackFailed = false;
  callbackError: unknown = undefined;
  readonly #spec: CommandSpec;
  #killPending = false;
  #stdout: LineSplitter | undefined = undefined;
  #stderr: LineSplitter | undefined = undefined;
  #window: LineWindow | undefined = undefined;
  #tail: string[] | undefined = undefined;
  // The lines of the current chunk of each pipe, for `onLines`.
  #stdoutBatch: string[] | undefined = undefined;
  #stderrBatch: string[] | undefined = undefined;
  #drain: NodeJS.Timeout | undefined = undefined;
  #timeout: NodeJS.Timeout | undefined = undefined;
  /** Samples the child's /proc entry while it lives (only with `onUsage`); what it read once the leader exited. */
  #sampler: UsageSampler | undefined = undefined;
  #usage: ProcessUsage | undefined = undefined;

  constructor(spec: CommandSpec) {
    this.#spec = spec;
  }

  /** LaunchEvents: the child exists. A kill asked for before now is carried out. */
  spawned(pid: number): void {
    this.pid = pid;
    running.add(pid);
    if (this.#spec.onUsage !== undefined) this.#sampler = new UsageSampler(pid);
    if (USE_PROCESS_GROUPS) this.group = new ProcessGroup(pid, this.#spec.killGraceMs);
    if (this.#killPending) this.#kill();
    if (this.#spec.onSpawn !== undefined) {
      try {
        this.#spec.onSpawn(pid);
      } catch (error) {
        this.failCallback(error);
      }
    }
  }

  /** Ends the run's process tree: its group on POSIX, the leader on Windows; later, once the pid is known. */
  #kill(): void {
    if (this.group !== undefined) this.group.kill();
    else if (this.directKill !== undefined) this.directKill();
    else this.#killPending = true;
  }

  /** Lines a `LineBuffer` with the run's caps would have dropped. */
  get dropped(): number {
    return this.#window === undefined ? 0 : this.#window.dropped;
  }

  /** Starts watching the run's cancel (signal or stops) and its timeout. */
  watch(): void {
    const { signal, stops, timeoutMs } = this.#spec;
    signal?.addEventListener('abort', this);
    stops?.watchStops(this);
    if (timeoutMs !== undefined && timeoutMs > 0) this.#timeout = setTimeout(() => this.#end('timeout', undefined), timeoutMs);
  }

  /** The signal's `abort` (an EventListener object, so that a run adds no closure). */
  handleEvent(): void {
    this.#end('cancel', this.#spec.signal!.reason);
  }

  /** StopWatcher: the first stop of `stops` cancels; the hard one is the group's SIGKILL after the grace. */
  onStop(_token: unknown, hard: boolean): void {
    if (!hard) this.#end('cancel', this.#spec.stops!.stopReason);
  }

  #end(reason: 'cancel' | 'timeout', cause: unknown): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.cancelCause = cause;
    this.#kill();
  }

  /** LaunchEvents: one chunk of a pipe; its lines are delivered, then handed to `onLines` together. */
  data(stream: OutputStream, chunk: Uint8Array): void {
    if (stream === 'stdout') (this.#stdout ??= new LineSplitter(this.#spec.maxBytes, (text, bytes) => this.#stdoutLine(text, bytes))).write(chunk);
    else (this.#stderr ??= new LineSplitter(this.#spec.maxBytes, (text, bytes) => this.#deliver('stderr', text, bytes))).write(chunk);
    this.#flush(stream);
  }

  /**
   * LaunchEvents: the leader was reaped. Its group is ended if members are left, and pipes still open then (a
   * descendant that left the group holds them) get a deadline.
   */
  leaderExited(): void {
    if (this.pid !== undefined) running.delete(this.pid);
    this.#stopSampling();
    this.group?.leaderExited();
    const pipes = this.pipes;
    if (pipes === undefined || !pipes.pipesOpen()) return;
    this.#drain = setTimeout(() => pipes.cutPipes(), this.#spec.killGraceMs + STREAM_DRAIN_MS);
    this.#drain.unref();
  }

  /** The run settled: the trailing lines (without `\n`) are delivered and the last batches handed over. */
  finish(): void {
    this.#stopSampling();
    if (this.#drain !== undefined) clearTimeout(this.#drain);
    if (this.#timeout !== undefined) clearTimeout(this.#timeout);
    this.#spec.signal?.removeEventListener('abort', this);
    this.#spec.stops?.watchStops(undefined);
    if (this.#stdout !== undefined) {
      this.#stdout.end();
      this.#flush('stdout');
    }
    if (this.#stderr !== undefined) {
      this.#stderr.end();
      this.#flush('stderr');
    }
  }

  #stopSampling(): void {
    if (this.#sampler === undefined) return;
    this.#usage = this.#sampler.stop();
    this.#sampler = undefined;
  }

  /**
   * Tells `onUsage` what the child used: the reaper's exact CPU figure when it sent one (spawn server), else the
   * last sample's; the peak resident memory of the last sample. Nothing for a child that was never started.
   */
  reportUsage(outcome: LaunchOutcome): void {
    const { onUsage } = this.#spec;
    if (onUsage === undefined || this.pid === undefined) return;
    const cpuMs = outcome.cpuMs ?? this.#usage?.cpuMs;
    try {
      onUsage(cpuMs, this.#usage?.peakRssMb);
    } catch {
      // A failing usage hook costs the advisor a figure, never the run its result.
    }
  }

  /** Kills the run (the group, on POSIX) once, keeping the first error of a callback. */
  failCallback(error: unknown): void {
    if (this.callbackFailed) return;
    this.callbackFailed = true;
    this.callbackError = error;
    this.#kill();
  }

  /** The `details` of a run's error. */
  details(result: { exitCode?: number | undefined; signal?: string | undefined }) {
    return { exitCode: result.exitCode ?? null, signal: result.signal ?? null, stderrTail: this.#tail === undefined ? '' : joinTail(this.#tail) };
  }

  #stdoutLine(text: string, bytes: number): void {
    const message = parseProtocolLine(text);
    if (message === undefined) this.#deliver('stdout', text, bytes);
    else if (message.type === 'result') {
      this.value = message.value;
      this.hasValue = true;
    } else if (this.#spec.onProgress !== undefined && !this.callbackFailed) {
      this.#flush('stdout');
      try {
        this.#spec.onProgress(message.progress);
      } catch (error) {
        this.failCallback(error);
      }
    }
  }

  /** `bytes`: the line's UTF-8 size when the splitter knew it, else -1. */
  #deliver(stream: OutputStream, text: string, bytes: number): void {
    if (stream === 'stdout') this.stdoutLines++;
    else {
      this.stderrLines++;
      const tail = (this.#tail ??= []);
      if (tail.length === TAIL_LINES) tail.shift();
      tail.push(text.length > TAIL_CHARS ? text.slice(-TAIL_CHARS) : text);
    }
    (this.#window ??= new LineWindow({ maxLines: this.#spec.maxLines, maxBytes: this.#spec.maxBytes })).push(bytes >= 0 ? bytes : utf8Length(text));
    if (this.callbackFailed) return;
    const { onLine, onLines } = this.#spec;
    if (onLines !== undefined) {
      if (stream === 'stdout') (this.#stdoutBatch ??= []).push(text);
      else (this.#stderrBatch ??= []).push(text);
    }
    if (onLine === undefined) return;
    try {
      onLine({ stream, text });
    } catch (error) {
      this.failCallback(error);
    }
  }

  #flush(stream: OutputStream): void {
    const texts = stream === 'stdout' ? this.#stdoutBatch : this.#stderrBatch;
    if (texts === undefined || texts.length === 0) return;
    if (stream === 'stdout') this.#stdoutBatch = undefined;
    else this.#stderrBatch = undefined;
    if (this.#spec.onLines === undefined || this.callbackFailed) return;
    try {
      this.#spec.onLines(stream, texts);
    } catch (error) {
      this.failCallback(error);
    }
  }
}

/** `nodeOptions` for execa: troupe never sets `node: true`, so execa need not filter `process.execArgv` per run. */
const NO_NODE_OPTIONS: string[] = [];

let loadedExeca: typeof Execa | undefined;

/** execa is loaded by the first command: a runtime that runs none never loads it (≈16 MB of RSS in a fresh Node 20). */
async function loadExeca(): Promise<typeof Execa> {
  return (loadedExeca ??= (await import('execa')).execa);
}

function spawnCommand(execa: typeof Execa, spec: CommandSpec) {
  return execa(spec.command, spec.args, {
    cwd: spec.cwd,
    // execa copies `process.env` into a plain object (≈0.1 ms: every variable goes through its getter); spawn then
    // reads that copy quickly. Passing no env would only move the same reads into spawn.
    env: spec.env,
    extendEnv: true,
    nodeOptions: NO_NODE_OPTIONS,
    shell: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    encoding: 'buffer',
    reject: false,
    detached: USE_PROCESS_GROUPS,
    cleanup: true,
    killSignal: 'SIGTERM',
    forceKillAfterDelay: spec.killGraceMs,
    windowsHide: true,
  });
}

function createFailedError(
  command: string,
  result: LaunchOutcome,
  details: { exitCode: number | null; signal: string | null; stderrTail: string },
  cwd?: string,
): TroupeError {
  if (result.lost !== undefined) {
    return new TroupeError(ErrorCodes.COMMAND_FAILED, `Command \`${command}\` was lost: ${result.lost}; its process group was ended`, {
      details: { ...details, lost: result.lost },
    });
  }
  if (result.exitCode === undefined && result.signal === undefined) {
    // exec() says ENOENT for a missing working directory too: name the one that is missing.
    const where = (result.code === 'ENOENT' || result.code === 'ENOTDIR') && cwd !== undefined && !isDirectory(cwd) ? `: its working directory ${cwd} does not exist` : '';
    return new TroupeError(
      ErrorCodes.COMMAND_FAILED,
      `Command \`${command}\` could not be started${result.code ? ` (${result.code})` : ''}${where}`,
      { cause: result.cause ?? result, details: { ...details, code: result.code ?? null } },
    );
  }
  const how = result.signal === undefined ? `exited with code ${result.exitCode}` : `was killed by ${result.signal}`;
  const last = details.stderrTail.slice(details.stderrTail.lastIndexOf('\n') + 1).slice(0, 200);
  return new TroupeError(ErrorCodes.COMMAND_FAILED, `Command \`${command}\` ${how}${last ? `: ${last}` : ''}`, {
    details,
  });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function joinTail(tail: readonly string[]): string {
  const text = tail.join('\n');
  return text.length > TAIL_CHARS ? text.slice(-TAIL_CHARS) : text;
}
