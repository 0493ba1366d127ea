import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DelayError,
  describeValue,
  deserializeError,
  ErrorCodes,
  invalidOption,
  isTroupeError,
  PermanentError,
  RetryableError,
  serializeError,
  TroupeError,
  type SerializedError,
} from '../src/errors.ts';

/** What crosses a thread, a process or the store: JSON text or a structured clone of the serialized form. */
const overTheWire = (error: unknown): SerializedError => JSON.parse(JSON.stringify(serializeError(error)));

describe('TroupeError', () => {
  it('carries a code, a name, the cause and details, and the brand', () => {
    const cause = new Error('disk full');
    const error = new TroupeError(ErrorCodes.STORE, 'write failed', { cause, details: { path: '/x' } });
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'TroupeError');
    assert.equal(error.code, 'TROUPE_ERR_STORE');
    assert.equal(error.cause, cause);
    assert.deepEqual(error.details, { path: '/x' });
    assert.equal(isTroupeError(error), true);
    assert.equal('cause' in new TroupeError(ErrorCodes.STORE, 'x'), false, 'no cause property when none was given');
  });

  it('every code is TROUPE_ERR_-prefixed and unique', () => {
    const codes = Object.values(ErrorCodes);
    assert.ok(codes.every((c) => /^TROUPE_ERR_[A-Z_]+$/.test(c)));
    assert.equal(new Set(codes).size, codes.length);
  });

  it('the task-steering subclasses set their name, code and hint field', () => {
    const permanent = new PermanentError('never');
    assert.equal(permanent.name, 'PermanentError');
    assert.equal(permanent.code, ErrorCodes.TASK_FAILED);
    assert.equal(permanent.permanent, true);
    const retryable = new RetryableError('again');
    assert.equal(retryable.name, 'RetryableError');
    assert.equal(retryable.retryable, true);
    const at = Date.UTC(2026, 5, 1);
    assert.equal(new DelayError(at).until, at);
    assert.equal(new DelayError(new Date(at)).until, at);
    assert.deepEqual(new DelayError(at).details, { until: at });
    for (const e of [permanent, retryable, new DelayError(at)]) assert.equal(isTroupeError(e), true);
  });

  it('isTroupeError is false for other errors and non-objects, true for a branded object from elsewhere', () => {
    for (const v of [new Error('x'), { code: 'TROUPE_ERR_TIMEOUT' }, null, undefined, 'TroupeError', 42]) assert.equal(isTroupeError(v), false);
    // Another copy of this module (another realm, another bundle) brands with the same registered symbol.
    const foreign = Object.assign(new Error('x'), { [Symbol.for('troupe.error')]: true });
    assert.equal(isTroupeError(foreign), true);
  });
});

describe('serializeError / deserializeError', () => {
  it('round-trips code, name, message, stack, details and the cause chain', () => {
    const root = new TypeError('bad byte');
    const middle = new TroupeError(ErrorCodes.COMMAND_FAILED, 'exit 2', { cause: root, details: { exitCode: 2 } });
    const top = new TroupeError(ErrorCodes.TASK_FAILED, 'task failed', { cause: middle });
    const back = deserializeError(overTheWire(top)) as TroupeError;

    assert.equal(isTroupeError(back), true);
    assert.equal(back.code, ErrorCodes.TASK_FAILED);
    assert.equal(back.message, 'task failed');
    assert.equal(back.stack, top.stack);
    const backMiddle = back.cause as TroupeError;
    assert.equal(backMiddle.code, ErrorCodes.COMMAND_FAILED);
    assert.deepEqual(backMiddle.details, { exitCode: 2 });
    const backRoot = backMiddle.cause as Error;
    assert.equal(isTroupeError(backRoot), false);
    assert.equal(backRoot.name, 'TypeError');
    assert.equal(backRoot.message, 'bad byte');
    assert.equal(backRoot.cause, undefined);
    assert.deepEqual(overTheWire(back), overTheWire(top), 'serialize ∘ deserialize is stable');
  });

  it('stays a TroupeError across structuredClone (a worker message) and deserialize', () => {
    const error = new TroupeError(ErrorCodes.RESOURCE_LIMIT, 'heap', { details: { limitMb: 64 } });
    const back = deserializeError(structuredClone(serializeError(error)));
    assert.equal(isTroupeError(back), true);
    assert.equal((back as TroupeError).code, ErrorCodes.RESOURCE_LIMIT);
    assert.deepEqual((back as TroupeError).details, { limitMb: 64 });
  });

  it('keeps an unknown code on a plain Error', () => {
    const error = Object.assign(new Error('no such file'), { code: 'ENOENT' });
    const back = deserializeError(overTheWire(error)) as Error & { code?: string };
    assert.equal(isTroupeError(back), false);
    assert.equal(back.code, 'ENOENT');
  });

  it('carries the Permanent, Retryable and Delay hints through the wire', () => {
    const at = Date.UTC(2026, 5, 1);
    const cases: Array<[Error, SerializedError['hint']]> = [
      [new PermanentError('never'), 'permanent'],
      [new RetryableError('again'), 'retryable'],
      [new DelayError(at), 'delay'],
    ];
    for (const [error, hint] of cases) {
      const wire = overTheWire(error);
      assert.equal(wire.hint, hint, error.name);
      const back = deserializeError(wire) as Error & { permanent?: boolean; retryable?: boolean; until?: number };
      assert.equal(back.name, error.name);
      assert.equal(overTheWire(back).hint, hint, `${error.name}: the hint survives a second trip`);
      if (hint === 'permanent') assert.equal(back.permanent, true);
      if (hint === 'retryable') assert.equal(back.retryable, true);
      if (hint === 'delay') {
        assert.equal(back.until, at);
        assert.equal(wire.details?.until, at);
      }
    }
    assert.equal(serializeError(new Error('plain')).hint, undefined);
  });

  it('reads hints from errors thrown by task code that does not import troupe (duck typing)', () => {
    assert.equal(serializeError(Object.assign(new Error('x'), { permanent: true })).hint, 'permanent');
    assert.equal(serializeError(Object.assign(new Error('x'), { retryable: true })).hint, 'retryable');
    assert.equal(serializeError(Object.assign(new Error('x'), { until: 5 })).hint, 'delay');
  });

  it('serializes non-errors thrown as values', () => {
    assert.deepEqual(serializeError('oops'), { name: 'Error', message: 'oops' });
    assert.deepEqual(serializeError(42), { name: 'Error', message: '42' });
    assert.deepEqual(serializeError(null), { name: 'Error', message: 'null' });
    assert.deepEqual(serializeError(undefined), { name: 'Error', message: 'undefined' });
    assert.deepEqual(serializeError({ message: 'shaped like an error' }), { name: 'Error', message: 'shaped like an error' });
  });

  it('never throws: a value that cannot be read becomes an error saying so', () => {
    assert.deepEqual(serializeError(Object.create(null)), { name: 'Error', message: '[object Object]' });
    const getter = new Error('g');
    Object.defineProperty(getter, 'details', { enumerable: true, get: () => { throw new Error('getter boom'); } });
    assert.deepEqual(serializeError(getter), { name: 'Error', message: 'The task threw a value that cannot be read (getter boom)' });
    const trap = new Proxy({}, { get: () => { throw new Error('trap'); } });
    assert.deepEqual(serializeError(trap), { name: 'Error', message: 'The task threw a value that cannot be read (trap)' });
  });

  it('cuts a long (or cyclic) cause chain', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    let depth = 0;
    for (let s: SerializedError | undefined = serializeError(a); s; s = s.cause) depth++;
    assert.equal(depth, 5);
  });

  it('toJSON gives the serialized form', () => {
    const error = new TroupeError(ErrorCodes.TIMEOUT, 'late');
    const json = JSON.parse(JSON.stringify({ error }));
    assert.equal(json.error.code, ErrorCodes.TIMEOUT);
    assert.equal(json.error.message, 'late');
    assert.equal(json.error.name, 'TroupeError');
  });
});

describe('describeValue and invalidOption', () => {
  it('renders values as `text` (type)', () => {
    const cases: Array<[unknown, string]> = [
      [0, '`0` (number)'],
      [NaN, '`NaN` (number)'],
      [-Infinity, '`-Infinity` (number)'],
      ['8', '`8` (string)'],
      ['', '`` (string)'],
      [true, '`true` (boolean)'],
      [null, '`null`'],
      [undefined, '`undefined`'],
      [[1, 2], '`[1,2]` (array)'],
      [{ a: 1 }, '`{"a":1}` (object)'],
      [() => 1, '`[function]` (function)'],
      [Symbol('s'), '`Symbol(s)` (symbol)'],
      [10n, '`10` (bigint)'],
      [Object.create(null), '`{}` (object)'],
    ];
    for (const [value, text] of cases) assert.equal(describeValue(value), text, String(text));
  });

  it('survives cycles and truncates long text', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(describeValue(cyclic), '`[object Object]` (object)');
    assert.equal(describeValue('x'.repeat(100)), `\`${'x'.repeat(57)}...\` (string)`);
  });

  it('invalidOption builds the coded execa-style message', () => {
    const error = invalidOption('pool.maxThreads', 'a positive integer', 0);
    assert.equal(error.code, ErrorCodes.INVALID_OPTION);
    assert.equal(error.message, 'Expected `pool.maxThreads` to be a positive integer, got `0` (number)');
  });
});
