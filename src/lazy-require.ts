/**
 * Dependencies that only some runtimes use — the PostgreSQL driver, Piscina (handler tasks), croner (cron
 * schedules), fastify and prom-client (the HTTP server and its metrics) — are loaded on first use, not when troupe
 * is imported. Loaded at import they cost every process: measured in a fresh Node 20, fastify alone adds ≈21 MB of
 * RSS and 3 MB of heap, `pg` ≈16 MB and 3 MB, prom-client ≈13 MB and 2 MB, Piscina ≈10 MB and 1 MB. The heap part
 * is paid twice over, because V8 lets the old generation grow to a multiple of its live size before a full
 * collection.
 *
 * Each of these is used from synchronous code (a constructor, a pool getter, a schedule check), so the module is
 * required synchronously: its CommonJS entry, through `createRequire`. Every one of them ships one. A bundle (e.g.
 * esbuild's with `packages: 'external'`) keeps the `require` as it is; a static `import` there is hoisted to the
 * top of the bundle, which loads the package at startup even when the code importing it never runs.
 */
import { createRequire } from 'node:module';

const requireModule = createRequire(import.meta.url);

/** Why: a dependency that only some runtimes need is loaded (once, synchronously) when it is first asked for. */
export function lazyRequire<T>(specifier: 'pg' | 'piscina' | 'croner' | 'fastify' | 'prom-client'): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: requireModule(specifier) as T }).value;
}
