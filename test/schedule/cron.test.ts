import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { latestSlot, nextSlot, validateScheduleSpec, type ScheduleSpec } from '../../src/schedule/cron.ts';

const utc = (iso: string): number => Date.parse(iso);
const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** Walks `count` slots forward from `from`. */
function slots(spec: ScheduleSpec, from: number, count: number): string[] {
  const out: string[] = [];
  let at = from;
  for (let i = 0; i < count; i++) {
    const next = nextSlot(spec, at);
    assert.ok(next !== undefined && next > at, 'slots strictly increase');
    out.push(iso(next)!);
    at = next;
  }
  return out;
}

describe('validateScheduleSpec', () => {
  it('accepts cron (5 and 6 fields, nicknames) and every', () => {
    assert.deepEqual(validateScheduleSpec({ cron: '0 3 * * *' }, 's'), { cron: '0 3 * * *' });
    assert.deepEqual(validateScheduleSpec({ cron: ' */10 * * * * * ' }, 's'), { cron: '*/10 * * * * *' });
    assert.deepEqual(validateScheduleSpec({ cron: '@daily', timezone: 'Europe/Prague' }, 's'), {
      cron: '@daily',
      timezone: 'Europe/Prague',
    });
    assert.deepEqual(validateScheduleSpec({ every: '15m' }, 's'), { everyMs: 900_000 });
    assert.deepEqual(validateScheduleSpec({ every: 1000 }, 's'), { everyMs: 1000 });
  });

  it('ignores the keys that are not about timing (id, overlap, input…)', () => {
    assert.deepEqual(validateScheduleSpec({ every: '1h', id: 'x', overlap: 'skip', task: 't' }, 's'), { everyMs: 3_600_000 });
  });

  it('rejects bad cron expressions with INVALID_SCHEDULE and croner’s reason as cause', () => {
    for (const cron of ['61 * * * *', '* * * *', '* * * * * * *', 'nonsense', '@reboot', '*/0 * * * *', '5-1 * * * *']) {
      assert.throws(
        () => validateScheduleSpec({ cron }, 'schedules.nightly'),
        (error: unknown) => {
          assert.ok(isTroupeError(error), cron);
          assert.equal(error.code, ErrorCodes.INVALID_SCHEDULE, cron);
          assert.ok(error.cause instanceof Error, `croner's error is the cause for ${cron}`);
          return true;
        },
      );
    }
  });

  it('rejects a valid pattern that never fires, and bad shapes, zones and intervals', () => {
    const cases: unknown[] = [
      { cron: '0 0 30 2 *' },
      { cron: '' },
      { cron: 42 },
      { cron: '* * * * *', every: '1m' },
      {},
      null,
      '0 3 * * *',
      { every: 999 },
      { every: 0 },
      { every: '-5s' },
      { every: 'often' },
      { every: '1m', timezone: 'UTC' },
      { cron: '* * * * *', timezone: 'Nowhere/Bad' },
      { cron: '* * * * *', timezone: 5 },
    ];
    for (const raw of cases) {
      assert.throws(() => validateScheduleSpec(raw, 's'), { code: ErrorCodes.INVALID_SCHEDULE }, JSON.stringify(raw));
    }
  });
});

describe('nextSlot', () => {
  it('cron: several expressions, strictly after the reference', () => {
    const from = utc('2026-01-01T12:00:00.000Z');
    assert.deepEqual(slots({ cron: '*/5 * * * *' }, from, 3), [
      '2026-01-01T12:05:00.000Z',
      '2026-01-01T12:10:00.000Z',
      '2026-01-01T12:15:00.000Z',
    ]);
    assert.equal(iso(nextSlot({ cron: '*/5 * * * *' }, from - 1)), '2026-01-01T12:00:00.000Z');
    assert.deepEqual(slots({ cron: '0 3 * * *' }, from, 2), ['2026-01-02T03:00:00.000Z', '2026-01-03T03:00:00.000Z']);
    assert.deepEqual(slots({ cron: '0 9 * * MON-FRI' }, utc('2026-01-02T10:00:00Z'), 2), [
      '2026-01-05T09:00:00.000Z',
      '2026-01-06T09:00:00.000Z',
    ]);
    assert.deepEqual(slots({ cron: '*/20 * * * * *' }, from + 500, 2), ['2026-01-01T12:00:20.000Z', '2026-01-01T12:00:40.000Z']);
    assert.deepEqual(slots({ cron: '0 0 L * *' }, from, 2), ['2026-01-31T00:00:00.000Z', '2026-02-28T00:00:00.000Z']);
  });

  it('cron: the time zone moves the slots, and DST is followed', () => {
    const from = utc('2026-03-07T00:00:00Z');
    // New York: 03:00 EST is 08:00Z; after the switch to EDT on 8 March it is 07:00Z.
    assert.deepEqual(slots({ cron: '0 3 * * *', timezone: 'America/New_York' }, from, 3), [
      '2026-03-07T08:00:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-09T07:00:00.000Z',
    ]);
    assert.deepEqual(slots({ cron: '0 3 * * *', timezone: 'Asia/Tokyo' }, from, 1), ['2026-03-07T18:00:00.000Z']);
    assert.deepEqual(slots({ cron: '0 3 * * *' }, from, 1), ['2026-03-07T03:00:00.000Z'], 'UTC when no zone');
    assert.deepEqual(slots({ cron: '0 3 * * *', timezone: 'UTC' }, from, 1), ['2026-03-07T03:00:00.000Z']);
    assert.equal(iso(latestSlot({ cron: '0 3 * * *', timezone: 'Etc/UTC' }, from)), '2026-03-06T03:00:00.000Z');
    // 02:30 does not exist on 8 March in New York: a fixed-time job runs once, right after the gap.
    assert.deepEqual(slots({ cron: '30 2 * * *', timezone: 'America/New_York' }, from, 3), [
      '2026-03-07T07:30:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
    // On the November fall-back an interval job runs on both occurrences of 01:00–02:00, in order.
    assert.deepEqual(slots({ cron: '*/30 * * * *', timezone: 'America/New_York' }, utc('2026-11-01T05:15:00Z'), 4), [
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T06:00:00.000Z',
      '2026-11-01T06:30:00.000Z',
      '2026-11-01T07:00:00.000Z',
    ]);
  });

  it('every: slots are multiples of the interval since the epoch, whatever the reference', () => {
    const spec = { everyMs: 15 * 60_000 };
    for (const from of ['2026-01-01T12:00:00.000Z', '2026-01-01T12:07:13.123Z', '2026-01-01T12:14:59.999Z']) {
      assert.equal(iso(nextSlot(spec, utc(from))), '2026-01-01T12:15:00.000Z', from);
    }
    assert.equal(nextSlot({ everyMs: 7000 }, 0), 7000);
    assert.equal(nextSlot({ everyMs: 7000 }, 13_999), 14_000);
    assert.equal(nextSlot({ everyMs: 7000 }, 14_000), 21_000);
  });

  it('is pure: two nodes with the same inputs get the same slot', () => {
    const spec = validateScheduleSpec({ cron: '17 */2 * * *', timezone: 'Europe/Prague' }, 's');
    const at = utc('2026-06-15T10:20:30.400Z');
    assert.equal(nextSlot(spec, at), nextSlot({ ...spec }, at));
    // Prague is UTC+2 in June: even local hours at :17 → 14:17 local is 12:17Z.
    assert.equal(iso(nextSlot(spec, at)), '2026-06-15T12:17:00.000Z');
  });
});

describe('latestSlot (catch-up)', () => {
  it('cron: the latest slot at or before the reference, inclusive', () => {
    const spec = { cron: '*/5 * * * *' };
    const t = utc('2026-01-01T12:00:00.000Z');
    assert.equal(iso(latestSlot(spec, t)), '2026-01-01T12:00:00.000Z', 'a slot exactly at the reference counts');
    assert.equal(iso(latestSlot(spec, t - 1)), '2026-01-01T11:55:00.000Z');
    assert.equal(iso(latestSlot(spec, t + 299_999)), '2026-01-01T12:00:00.000Z');
    const perSecond = { cron: '* * * * * *' };
    assert.equal(iso(latestSlot(perSecond, t + 1000)), '2026-01-01T12:00:01.000Z');
    assert.equal(iso(latestSlot(perSecond, t + 999)), '2026-01-01T12:00:00.000Z');
  });

  it('after downtime, only the most recent missed slot is returned; none when it is older than notBefore', () => {
    const spec = { cron: '0 * * * *' };
    const lastRun = utc('2026-01-01T03:00:00Z');
    const restartedAt = utc('2026-01-01T09:42:00Z');
    // Six hourly slots were missed; catch-up runs only 09:00.
    assert.equal(iso(latestSlot(spec, restartedAt, lastRun + 1)), '2026-01-01T09:00:00.000Z');
    // Nothing missed since the last handled slot: nothing to catch up.
    assert.equal(latestSlot(spec, utc('2026-01-01T09:59:59Z'), utc('2026-01-01T09:00:00.001Z')), undefined);
    // notBefore is inclusive.
    assert.equal(iso(latestSlot(spec, restartedAt, utc('2026-01-01T09:00:00Z'))), '2026-01-01T09:00:00.000Z');
  });

  it('cron with a time zone', () => {
    const spec = { cron: '0 3 * * *', timezone: 'America/New_York' };
    assert.equal(iso(latestSlot(spec, utc('2026-03-09T06:59:59Z'))), '2026-03-08T07:00:00.000Z');
    assert.equal(iso(latestSlot(spec, utc('2026-03-09T07:00:00Z'))), '2026-03-09T07:00:00.000Z');
  });

  it('every: floor to the interval, inclusive bounds', () => {
    const spec = { everyMs: 60_000 };
    const t = utc('2026-01-01T12:00:00.000Z');
    assert.equal(latestSlot(spec, t), t);
    assert.equal(latestSlot(spec, t + 59_999), t);
    assert.equal(latestSlot(spec, t - 1), t - 60_000);
    assert.equal(latestSlot(spec, t + 30_000, t), t);
    assert.equal(latestSlot(spec, t + 30_000, t + 1), undefined);
  });

  it('latestSlot and nextSlot agree: next(latest(x)) is the first slot after x', () => {
    for (const spec of [{ cron: '13 */3 * * *' }, { cron: '*/7 * * * * *', timezone: 'Asia/Kolkata' }, { everyMs: 90_000 }]) {
      let at = utc('2026-05-05T05:05:05.555Z');
      for (let i = 0; i < 20; i++) {
        const latest = latestSlot(spec, at)!;
        const next = nextSlot(spec, at)!;
        assert.ok(latest <= at && next > at);
        assert.equal(nextSlot(spec, latest), next, JSON.stringify(spec));
        at = next + 1234;
      }
    }
  });
});
