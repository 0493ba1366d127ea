import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adviseFromTraits, LONG_RUNNING_MS, type Pattern, type TaskTraits } from '../src/advisor.ts';
import { ErrorCodes, isTroupeError } from '../src/errors.ts';
import { createRuntime } from '../src/runtime.ts';

const pattern = (traits: TaskTraits): Pattern => adviseFromTraits(traits).pattern;

describe('adviseFromTraits', () => {
  it('recommends each pattern from its trait, with the call and a reason', () => {
    const cases: Array<[TaskTraits, Pattern, string]> = [
      [{ recurring: true }, 'schedule', 'rt.schedule'],
      [{ streaming: true }, 'start', 'rt.start'],
      [{ expectedDurationMs: LONG_RUNNING_MS + 1 }, 'start', 'rt.start'],
      [{ count: 10 }, 'runAll', 'rt.runAll'],
      [{ needsResult: false }, 'enqueue', 'rt.enqueue'],
      [{ highFrequency: true }, 'pool', 'rt.run'],
      [{}, 'run', 'await rt.run'],
    ];
    for (const [traits, expected, call] of cases) {
      const advice = adviseFromTraits(traits);
      assert.equal(advice.pattern, expected, JSON.stringify(traits));
      assert.ok(advice.call.startsWith(call), advice.call);
      assert.ok(advice.reason.length > 10);
    }
  });

  it('checks the rules in order: the first match wins', () => {
    const all: TaskTraits = { recurring: true, streaming: true, expectedDurationMs: 10 * LONG_RUNNING_MS, count: 5, needsResult: false, highFrequency: true };
    assert.equal(pattern(all), 'schedule');
    assert.equal(pattern({ ...all, recurring: false }), 'start');
    assert.equal(pattern({ ...all, recurring: false, streaming: false }), 'start', 'long-running also means start');
    assert.equal(pattern({ ...all, recurring: false, streaming: false, expectedDurationMs: 10 }), 'runAll');
    assert.equal(pattern({ ...all, recurring: false, streaming: false, expectedDurationMs: 10, count: 1 }), 'enqueue');
    assert.equal(pattern({ ...all, recurring: false, streaming: false, expectedDurationMs: 10, count: 1, needsResult: true }), 'pool');
  });

  it('treats exactly LONG_RUNNING_MS as short, one above as long', () => {
    assert.equal(pattern({ expectedDurationMs: LONG_RUNNING_MS }), 'run');
    assert.equal(pattern({ expectedDurationMs: LONG_RUNNING_MS + 1 }), 'start');
    assert.match(adviseFromTraits({ expectedDurationMs: LONG_RUNNING_MS + 1 }).reason, /60 s/);
  });

  it('names the count in the runAll reason and treats count 1 as a single run', () => {
    assert.match(adviseFromTraits({ count: 7 }).reason, /^7 runs/);
    assert.equal(pattern({ count: 1 }), 'run');
  });

  it('refuses bad traits with TROUPE_ERR_INVALID_OPTION', () => {
    const bad: unknown[] = [null, undefined, 'fast', [], { expectedDurationMs: -1 }, { expectedDurationMs: NaN }, { expectedDurationMs: '5s' }, { count: 0 }, { count: 1.5 }, { count: '3' }];
    for (const traits of bad) assert.throws(() => adviseFromTraits(traits as TaskTraits), { code: ErrorCodes.INVALID_OPTION }, JSON.stringify(traits));
  });

  it('refuses an unknown trait and a flag that is not a boolean, naming it', () => {
    const bad: [unknown, string][] = [
      [{ bogus: 1 }, 'traits.bogus'],
      [{ stremaing: true }, 'traits.stremaing'],
      [{ recurring: 'yes' }, 'traits.recurring'],
      [{ streaming: 1 }, 'traits.streaming'],
      [{ needsResult: 'false' }, 'traits.needsResult'],
      [{ highFrequency: null }, 'traits.highFrequency'],
    ];
    for (const [traits, path] of bad) {
      assert.throws(() => adviseFromTraits(traits as TaskTraits), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION && e.message.startsWith(`Expected \`${path}\``), JSON.stringify(traits));
    }
    assert.equal(pattern({ recurring: false, streaming: false, needsResult: true, highFrequency: false }), 'run');
  });

  it('reads only the traits given, never inherited ones', () => {
    const inherited = Object.create({ recurring: true, streaming: true, count: 5 }) as TaskTraits;
    assert.equal(pattern(inherited), 'run');
    assert.equal(pattern(Object.assign(Object.create({ recurring: true }) as TaskTraits, { needsResult: false })), 'enqueue');
    // A JSON body's `__proto__` is an own key, and no trait.
    assert.throws(() => adviseFromTraits(JSON.parse('{"__proto__":{"recurring":true}}') as TaskTraits), { code: ErrorCodes.INVALID_OPTION });
  });

  it('rt.advise refuses the same traits', async () => {
    await using rt = await createRuntime({ store: 'memory', maintenance: false });
    assert.throws(() => rt.advise({ bogus: 1 } as TaskTraits), { code: ErrorCodes.INVALID_OPTION });
    assert.throws(() => rt.advise({ streaming: 'yes' } as unknown as TaskTraits), { code: ErrorCodes.INVALID_OPTION });
  });
});
