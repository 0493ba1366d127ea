/**
 * One measurement in a fresh process: the durable, latency and scale suites run each system in its own child, so
 * its peak RSS is its own, no heap or thread left by the previous system weighs on it, and a peer's leaked handle
 * cannot keep the harness alive.
 *
 * The parent calls `runInChild(suiteUrl, spec)`; the suite file, started with `--bench-child <json>`, calls
 * `childSpec()` to get the spec, measures, and hands its result back with `reportToParent(result)` (one line
 * `@bench-result <json>` on stdout). `TROUPE_BENCH_CPU_PROF=<dir>` makes every child write a V8 CPU profile there.
 *
 * A child runs the TypeScript sources through the tsx loader, unless the suite asks for `build`: the suite file is
 * then bundled with esbuild (the one tsx ships) into a temporary directory and run by plain `node`, the way users
 * run compiled JavaScript, so that the loader (≈35 MB of RSS) is not counted in what the child measures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const FLAG = '--bench-child';
const MARK = '@bench-result ';

export interface ChildOptions {
  /** The child is killed (and the promise rejects) after this long. @default 600000 */
  timeoutMs?: number;
  /** Extra Node flags (e.g. `--expose-gc`). */
  execArgv?: readonly string[];
  /** Bundle the suite with esbuild and run the bundle with plain `node` instead of through tsx. @default false */
  build?: boolean;
}

/**
 * Why: compiled JavaScript for a child, as users would run it. Packages stay imports, resolved through a
 * `node_modules` link next to the bundle; the caller removes the returned directory.
 */
async function buildChild(file: string): Promise<{ dir: string; entry: string }> {
  const { build } = await import('esbuild');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-child-'));
  try {
    symlinkSync(realpathSync(fileURLToPath(new URL('../../node_modules', import.meta.url))), path.join(dir, 'node_modules'), 'dir');
    const entry = path.join(dir, 'child.mjs');
    await build({ entryPoints: [file], outfile: entry, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
    return { dir, entry };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Why: runs `suiteUrl` in a new Node process with `spec` and resolves with what it reported. */
export async function runInChild<T>(suiteUrl: string | URL, spec: unknown, { timeoutMs = 600_000, execArgv = [], build = false }: ChildOptions = {}): Promise<T> {
  const file = fileURLToPath(suiteUrl);
  const built = build ? await buildChild(file) : undefined;
  try {
    return await runFile<T>(file, built ? [built.entry] : ['--import', 'tsx', file], spec, timeoutMs, execArgv);
  } finally {
    if (built) rmSync(built.dir, { recursive: true, force: true });
  }
}

function runFile<T>(file: string, entry: readonly string[], spec: unknown, timeoutMs: number, execArgv: readonly string[]): Promise<T> {
  const prof = process.env.TROUPE_BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.TROUPE_BENCH_CPU_PROF] : [];
  const child = spawn(process.execPath, [...prof, ...execArgv, ...entry, FLAG, JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise<T>((resolve, reject) => {
    let result: { value: T } | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${JSON.stringify(spec)}: no result after ${timeoutMs} ms`));
    }, timeoutMs);
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.startsWith(MARK)) result = { value: JSON.parse(line.slice(MARK.length)) as T };
      else console.log(`  ${line}`);
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (result) resolve(result.value);
      else reject(new Error(`${file} ${JSON.stringify(spec)}: exited (${signal ?? code}) without a result`));
    });
  });
}

/** Why: a suite file tells "I am a child, here is my spec" from a normal import. */
export function childSpec<S>(): S | undefined {
  const i = process.argv.indexOf(FLAG);
  return i >= 0 ? (JSON.parse(process.argv[i + 1]!) as S) : undefined;
}

/** Why: hands the result to the parent and ends the child, whatever handles a peer left open. */
export function reportToParent(result: unknown): Promise<never> {
  return new Promise<never>(() => {
    process.stdout.write(`${MARK}${JSON.stringify(result)}\n`, () => process.exit(0));
  });
}

/**
 * Why: the peak resident set size of this process so far, in MB. Linux's `VmHWM` is reset when a process execs;
 * `getrusage`'s maxRSS is not (a child would report its parent's peak), so it is only the fallback.
 */
export function peakRssMb(): number {
  try {
    const kb = Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    if (Number.isFinite(kb) && kb > 0) return Math.round((kb / 1024) * 10) / 10;
  } catch {
    // not Linux
  }
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

/** Why: a measurement step that hangs (a peer that never answers) fails with a reason instead of stalling the run. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
