/**
 * Polls a condition until it holds: the no-sleep way to wait for state that has no event. The timeout is a
 * safety net, never the thing a test waits on.
 */

/** Checks done back to back (on setImmediate) before polling slows to every 5 ms. */
const FAST_ROUNDS = 50;

/** A condition: a (sync or async) predicate, or an object with a `check` method. */
export type Condition = (() => unknown) | { check(): unknown };

export interface WaitForOptions {
  /** Safety net: reject when the condition still fails after this long. @default 2000 */
  timeout?: number;
  /** Pause between checks in ms. By default the first checks follow each other on `setImmediate`, then every 5 ms. */
  interval?: number;
  /** Stops waiting (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Names the condition in the timeout message. */
  label?: string;
}

/** Resolves with the first truthy value of the condition; rejects with a clear message on the safety timeout. */
export async function waitFor<T>(condition: Condition, options: WaitForOptions = {}): Promise<T> {
  const { timeout = 2000, interval, signal, label } = options;
  const check = typeof condition === 'function' ? condition : () => condition.check();
  const deadline = performance.now() + timeout;
  let lastError: unknown;
  for (let round = 0; ; round++) {
    signal?.throwIfAborted();
    try {
      const value = await check();
      if (value) return value as T;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const what = label ?? (typeof condition === 'function' ? condition.toString().slice(0, 120) : 'condition');
      throw new Error(`waitFor timed out after ${timeout} ms: ${what}`, lastError === undefined ? undefined : { cause: lastError });
    }
    await pause(interval ?? (round < FAST_ROUNDS ? 0 : 5), signal);
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      if (ms > 0) clearTimeout(timer as ReturnType<typeof setTimeout>);
      else clearImmediate(timer as ReturnType<typeof setImmediate>);
      reject(signal!.reason);
    };
    const timer = ms > 0 ? setTimeout(done, ms) : setImmediate(done);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
