/**
 * Helpers for lease tests on a ManualClock: waits that nudge the clock (a timer armed for a time already passed
 * fires at the next `advance`), a store that counts its heartbeats and recovery sweeps in flight, and a clock moved
 * several leases ahead in steps, each step's heartbeats and sweeps ended before the next.
 */
import type { ManualClock } from '../../src/clock.ts';
import type { Runtime } from '../../src/runtime.ts';
import type { Store } from '../../src/store/store.ts';
import { overrideStore } from './store-override.ts';
import { waitFor } from './wait-for.ts';

/** Waits while nudging the clock: timers armed for a time already passed fire at the next advance. */
export function waitNudging(clock: ManualClock, condition: () => unknown, label: string, timeout = 5000): Promise<unknown> {
  return waitFor(async () => {
    await clock.advance(0);
    return condition();
  }, { label, timeout });
}

/** Wraps `inner`, counting the heartbeats and recovery sweeps in flight and the sweeps that ended. */
export function watchLeases(inner: Store, overrides: Partial<Record<keyof Store, unknown>> = {}): { store: Store; busy: () => number; swept: () => number } {
  let busy = 0;
  let swept = 0;
  const store = overrideStore(inner, {
    heartbeat: async (...args: Parameters<Store['heartbeat']>) => {
      busy++;
      try {
        return await inner.heartbeat(...args);
      } finally {
        busy--;
      }
    },
    recoverExpired: async (now: number) => {
      busy++;
      try {
        return await inner.recoverExpired(now);
      } finally {
        busy--;
        swept++;
      }
    },
    ...overrides,
  });
  return { store, busy: () => busy, swept: () => swept };
}

/** Moves the clock `span` ahead in steps of `step`, letting each step's heartbeats and sweeps end before the next. */
export async function advanceInSteps(clock: ManualClock, busy: () => number, span: number, step: number): Promise<void> {
  for (let moved = 0; moved < span; moved += step) {
    await clock.advance(step);
    await waitFor(() => busy() === 0, { label: 'the heartbeats and sweeps of the step', timeout: 5000 });
  }
}

/** How many tasks the runtime's tracker took back from expired leases. */
export function recovered(rt: Runtime): unknown {
  return rt.tree().children?.find((c) => c.address === 'tracker')?.info?.recovered;
}
