/**
 * Test helpers for processes: is a pid still running, and wait (by polling a condition, with a safety timeout)
 * until it is not.
 */
import { readFileSync } from 'node:fs';

/**
 * True while `pid` runs. A zombie counts as gone: it has ended and only waits to be reaped, which a container's
 * PID 1 may never do, so `process.kill(pid, 0)` alone would call it alive forever.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `predicate` every few milliseconds until it holds; rejects after `timeoutMs` (a safety net only). */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves with the first line that `match` accepts, fed by an `onLine` callback (the no-sleep way to wait for "ready"). */
export function createLineWaiter(): {
  onLine: (line: { stream: string; text: string }) => void;
  next: (match: (text: string) => boolean) => Promise<string>;
  seen: string[];
} {
  const seen: string[] = [];
  const waiters: Array<{ match: (text: string) => boolean; resolve: (text: string) => void }> = [];
  return {
    seen,
    onLine(line) {
      seen.push(line.text);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.match(line.text)) waiters.splice(i, 1)[0]!.resolve(line.text);
      }
    },
    next(match) {
      const found = seen.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}
