// The spawn server: a small, long-lived Node process that starts command tasks for the runtime that started it
// (as Python's forkserver does). Plain JavaScript, loaded by a bare `node`, so that it starts in tens of
// milliseconds and stays small: a fork copies the page tables of the process that forks, and the event loop of that
// process waits for the child's exec. Forking from here costs the same few milliseconds whatever the size of the
// service that embeds troupe, and its event loop does not stall meanwhile. The client is `spawn-client.ts`.
//
// Protocol: Node's IPC channel, JSON messages.
// - client → server: `{ t: 'spawn', id, command, args, cwd, env }`.
// - server → client:
//   - `{ t: 'ready' }` once, at start;
//   - `{ t: 'stdout', id, pid }` with the child's stdout pipe as the message's handle, then
//     `{ t: 'stderr', id }` with its stderr pipe (Node sends one handle per message);
//   - `{ t: 'exit', id, code, signal, cpu? }` once the child was reaped; `cpu`: its CPU time in ms (see below);
//   - `{ t: 'error', id, error: { message, code, errno, syscall, path } }` when it could not be started;
//   - `{ t: 'invalid', id, error: { message, code } }` when `spawn` rejected the options themselves.
//   Node keeps the order of one sender's messages, the ones with handles included.
//
// The pipes are created here and handed over unread: the server never sees a byte of output. Each pipe stops
// reading in the same turn as the spawn (a socket starts reading as it is created), so nothing is buffered here
// before the handle leaves; after the send, Node closes this process's copy, and the client's end sees the end of
// the output when the child (and whatever inherited the pipe) closes it.
//
// Children are started `detached`: each leads a process group of its own, which the client signals directly. The
// server itself runs in a session of its own, so a terminal's Ctrl-C reaches the host but not the children's
// parent. If the channel closes (the host exited or was killed, even by SIGKILL), the server SIGKILLs every group
// it started that may still have members, then exits.
//
// CPU time of a command (Linux): when a child is reaped, the kernel adds its CPU time (and that of the descendants
// it waited for) to its parent's `cutime`/`cstime` (/proc/self/stat, in 10 ms clock ticks). A child's own /proc
// entry is gone by then, and libuv reaps without giving the rusage, so the growth of this process's figure is the
// only exact final reading. libuv reaps every exited child of a pass before it calls their exit callbacks, so the
// exits are held until the next turn (setImmediate, microseconds later) and sent together: the growth read then
// belongs to them all, and is sent as `cpu` only when they are one. Cost: one read of /proc/self/stat (≈15 µs)
// per group of exits, in this process.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Process groups started here that may still have members: a child's, until it was reaped and its group found
 * empty. A group that outlives its leader is checked again each second (the client ends such leftovers itself; this
 * only matters if the host dies meanwhile), and forgotten once empty, so that no stale id is ever signalled.
 */
const live = new Set();
const LEFTOVER_CHECK_MS = 1000;

process.on('message', (message) => {
  if (message === null || typeof message !== 'object' || message.t !== 'spawn') return;
  start(message);
});

process.on('disconnect', () => {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  }
  process.exit(0);
});

/** @param {{ id: number, command: string, args: string[], cwd: string, env: Record<string, string> }} m */
function start(m) {
  let child;
  try {
    child = spawn(m.command, m.args, {
      cwd: m.cwd,
      env: m.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
  } catch (error) {
    send({ t: 'invalid', id: m.id, error: { message: error.message, code: error.code } });
    return;
  }
  const { pid, stdout, stderr } = child;
  if (pid === undefined) {
    // The spawn failed (ENOENT, EACCES, a bad cwd): `error` follows on a later turn.
    child.once('error', (error) => {
      const { message, code, errno, syscall, path } = error;
      send({ t: 'error', id: m.id, error: { message, code, errno, syscall, path } });
    });
    return;
  }
  live.add(pid);
  // Nothing of the output may be read here: the client reads it all.
  stdout._handle.readStop();
  stderr._handle.readStop();
  // The child's exit must not touch the pipes (Node resumes unread stdio at exit): they leave with the handles.
  child.stdio[1] = null;
  child.stdio[2] = null;
  child.once('exit', (code, signal) => {
    forgetWhenEmpty(pid);
    if (exits.length === 0) setImmediate(sendExits);
    exits.push({ t: 'exit', id: m.id, code, signal });
  });
  send({ t: 'stdout', id: m.id, pid }, stdout);
  send({ t: 'stderr', id: m.id }, stderr);
}

/** Exits reaped since the last turn, and the reaped children's CPU time (ms) when they were last sent. */
const exits = [];
let childrenCpuMs = readChildrenCpuMs();

function sendExits() {
  const now = readChildrenCpuMs();
  if (exits.length === 1 && now !== undefined && childrenCpuMs !== undefined) exits[0].cpu = now - childrenCpuMs;
  childrenCpuMs = now;
  for (const exit of exits) send(exit);
  exits.length = 0;
}

/** CPU time of this process's reaped children (cutime + cstime), in ms; undefined without /proc. */
function readChildrenCpuMs() {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    // Fields after the command name (which may hold spaces): state is [0], cutime [13], cstime [14].
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // USER_HZ is 100 on every Linux ABI Node runs on.
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return undefined;
  }
}

function forgetWhenEmpty(pid) {
  if (!groupExists(pid)) {
    live.delete(pid);
    return;
  }
  setTimeout(forgetWhenEmpty, LEFTOVER_CHECK_MS, pid).unref();
}

/** The same test as process-group.ts's `groupExists` (this file is plain JavaScript, run without tsx). */
function groupExists(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function send(message, handle) {
  if (process.connected) process.send(message, handle);
}

send({ t: 'ready' });
