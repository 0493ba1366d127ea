/**
 * Helpers for lease tests on a ManualClock: waits that nudge the clock (a timer armed for a time already passed
 * fires at the next `advance`), a store that counts its heartbeats and recovery sweeps in flight, and a clock moved
 * several leases ahead in steps, each step's heartbeats and sweeps ended before the next.
 */
import { after } from 'node:test';
import type { ManualClock } from '../../src/clock.ts';
import type { Runtime } from '../../src/runtime.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { PG_SKIP, pgUrl, trackSchemas } from './pg.ts';
import { overrideStore } from './store-override.ts';
import { tempDb } from './temp-db.ts';
import { waitFor } from './wait-for.ts';

/** A store of each kind, made on the test's ManualClock; PostgreSQL skipped with its reason when not configured. */
export interface ClockedStore {
  name: 'memory' | 'SQLite' | 'PostgreSQL';
  store: (clock: ManualClock) => Store;
  skip?: string;
}

/**
 * The three stores for a lease test file, on the test's clock: a fresh SQLite file (`<name>` in its path) and a fresh
 * PostgreSQL schema (`<name with _>`, dropped after the file's tests) for each call of `store`.
 */
export function clockedStores(name: string): ClockedStore[] {
  const schemas = trackSchemas(name.replace(/-/g, '_'));
  after(() => schemas.dropAll());
  return [
    { name: 'memory', store: (clock) => createMemoryStore({ clock }) },
    { name: 'SQLite', store: (clock) => createSqliteStore(tempDb(name), { clock }) },
    { name: 'PostgreSQL', store: (clock) => createPostgresStore(pgUrl(), { schema: schemas.next(), clock }), ...(PG_SKIP ? { skip: PG_SKIP } : {}) },
  ];
}

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

/**
 * Crashes the actor at `address` with a message it cannot read (a getter that throws), and waits for its supervisor
 * to restart it.
 */
export async function crashActor(rt: Runtime, address: 'tracker' | 'executor'): Promise<void> {
  const restarted = new Promise<void>((resolve) => {
    const off = rt.on('actor.restarted', (e) => {
      if (e.address !== address) return;
      off();
      resolve();
    });
  });
  const poison = (): never => {
    throw new Error('poison');
  };
  if (address === 'tracker') rt.bus.tell('test', 'tracker', { type: 'tracker.query', query: { kind: 'get', get id() { return poison(); } } as never, replyTo: 'nobody' });
  else rt.bus.tell('test', 'executor', { type: 'executor.paused', get names() { return poison(); }, groups: [] } as never);
  await restarted;
}
