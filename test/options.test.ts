/**
 * The one test file that pins option messages word for word: they are the user's first contact with a typo,
 * so a change to any of them should be a deliberate diff here. Everywhere else tests assert on `code` only.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock, systemClock } from '../src/clock.ts';
import { ErrorCodes, isTroupeError } from '../src/errors.ts';
import { DEFAULT_RETRY, DEFAULTS, resolveOptions, type RuntimeOptions } from '../src/options.ts';

const KNOWN = 'store, concurrency, strategy, pool, retry, timeout, killGrace, output, lease, heartbeat, claimBatch, prefetch, supervisor, synchronous, checkpoints, spawn, tempDir, nodeId, clock, random, logger, maintenance, telemetry';
const DURATION = "a non-negative duration of at most 100 years (milliseconds or a string like '30s')";
const POSITIVE_DURATION = "a positive duration of at most 100 years (milliseconds or a string like '30s')";
const SIZE = "a positive size (bytes or a string like '10MB')";

/** Asserts that resolving `raw` throws TROUPE_ERR_INVALID_OPTION with exactly `message`. */
function rejects(raw: unknown, message: string): void {
  assert.throws(
    () => resolveOptions(raw as RuntimeOptions),
    (error: unknown) => {
      assert.ok(isTroupeError(error), 'a TroupeError');
      assert.equal(error.code, ErrorCodes.INVALID_OPTION);
      assert.equal(error.message, message);
      return true;
    },
  );
}

describe('resolveOptions: the options object', () => {
  const cases: Array<[string, unknown, string]> = [
    ['a number', 5, 'Expected `options` to be an object, got `5` (number)'],
    ['an array', [], 'Expected `options` to be an object, got `[]` (array)'],
    ['null', null, 'Expected `options` to be an object, got `null`'],
    ['an unknown key', { concurency: 8 }, `Expected \`concurency\` to be one of the known options (${KNOWN}), got \`8\` (number)`],
    ['an own __proto__ key', JSON.parse('{"__proto__": {"polluted": true}}'), 'Expected `__proto__` to be absent (reserved name), got `{"polluted":true}` (object)'],
    ['a constructor key', { constructor: 1 }, 'Expected `constructor` to be absent (reserved name), got `1` (number)'],
  ];
  for (const [label, raw, message] of cases) it(`refuses ${label}`, () => rejects(raw, message));

  it('does not let an own __proto__ key pollute anything', () => {
    assert.throws(() => resolveOptions(JSON.parse('{"__proto__": {"polluted": true}}')));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('resolveOptions: each option', () => {
  const cases: Array<[string, unknown, string]> = [
    ['store as a number', { store: 5 }, "Expected `store` to be 'memory', 'sqlite:PATH', 'postgres://…' or a Store, got `5` (number)"],
    ['store as an object without claim()', { store: {} }, "Expected `store` to be 'memory', 'sqlite:PATH', 'postgres://…' or a Store, got `{}` (object)"],
    ['concurrency 0', { concurrency: 0 }, 'Expected `concurrency` to be an integer from 1 to 100000, got `0` (number)'],
    ['concurrency -1', { concurrency: -1 }, 'Expected `concurrency` to be an integer from 1 to 100000, got `-1` (number)'],
    ['concurrency 1.5', { concurrency: 1.5 }, 'Expected `concurrency` to be an integer from 1 to 100000, got `1.5` (number)'],
    ["concurrency '8'", { concurrency: '8' }, 'Expected `concurrency` to be an integer from 1 to 100000, got `8` (string)'],
    ['concurrency NaN', { concurrency: NaN }, 'Expected `concurrency` to be an integer from 1 to 100000, got `NaN` (number)'],
    ['concurrency above the cap', { concurrency: 100_001 }, 'Expected `concurrency` to be an integer from 1 to 100000, got `100001` (number)'],
    ['an unknown strategy', { strategy: 'random' }, "Expected `strategy` to be one of 'fifo', 'lifo', 'priority', 'weighted-random', got `random` (string)"],
    ['claimBatch 0', { claimBatch: 0 }, 'Expected `claimBatch` to be an integer from 1 to 10000, got `0` (number)'],
    ['timeout -1', { timeout: -1 }, `Expected \`timeout\` to be ${DURATION}, got \`-1\` (number)`],
    ['timeout Infinity', { timeout: Infinity }, `Expected \`timeout\` to be ${DURATION}, got \`Infinity\` (number)`],
    ["killGrace '5x'", { killGrace: '5x' }, `Expected \`killGrace\` to be ${DURATION}, got \`5x\` (string)`],
    ['lease 0', { lease: 0 }, `Expected \`lease\` to be ${POSITIVE_DURATION}, got \`0\` (number)`],
    ["lease '5 minutes'", { lease: '5 minutes' }, `Expected \`lease\` to be ${POSITIVE_DURATION}, got \`5 minutes\` (string)`],
    ['lease 1 ms (no heartbeat fits)', { lease: 1 }, 'Expected `lease` to be at least 2 ms (a heartbeat must renew it before it ends), got `1` (number)'],
    ['heartbeat equal to the lease', { lease: '30s', heartbeat: '30s' }, 'Expected `heartbeat` to be shorter than lease (30000 ms), got `30s` (string)'],
    ['heartbeat longer than the lease', { lease: 1000, heartbeat: 2000 }, 'Expected `heartbeat` to be shorter than lease (1000 ms), got `2000` (number)'],
    ['heartbeat 0', { heartbeat: 0 }, `Expected \`heartbeat\` to be ${POSITIVE_DURATION}, got \`0\` (number)`],
    ["synchronous 'OFF'", { synchronous: 'OFF' }, "Expected `synchronous` to be 'NORMAL' or 'FULL', got `OFF` (string)"],
    ["checkpoints 'sometimes'", { checkpoints: 'sometimes' }, "Expected `checkpoints` to be 'thread' or 'inline', got `sometimes` (string)"],
    ["spawn 'fork'", { spawn: 'fork' }, "Expected `spawn` to be 'server' or 'direct', got `fork` (string)"],
    ['a clock without now()', { clock: {} }, 'Expected `clock` to be a Clock, got `{}` (object)'],
    ['random as a number', { random: 0.5 }, 'Expected `random` to be a function returning [0, 1), got `0.5` (number)'],
    ['an empty tempDir', { tempDir: '' }, 'Expected `tempDir` to be a directory path, got `` (string)'],
    ['an empty nodeId', { nodeId: '' }, 'Expected `nodeId` to be a non-empty string, got `` (string)'],
    ['a logger without warn()', { logger: {} }, 'Expected `logger` to be an object with debug/info/warn/error, got `{}` (object)'],
    ["maintenance 'yes'", { maintenance: 'yes' }, 'Expected `maintenance` to be a boolean, got `yes` (string)'],
  ];
  for (const [label, raw, message] of cases) it(`refuses ${label}`, () => rejects(raw, message));
});

describe('resolveOptions: nested groups', () => {
  const cases: Array<[string, unknown, string]> = [
    ['pool as a string', { pool: 'big' }, 'Expected `pool` to be an object, got `big` (string)'],
    ['an unknown pool key', { pool: { threads: 2 } }, 'Expected `pool.threads` to be one of the known options (minThreads, maxThreads, idleTimeout, maxQueue, resourceLimits, maxBatch, recycle), got `2` (number)'],
    ['an own pool.__proto__', { pool: JSON.parse('{"__proto__": 1}') }, 'Expected `pool.__proto__` to be absent (reserved name), got `1` (number)'],
    ['minThreads > maxThreads', { pool: { minThreads: 4, maxThreads: 2 } }, 'Expected `pool.minThreads` to be at most pool.maxThreads (2), got `4` (number)'],
    ['maxThreads 0', { pool: { maxThreads: 0 } }, 'Expected `pool.maxThreads` to be an integer from 1 to 1024, got `0` (number)'],
    ['minThreads -1', { pool: { minThreads: -1 } }, 'Expected `pool.minThreads` to be an integer from 0 to 1024, got `-1` (number)'],
    ['maxQueue -1', { pool: { maxQueue: -1 } }, 'Expected `pool.maxQueue` to be an integer ≥ 0, got `-1` (number)'],
    ["maxQueue 'lots'", { pool: { maxQueue: 'lots' } }, 'Expected `pool.maxQueue` to be an integer ≥ 0, got `lots` (string)'],
    ["idleTimeout 'soon'", { pool: { idleTimeout: 'soon' } }, `Expected \`pool.idleTimeout\` to be ${DURATION}, got \`soon\` (string)`],
    ['maxBatch 0', { pool: { maxBatch: 0 } }, 'Expected `pool.maxBatch` to be an integer from 1 to 1024, got `0` (number)'],
    ['an unknown resource limit', { pool: { resourceLimits: { heap: 1 } } }, 'Expected `pool.resourceLimits.heap` to be one of the known options (maxOldGenerationSizeMb, maxYoungGenerationSizeMb, stackSizeMb), got `1` (number)'],
    ['an unknown recycle key', { pool: { recycle: { tasks: 5 } } }, 'Expected `pool.recycle.tasks` to be one of the known options (maxTasks, maxRssMb), got `5` (number)'],
    ['a zero recycle limit', { pool: { recycle: { maxTasks: 0 } } }, 'Expected `pool.recycle.maxTasks` to be a positive integer, got `0` (number)'],
    ['a zero resource limit', { pool: { resourceLimits: { maxOldGenerationSizeMb: 0 } } }, 'Expected `pool.resourceLimits.maxOldGenerationSizeMb` to be a positive integer, got `0` (number)'],
    ['an unknown output key', { output: { lines: 1 } }, 'Expected `output.lines` to be one of the known options (maxLines, maxBytes), got `1` (number)'],
    ['output.maxLines 0', { output: { maxLines: 0 } }, 'Expected `output.maxLines` to be an integer from 1 to 10000000, got `0` (number)'],
    ["output.maxBytes '10XB'", { output: { maxBytes: '10XB' } }, `Expected \`output.maxBytes\` to be ${SIZE}, got \`10XB\` (string)`],
    ['output.maxBytes 0', { output: { maxBytes: 0 } }, `Expected \`output.maxBytes\` to be ${SIZE}, got \`0\` (number)`],
    ['output.maxBytes 0.5 (floors to 0)', { output: { maxBytes: 0.5 } }, `Expected \`output.maxBytes\` to be ${SIZE}, got \`0.5\` (number)`],
    ['an unknown supervisor key', { supervisor: { max: 1 } }, 'Expected `supervisor.max` to be one of the known options (maxRestarts, within), got `1` (number)'],
    ['supervisor.maxRestarts -1', { supervisor: { maxRestarts: -1 } }, 'Expected `supervisor.maxRestarts` to be an integer ≥ 0, got `-1` (number)'],
    ['supervisor.within 0', { supervisor: { within: 0 } }, `Expected \`supervisor.within\` to be ${POSITIVE_DURATION}, got \`0\` (number)`],
    ['retry as a number', { retry: 3 }, 'Expected `retry` to be an object like { attempts, backoff, delay, maxDelay, jitter }, got `3` (number)'],
    ['an unknown retry key', { retry: { tries: 3 } }, 'Expected `retry.tries` to be one of the known retry options (attempts, backoff, delay, maxDelay, jitter), got `3` (number)'],
    ['an own retry.__proto__', { retry: JSON.parse('{"__proto__": {"attempts": 5}}') }, 'Expected `retry.__proto__` to be one of the known retry options (attempts, backoff, delay, maxDelay, jitter), got `{"attempts":5}` (object)'],
    ['retry.attempts 0', { retry: { attempts: 0 } }, 'Expected `retry.attempts` to be a positive integer, got `0` (number)'],
    ["retry.backoff 'linear'", { retry: { backoff: 'linear' } }, "Expected `retry.backoff` to be one of 'fixed', 'exponential', got `linear` (string)"],
    ['retry.delay -5', { retry: { delay: -5 } }, `Expected \`retry.delay\` to be ${DURATION}, got \`-5\` (number)`],
    ['retry.maxDelay below retry.delay', { retry: { delay: '10s', maxDelay: '1s' } }, 'Expected `retry.maxDelay` to be a duration of at least `retry.delay` (10000 ms), got `1s` (string)'],
    ['retry.jitter 2', { retry: { jitter: 2 } }, 'Expected `retry.jitter` to be a number from 0 to 1, got `2` (number)'],
  ];
  for (const [label, raw, message] of cases) it(`refuses ${label}`, () => rejects(raw, message));
});

describe('resolveOptions: defaults', () => {
  it('DEFAULTS and DEFAULT_RETRY are frozen', () => {
    assert.equal(Object.isFrozen(DEFAULTS), true);
    assert.equal(Object.isFrozen(DEFAULT_RETRY), true);
    assert.throws(() => {
      (DEFAULTS as { concurrency: number }).concurrency = 1;
    }, TypeError);
  });

  it('applies every default to an empty object and to no argument at all', () => {
    const cores = os.availableParallelism();
    for (const resolved of [resolveOptions(), resolveOptions({})]) {
      assert.equal(resolved.store, DEFAULTS.store);
      assert.equal(resolved.concurrency, DEFAULTS.concurrency);
      assert.equal(resolved.strategy, 'priority');
      assert.deepEqual(resolved.pool, { minThreads: 1, maxThreads: cores, idleTimeoutMs: 30_000, maxQueue: 'auto', maxBatch: 64 });
      assert.deepEqual(resolved.retry, { ...DEFAULT_RETRY });
      assert.equal(resolved.timeoutMs, 0);
      assert.equal(resolved.killGraceMs, 5000);
      assert.deepEqual(resolved.output, { maxLines: 10_000, maxBytes: 10_000_000 });
      assert.equal(resolved.leaseMs, 30_000);
      assert.equal(resolved.heartbeatMs, 10_000, 'a third of the lease');
      assert.equal(resolved.claimBatch, 64);
      assert.deepEqual(resolved.supervisor, { maxRestarts: 3, withinMs: 5000 });
      assert.equal(resolved.checkpoints, 'thread');
      assert.equal(resolved.spawn, 'server');
      assert.equal(resolved.synchronous, 'NORMAL');
      assert.equal(resolved.tempDir, path.join(os.tmpdir(), 'troupe'));
      assert.equal(resolved.nodeId, undefined);
      assert.equal(resolved.clock, systemClock);
      assert.equal(resolved.random, Math.random);
      assert.equal(resolved.maintenance, true);
      assert.equal(typeof resolved.logger.warn, 'function');
      assert.equal(Object.isFrozen(resolved), true);
    }
  });

  it('resolves durations, sizes and the given values', () => {
    const clock = new ManualClock();
    const random = () => 0.5;
    const resolved = resolveOptions({
      store: 'memory', concurrency: 4, strategy: 'fifo', timeout: '2m', killGrace: '1s', lease: '1m', claimBatch: 8,
      output: { maxLines: 10, maxBytes: '1KiB' }, supervisor: { maxRestarts: 0, within: '1s' },
      pool: { minThreads: 0, maxThreads: 2, idleTimeout: '5s', maxQueue: 0, resourceLimits: { maxOldGenerationSizeMb: 64 } },
      retry: { attempts: 3, backoff: 'fixed', delay: '2s' }, clock, random, maintenance: false, nodeId: 'n1', synchronous: 'FULL',
    });
    assert.equal(resolved.timeoutMs, 120_000);
    assert.equal(resolved.killGraceMs, 1000);
    assert.equal(resolved.leaseMs, 60_000);
    assert.equal(resolved.heartbeatMs, 20_000);
    assert.deepEqual(resolved.output, { maxLines: 10, maxBytes: 1024 });
    assert.deepEqual(resolved.supervisor, { maxRestarts: 0, withinMs: 1000 });
    const { resourceLimits, ...pool } = resolved.pool;
    assert.deepEqual(pool, { minThreads: 0, maxThreads: 2, idleTimeoutMs: 5000, maxQueue: 0, maxBatch: 64 });
    assert.deepEqual({ ...resourceLimits }, { maxOldGenerationSizeMb: 64 });
    assert.deepEqual(resolved.retry, { attempts: 3, backoff: 'fixed', delayMs: 2000, maxDelayMs: 300_000, jitter: 0.2 });
    assert.equal(resolved.clock, clock);
    assert.equal(resolved.random, random);
    assert.equal(resolved.maintenance, false);
    assert.equal(resolved.nodeId, 'n1');
    assert.equal(resolved.synchronous, 'FULL');
    assert.equal(resolved.strategy, 'fifo');
  });

  it('does not mutate the caller’s object', () => {
    const raw = { concurrency: 2, pool: { maxThreads: 2 } };
    const copy = structuredClone(raw);
    resolveOptions(raw);
    assert.deepEqual(raw, copy);
  });
});
