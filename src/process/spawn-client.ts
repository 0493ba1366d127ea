/**
 * The client of the spawn server (`spawn-server.mjs`): command tasks are started by a small, long-lived helper
 * process instead of the process that embeds troupe.
 *
 * Why: libuv's spawn forks the calling process and waits for the child's exec on the main thread. The fork copies
 * the caller's page tables, so its cost grows with the caller's memory: here, `spawnSync('true')` took 5.7 ms from
 * a bare `node` and 20.3 ms after allocating 400 MB, and execa spent about 9 ms of the main thread per call, most of
 * it in `ChildProcess.spawn` (bench/fork-cost.ts measures it). A service with a large heap that runs many commands
 * would stall its event loop for every one. The spawn server is a bare `node` of a few tens of MB that forks
 * cheaply, off this thread.
 *
 * Nothing else changes for a run: the server hands over the child's stdout and stderr pipes themselves (a file
 * descriptor passed over Node's IPC channel), so output is read here, straight from the pipes, as with a direct
 * spawn; the child leads its own process group, which this process signals directly (cancel, timeout, grace,
 * leftovers, the exit hook: `process-group.ts`). The server reports the pid at once and the exit status when it
 * reaped the child.
 *
 * Failure handling:
 * - The server is started on the first command (or by `warmSpawnServer`, which the runtime calls at start when a
 *   command task is registered) and a run waits for it to be ready. If it cannot start, this process falls back
 *   to spawning directly (execa) from then on, and `spawnServerInfo()` says why.
 * - If the server dies, the runs it had started are ended (their groups SIGKILLed, since no exit status can come)
 *   and fail with `COMMAND_FAILED`; the next command starts a new server.
 * - If this process dies, even by SIGKILL, the server sees its channel close, SIGKILLs every group it started
 *   that may still have members, and exits.
 *
 * The server runs in a session of its own (so a terminal's Ctrl-C, meant for the host, does not reach it), with
 * the host's environment minus `NODE_OPTIONS` (a loader or an inspector port is the host's, not the server's),
 * and never holds the host's event loop open unless a run is in flight.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { OutputStream } from './line-capture.ts';

const SERVER_FILE = fileURLToPath(new URL('./spawn-server.mjs', import.meta.url));
/** How long the server may take to report ready before this process gives up on it and spawns directly. */
const READY_TIMEOUT_MS = 10_000;

/** How a command run ended, as far as starting and reaping it goes (the shape of execa's result fields used). */
export interface LaunchOutcome {
  failed: boolean;
  exitCode?: number;
  signal?: string;
  /** A system error code when the program could not be started (ENOENT, EACCES…). */
  code?: string;
  cause?: unknown;
  /** Set when the run was lost with the spawn server: its exit status will never be known. */
  lost?: string;
  /** CPU time of the child and the descendants it waited for, from its reaper (spawn-server.mjs), when known. */
  cpuMs?: number;
}

/** What a started run tells its owner. */
export interface LaunchEvents {
  /** The child exists; called once, before any output. */
  spawned(pid: number): void;
  /** A chunk of one pipe. */
  data(stream: OutputStream, chunk: Uint8Array): void;
  /** The leader was reaped (pipes may still be open: a descendant can hold them). */
  leaderExited(): void;
}

/** One command started through the server. */
export interface ServerLaunch {
  /** Settles once the leader was reaped and both pipes ended (or were cut), or the start failed. */
  readonly outcome: Promise<LaunchOutcome>;
  /** Whether a pipe is still open. */
  pipesOpen(): boolean;
  /** Destroys the pipes still open (a leftover that left the group must not hold the run). */
  cutPipes(): void;
}

/** The state of this process's spawn server, for `describe()` and health output. */
export interface SpawnServerInfo {
  state: 'idle' | 'starting' | 'ready' | 'failed';
  pid?: number;
  /** Why the server could not start (commands then spawn directly). */
  error?: string;
  /** Runs in flight through it. */
  running: number;
}

/** The error of a run whose options `spawn` itself rejected (bad cwd type, a NUL byte in an argument…). */
export class InvalidSpawnOptions extends Error {
  readonly code: string | undefined;
  /** `cause`: the error `spawn` threw, when it was thrown in this process (the direct path). */
  constructor(message: string, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

interface ServerMessage {
  t: 'ready' | 'stdout' | 'stderr' | 'exit' | 'error' | 'invalid';
  id?: number;
  pid?: number;
  code?: number | null;
  signal?: string | null;
  cpu?: number;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
}

/** One run through the server, from the request to its outcome. */
class ServerRun implements ServerLaunch {
  readonly outcome: Promise<LaunchOutcome>;
  readonly #events: LaunchEvents;
  #resolve!: (outcome: LaunchOutcome) => void;
  #reject!: (error: unknown) => void;
  #stdout: Socket | undefined = undefined;
  #stderr: Socket | undefined = undefined;
  #open = 0;
  #exit: LaunchOutcome | undefined = undefined;
  #settled = false;

  constructor(events: LaunchEvents) {
    this.#events = events;
    this.outcome = new Promise<LaunchOutcome>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  pipesOpen(): boolean {
    return this.#open > 0;
  }

  cutPipes(): void {
    this.#stdout?.destroy();
    this.#stderr?.destroy();
  }

  /** Handles one server message for this run. */
  receive(message: ServerMessage, handle: unknown): void {
    switch (message.t) {
      case 'stdout':
        this.#events.spawned(message.pid!);
        this.#stdout = this.#pipe('stdout', handle);
        return;
      case 'stderr':
        this.#stderr = this.#pipe('stderr', handle);
        return;
      case 'exit':
        this.#exit = exitOutcome(message.code ?? null, message.signal ?? null);
        if (message.cpu !== undefined) this.#exit.cpuMs = message.cpu;
        this.#events.leaderExited();
        this.#maybeSettle();
        return;
      case 'error': {
        const e = message.error!;
        const cause = Object.assign(new Error(e.message), { code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });
        this.#finish({ failed: true, ...(e.code === undefined ? {} : { code: e.code }), cause });
        return;
      }
      case 'invalid':
        this.#settled = true;
        this.#reject(new InvalidSpawnOptions(message.error!.message, message.error!.code));
        return;
    }
  }

  /** The server died: the run can have no exit status; its group is ended by the caller's kill. */
  lose(reason: string): void {
    if (this.#settled) return;
    this.#exit = { failed: true, lost: reason };
    this.cutPipes();
    this.#events.leaderExited();
    this.#maybeSettle(true);
  }

  #pipe(stream: OutputStream, handle: unknown): Socket | undefined {
    if (handle === undefined) return undefined;
    const socket = handle as Socket;
    this.#open++;
    socket.on('data', (chunk: Uint8Array) => this.#events.data(stream, chunk));
    // An error on the pipe ends it as its end would (the `close` that follows counts it); it must not end the host.
    socket.on('error', noop);
    socket.once('close', () => {
      this.#open--;
      this.#maybeSettle();
    });
    return socket;
  }

  #maybeSettle(force = false): void {
    if (this.#exit !== undefined && (this.#open === 0 || force)) this.#finish(this.#exit);
  }

  #finish(outcome: LaunchOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(outcome);
  }
}

function noop(): void {}

function exitOutcome(code: number | null, signal: string | null): LaunchOutcome {
  if (signal !== null) return { failed: true, signal };
  if (code === null) return { failed: true };
  return { failed: code !== 0, exitCode: code };
}

/**
 * The environment the server runs in: the host's, without its Node options; under Electron, `execPath` runs as Node.
 * (A command gets the environment sent with it, never this one.)
 */
function serverEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  if (process.versions.electron !== undefined) env.ELECTRON_RUN_AS_NODE = '1';
  return env;
}

/** The spawn server of this process (one, shared by every runtime in it). */
class SpawnServer {
  #child: ChildProcess | undefined = undefined;
  #ready: Promise<boolean> | undefined = undefined;
  #state: SpawnServerInfo['state'] = 'idle';
  #error: string | undefined = undefined;
  readonly #runs = new Map<number, ServerRun>();
  #nextId = 1;
  /** The server program (a test points it at one that fails). */
  file = SERVER_FILE;

  info(): SpawnServerInfo {
    return {
      state: this.#state,
      ...(this.#child?.pid !== undefined && this.#state !== 'failed' ? { pid: this.#child.pid } : {}),
      ...(this.#error === undefined ? {} : { error: this.#error }),
      running: this.#runs.size,
    };
  }

  /**
   * Starts the server unless it runs; resolves true once it is ready, false if it cannot start. While it starts it
   * holds the event loop open (a start-up that fails must still be seen).
   */
  start(): Promise<boolean> {
    if (this.#state === 'failed') return Promise.resolve(false);
    return (this.#ready ??= this.#spawn());
  }

  /** Sends one run to the (ready) server. */
  launch(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, events: LaunchEvents): ServerRun {
    const child = this.#child!;
    const run = new ServerRun(events);
    const id = this.#nextId++;
    this.#runs.set(id, run);
    if (this.#runs.size === 1) {
      child.ref();
      child.channel?.ref();
    }
    run.outcome.then(
      () => this.#done(id),
      () => this.#done(id),
    );
    child.send({ t: 'spawn', id, command, args, cwd, env });
    return run;
  }

  #done(id: number): void {
    this.#runs.delete(id);
    if (this.#runs.size === 0) {
      this.#child?.unref();
      this.#child?.channel?.unref();
    }
  }

  #spawn(): Promise<boolean> {
    this.#state = 'starting';
    return new Promise<boolean>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(process.execPath, [this.file], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true, env: serverEnv() });
      } catch (error) {
        this.#fail(String(error));
        resolve(false);
        return;
      }
      this.#child = child;
      const timer = setTimeout(() => {
        this.#fail(`it did not report ready within ${READY_TIMEOUT_MS} ms`);
        child.kill('SIGKILL');
        resolve(false);
      }, READY_TIMEOUT_MS);
      timer.unref();
      child.on('message', (message: ServerMessage, handle: unknown) => {
        if (message.t === 'ready') {
          clearTimeout(timer);
          this.#state = 'ready';
          // From now on only runs in flight hold this process's event loop open.
          if (this.#runs.size === 0) {
            child.unref();
            child.channel?.unref();
          }
          resolve(true);
          return;
        }
        this.#runs.get(message.id!)?.receive(message, handle);
        // A child's pipe must come with its message; one that does not means this runtime cannot pass descriptors.
        if ((message.t === 'stdout' || message.t === 'stderr') && handle === undefined) this.#broken(child, 'handed over a child without its pipe');
      });
      // A send on a channel that is closing also lands here; the exit that follows settles the runs.
      child.on('error', (error) => {
        clearTimeout(timer);
        // Events of a server this process already let go of (a reset) change nothing.
        if (this.#child !== child) return;
        if (this.#state === 'starting') {
          this.#fail(error.message);
          resolve(false);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.#child !== child) return;
        const how = signal === null ? `exited with code ${code}` : `was killed by ${signal}`;
        if (this.#state === 'starting') {
          this.#fail(`it ${how} before it was ready`);
          resolve(false);
          return;
        }
        this.#lost(`the spawn server (pid ${child.pid}) ${how}`);
      });
    });
  }

  /** The server died after it was ready: its runs are lost, and the next command starts a new one. */
  #lost(reason: string): void {
    this.#child = undefined;
    this.#ready = undefined;
    this.#state = 'idle';
    const runs = [...this.#runs.values()];
    this.#runs.clear();
    for (const run of runs) run.lose(reason);
  }

  /**
   * The server cannot be used (it handed over a child without its pipe: the output would be lost). Its runs are
   * lost (their groups ended), its channel is closed (the server then SIGKILLs what it started and exits), and this
   * process spawns directly from then on.
   */
  #broken(child: ChildProcess, what: string): void {
    if (this.#child !== child) return;
    this.#fail(`it ${what}`);
    const runs = [...this.#runs.values()];
    this.#runs.clear();
    for (const run of runs) run.lose(`the spawn server (pid ${child.pid}) ${what}`);
    child.disconnect();
  }

  #fail(reason: string): void {
    this.#state = 'failed';
    this.#error = reason;
    this.#child = undefined;
  }

  /** Test hook: forgets the server (it must have no runs) and starts the next one from `file`. */
  resetForTest(file: string): void {
    this.#child?.kill('SIGKILL');
    this.#child = undefined;
    this.#ready = undefined;
    this.#state = 'idle';
    this.#error = undefined;
    this.file = file;
  }

  /** Test hook: ends the server as a crash would (SIGKILL). */
  killForTest(): number | undefined {
    const pid = this.#child?.pid;
    this.#child?.kill('SIGKILL');
    return pid;
  }
}

const server = new SpawnServer();

/** Resolves true once this process's spawn server is ready (starting it if needed), false if it cannot start. */
export function warmSpawnServer(): Promise<boolean> {
  return server.start();
}

/** The spawn server's state. */
export function spawnServerInfo(): SpawnServerInfo {
  return server.info();
}

/**
 * Starts one command through the spawn server, waiting for the server first if it is starting.
 * Resolves undefined if the server cannot run (the caller spawns directly).
 */
export async function launchViaServer(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  events: LaunchEvents,
): Promise<ServerLaunch | undefined> {
  if (!(await server.start())) return undefined;
  return server.launch(command, args, cwd, env, events);
}

/** @internal Ends the spawn server as a crash would; returns its pid. */
export function killSpawnServerForTest(): number | undefined {
  return server.killForTest();
}

/** @internal Forgets this process's spawn server; the next one starts from `file` (the real one by default). */
export function resetSpawnServerForTest(file = SERVER_FILE): void {
  server.resetForTest(file);
}
