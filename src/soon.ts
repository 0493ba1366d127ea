/**
 * Runs a callback in a microtask, as `queueMicrotask` does, for the paths every run takes (a run passes through
 * several). Node's `queueMicrotask` wraps each callback in an AsyncResource and a bound function: ≈1 µs a call on
 * Node 20 here, against ≈0.5 µs for a reaction on a resolved promise. Both go to the same queue, in order.
 *
 * The callback must not throw: the callers catch their own errors. A throw would surface as an unhandled
 * rejection rather than an uncaught exception (with Node's default settings both end the process).
 */
const RESOLVED = Promise.resolve();

/** Why: a microtask hop on a hot path without `queueMicrotask`'s per-call async resource. */
export function soon(fn: () => void): void {
  void RESOLVED.then(fn);
}
