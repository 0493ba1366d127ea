import type { Store } from '../../src/store/store.ts';

/**
 * A store that answers with `overrides` where it has them and with `inner` everywhere else (methods bound to
 * `inner`): a test puts a gate, a count or a failure in front of one verb of a real store.
 */
export function overrideStore<S extends Store>(inner: S, overrides: Partial<Record<keyof Store, unknown>>): S {
  return new Proxy(inner, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof Store];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
