/**
 * Runs the real `troupe` binary as a child process and waits on what it prints (never on time): every chunk of
 * stdout/stderr re-checks the pending waits. Every child started here is tracked and killed by `killAll()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/troupe.js', import.meta.url));
export const CONFIG = fileURLToPath(new URL('../fixtures/cli/troupe.config.ts', import.meta.url));

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** Output as a person reads it: no escape codes, no carriage returns (a pseudo-terminal sends \r\n). */
export const stripAnsi = (text: string) => text.replace(ANSI, '').replace(/\r/g, '');

const live = new Set<ChildProcess>();

export interface Waiter {
  stream: 'stdout' | 'stderr';
  pattern: RegExp;
  resolve: (m: RegExpMatchArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  from: number;
}

export class TroupeProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<Waiter>();

  constructor(child: ChildProcess) {
    this.child = child;
    live.add(child);
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      this.stdout += d;
      this.#check();
    });
    child.stderr?.on('data', (d: string) => {
      this.stderr += d;
      this.#check();
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        live.delete(child);
        for (const w of this.#waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`troupe exited (${code ?? signal}) before printing ${w.pattern}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
        }
        this.#waiters.clear();
        resolve({ code, signal });
      });
    });
  }

  /** Resolves when the (ANSI-stripped) output printed from now on — or since `from` — matches. */
  waitFor(pattern: RegExp, { stream = 'stdout', timeout = 20_000, from }: { stream?: 'stdout' | 'stderr'; timeout?: number; from?: number } = {}): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        stream,
        pattern,
        resolve,
        reject,
        from: from ?? this[stream].length,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`safety timeout: no ${pattern} on ${stream}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
        }, timeout),
      };
      this.#waiters.add(w);
      this.#check();
    });
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  #check(): void {
    for (const w of this.#waiters) {
      const m = stripAnsi(this[w.stream].slice(w.from)).match(w.pattern);
      if (!m) continue;
      this.#waiters.delete(w);
      clearTimeout(w.timer);
      w.resolve(m);
    }
  }
}

/** Starts `node bin/troupe.js …args` with piped stdio, in the repository's root unless `cwd` says otherwise. */
export function startTroupe(args: readonly string[], env: Record<string, string | undefined> = {}, { cwd = ROOT }: { cwd?: string } = {}): TroupeProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', TROUPE_URL: undefined, TROUPE_TOKEN: undefined, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new TroupeProcess(child);
}

/** Starts any command (the `script` pseudo-terminal wrapper) with piped stdio, tracked like the others. */
export function startCommand(command: string, args: readonly string[], env: Record<string, string | undefined> = {}): TroupeProcess {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, TROUPE_URL: undefined, TROUPE_TOKEN: undefined, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  return new TroupeProcess(child);
}

/** Runs `troupe …args` to its end. */
export async function troupe(args: readonly string[], env: Record<string, string | undefined> = {}, stdin?: string, options: { cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startTroupe(args, env, options);
  p.child.stdin?.end(stdin ?? '');
  const { code } = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** A served runtime on a free port, from the fixture config. */
export async function serve(extra: readonly string[] = [], env: Record<string, string | undefined> = {}): Promise<{ url: string; process: TroupeProcess }> {
  const p = startTroupe(['serve', '--config', CONFIG, '--port', '0', ...extra], env);
  const m = await p.waitFor(/troupe serving (http:\/\/\S+)/, { from: 0 });
  return { url: m[1]!, process: p };
}

/** Kills every child still alive (after hooks); resolves when they are gone. */
export async function killAll(): Promise<void> {
  const waits: Array<Promise<unknown>> = [];
  for (const child of live) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    waits.push(new Promise((resolve) => child.once('close', resolve)));
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
