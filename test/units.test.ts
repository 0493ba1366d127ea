import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../src/errors.ts';
import { parseDuration, parseSize } from '../src/units.ts';

describe('parseDuration', () => {
  it('accepts milliseconds and unit strings', () => {
    const cases: Array<[unknown, number]> = [
      [0, 0], [250, 250], [1.6, 2], ['250ms', 250], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000],
      ['2d', 172_800_000], ['1.5s', 1500], ['  10 s ', 10_000], ['30S', 30_000], ['42', 42],
    ];
    for (const [value, ms] of cases) assert.equal(parseDuration(value, 'x'), ms, String(value));
  });

  it('refuses anything else with TROUPE_ERR_INVALID_OPTION naming the option', () => {
    for (const value of [-1, NaN, Infinity, '', '5 minutes', '1w', '-5s', '1e3', 's', null, undefined, {}, [], true, 10n]) {
      assert.throws(() => parseDuration(value, 'task.timeout'), (error: unknown) => {
        assert.equal((error as { code?: string }).code, ErrorCodes.INVALID_OPTION, String(value));
        assert.match((error as Error).message, /`task\.timeout`/);
        return true;
      });
    }
  });

  it('refuses 0 only when positive is asked for', () => {
    assert.equal(parseDuration('0s', 'x'), 0);
    assert.throws(() => parseDuration(0, 'x', { positive: true }), { code: ErrorCodes.INVALID_OPTION });
    assert.throws(() => parseDuration('0ms', 'x', { positive: true }), { code: ErrorCodes.INVALID_OPTION });
    assert.equal(parseDuration('1ms', 'x', { positive: true }), 1);
  });
});

describe('parseSize', () => {
  it('accepts bytes and SI / IEC unit strings', () => {
    const cases: Array<[unknown, number]> = [
      [1, 1], [1.9, 1], ['512', 512], ['10b', 10], ['1kb', 1000], ['10MB', 10_000_000], ['1GB', 1e9],
      ['512KiB', 524_288], ['1MiB', 1_048_576], ['1gib', 1_073_741_824], ['1.5 KB', 1500], ['0.5KiB', 512],
    ];
    for (const [value, bytes] of cases) assert.equal(parseSize(value, 'x'), bytes, String(value));
  });

  it('refuses zero, less than a byte, negatives and junk', () => {
    for (const value of [0, 0.5, '0.5b', -1, NaN, Infinity, '', '10XB', '10 megabytes', '-1MB', null, undefined, {}]) {
      assert.throws(() => parseSize(value, 'output.maxBytes'), (error: unknown) => {
        assert.equal((error as { code?: string }).code, ErrorCodes.INVALID_OPTION, String(value));
        assert.match((error as Error).message, /`output\.maxBytes`/);
        return true;
      });
    }
  });
});
