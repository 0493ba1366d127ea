import type { TaskId } from '../../src/ids.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { tempDb } from './temp-db.ts';

/**
 * A store that answers with `overrides` where it has them and with `inner` everywhere else (methods bound to
 * `inner`): a test puts a gate, a count or a failure in front of one verb of a real store.
 */
export function overrideStore<S extends Store>(inner: S, overrides: Partial<Record<keyof Store | 'onCancel', unknown>>): S {
  return new Proxy(inner, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof typeof overrides];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * A SQLite store on a temporary file that counts its `states()` reads, the runtime's reads for callers awaiting a
 * task. It tells cancels (an `onCancel` that never fires, as PostgreSQL's NOTIFY would), so the runtime reads no
 * running task's state for cancels made elsewhere and every read counted is one for a waiter.
 */
export function waiterReadsStore(name: string): { store: Store; reads: () => number } {
  const inner = createSqliteStore(tempDb(name));
  let reads = 0;
  const store = overrideStore(inner, {
    states: (ids: readonly TaskId[]) => (reads++, inner.states!(ids)),
    onCancel: () => () => {},
  });
  return { store, reads: () => reads };
}
