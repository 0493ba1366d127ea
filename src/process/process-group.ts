/**
 * Ending a command's whole process tree, not just the program troupe started.
 *
 * On POSIX a command is spawned `detached`, which makes it the leader of a new process group whose id is its pid.
 * Everything it starts (a shell's children, a Python pool's workers) inherits that group unless it asks for a new
 * one, so `process.kill(-pid, signal)` reaches the whole tree in one system call, including children that
 * outlived their parent and were re-parented to init. This file owns that group:
 *
 * - `kill(signal)` replaces execa's `subprocess.kill`, so every `subprocess.kill()` (run-command's cancel and
 *   timeout, execa's own kills) signals the group instead of the leader alone. After the terminating signal
 *   a SIGKILL to the group follows `graceMs` later, unless the group is already gone. (execa's own
 *   `forceKillAfterDelay` cannot do this: it signals only the leader, and it is disarmed when the leader exits.)
 * - `leaderExited()` runs when the leader is reaped. Descendants still alive then are leftovers of a finished run:
 *   they get SIGTERM and, after the grace, SIGKILL. A run never leaks processes, and never waits forever on a pipe
 *   that a leftover holds open (the `KillMode=control-group` rule of service managers).
 * - An exit hook SIGKILLs every group still tracked when the host process exits, which is execa's `cleanup` option
 *   (inactive for detached children) made to reach the group. Like execa's, it is signal-exit's `onExit`: it also
 *   runs when a signal ends the host (SIGTERM, SIGINT, SIGHUP… with no listener of the host's own, a default death
 *   that emits no `exit` event), and then lets the signal end the host as it would have. A host that listens for
 *   the signal itself (a graceful shutdown) keeps it: the groups are ended only when the host then exits.
 *
 * Limits: a descendant that calls `setsid()`/`setpgid()` itself leaves the group and is out of reach (run-command
 * bounds how long it may hold the pipes). A SIGKILL of the host itself runs no hook at all. Windows has no process
 * groups; there execa's leader-only kill and `forceKillAfterDelay` apply.
 */
import { onExit } from 'signal-exit';

/** Whether commands run in their own process group (POSIX) or under execa's leader-only kill (Windows). */
export const USE_PROCESS_GROUPS = process.platform !== 'win32';

/** Groups that may still have members; the exit hook ends them. */
const tracked = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onExit(
    () => {
      for (const pid of tracked) signalGroup(pid, 'SIGKILL');
    },
    { alwaysLast: true },
  );
}

/** Sends `signal` to the group led by `pid`, or to `pid` alone if it left its group; false if nothing was there. */
export function signalGroup(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * True while any process of the group led by `pid` exists (why: decides whether leftovers must be ended).
 * Every run asks once, after its leader exited, and the usual answer is "gone", which `process.kill` reports by
 * throwing: the error is built without a stack trace (capturing one walked the whole async stack, ≈10 µs a run,
 * and the answer needs only the error's code).
 */
export function groupExists(pid: number): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The process group of one running command. */
export class ProcessGroup {
  readonly pid: number;
  readonly #graceMs: number;
  #forceKill: NodeJS.Timeout | undefined;
  #done = false;

  constructor(pid: number, graceMs: number) {
    this.pid = pid;
    this.#graceMs = graceMs;
    installExitHook();
    tracked.add(pid);
  }

  /**
   * Signals the whole group; a terminating signal arms the SIGKILL that follows after the grace.
   * Shaped like `subprocess.kill` so that it can replace it (as a closure over the group).
   */
  kill(signal?: NodeJS.Signals | number | Error): boolean {
    const sig = typeof signal === 'string' || typeof signal === 'number' ? signal : 'SIGTERM';
    if (this.#done) return false;
    const sent = signalGroup(this.pid, sig);
    if (sig === 'SIGKILL' || sig === 9) this.#finish();
    else if (sent) this.#armForceKill();
    return sent;
  }

  /** Called once the leader was reaped: forget an empty group, or end the leftovers it left behind. */
  leaderExited(): void {
    if (this.#done) return;
    if (!groupExists(this.pid)) {
      this.#finish();
      return;
    }
    if (this.#forceKill === undefined) {
      signalGroup(this.pid, 'SIGTERM');
      this.#armForceKill();
    }
  }

  #armForceKill(): void {
    if (this.#forceKill !== undefined) return;
    this.#forceKill = setTimeout(() => {
      this.#forceKill = undefined;
      signalGroup(this.pid, 'SIGKILL');
      this.#finish();
    }, this.#graceMs);
    // The exit hook covers an exiting host, so the timer need not hold the event loop open.
    this.#forceKill.unref();
  }

  #finish(): void {
    this.#done = true;
    if (this.#forceKill !== undefined) clearTimeout(this.#forceKill);
    this.#forceKill = undefined;
    tracked.delete(this.pid);
  }
}
