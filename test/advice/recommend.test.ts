/**
 * The advisor's rules on synthetic histories (issue 9): each rule fires on the history it is for, with its
 * evidence, and stays quiet on the nearby histories it is not for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { niceCeil } from '../../src/advice/advice-rules.ts';
import { recommend, type Recommendation, type RecommendationTopic, type TaskProfile } from '../../src/advice/recommend.ts';
import { TaskStats, type RunObservation } from '../../src/advice/task-stats.ts';
import { MIN_RUNS_FOR_ADVICE } from '../../src/advice/thresholds.ts';
import { ErrorCodes } from '../../src/errors.ts';

const RETRY = { attempts: 3, backoff: 'exponential', delayMs: 1000, maxDelayMs: 60_000, jitter: 0.2 } as const;
const HOST = { cores: 2 };

function profile(extra: Partial<TaskProfile> = {}): TaskProfile {
  return { kind: 'handler', timeoutMs: 30_000, retry: { ...RETRY }, ...extra };
}

/** A history of `n` attempts; `each(i)` overrides the defaults (a 100 ms success on the first attempt). */
function history(n: number, each: (i: number) => Partial<RunObservation> = () => ({})): TaskStats {
  const stats = new TaskStats('job');
  for (let i = 0; i < n; i++) stats.observe({ name: 'job', outcome: 'succeeded', attempt: 1, at: 1_000 + i, durationMs: 100, ...each(i) });
  return stats;
}

function topic(recs: Recommendation[], t: RecommendationTopic): Recommendation[] {
  return recs.filter((r) => r.topic === t);
}

function only(stats: TaskStats, def: TaskProfile, t: RecommendationTopic): Recommendation | undefined {
  const advice = recommend('job', stats, def, HOST);
  assert.equal(advice.enoughData, true);
  const found = topic(advice.recommendations, t);
  assert.ok(found.length <= 1, `one ${t} recommendation at most`);
  for (const r of advice.recommendations) {
    assert.ok(r.advice.length > 20, 'advice is a sentence');
    assert.ok(Object.keys(r.evidence).length > 0, `${r.topic} carries evidence`);
    for (const v of Object.values(r.evidence)) assert.ok(typeof v === 'string' || Number.isFinite(v), `${r.topic}: ${v}`);
  }
  return found[0];
}

describe('recommend: too little history', () => {
  it(`below ${MIN_RUNS_FOR_ADVICE} attempts says so and gives only definition-based advice`, () => {
    const def = profile({ timeoutMs: 0, streaming: true, schedules: [{ id: 'every-minute', intervalMs: 60_000, overlap: 'allow' }] });
    for (const stats of [undefined, history(MIN_RUNS_FOR_ADVICE - 1, () => ({ durationMs: 600_000, cpuMs: 600_000 }))]) {
      const advice = recommend('job', stats, def, HOST);
      assert.equal(advice.enoughData, false);
      assert.match(advice.note!, new RegExp(`fewer than ${MIN_RUNS_FOR_ADVICE}`));
      assert.deepEqual(advice.recommendations.map((r) => r.topic).sort(), ['schedule', 'streaming', 'timeout']);
      assert.equal(topic(advice.recommendations, 'timeout')[0]!.value, undefined, 'no value without measurements');
      assert.deepEqual(topic(advice.recommendations, 'schedule')[0]!.value, { overlap: 'skip' });
    }
    assert.deepEqual(recommend('job', history(5), profile(), HOST).recommendations, [], 'a sound definition: nothing to say');
  });

  it(`from ${MIN_RUNS_FOR_ADVICE} attempts on, the measured rules apply; basedOn names the window`, () => {
    const advice = recommend('job', history(MIN_RUNS_FOR_ADVICE), profile(), HOST);
    assert.equal(advice.enoughData, true);
    assert.equal(advice.note, undefined);
    assert.deepEqual(advice.basedOn, { runs: 20, window: 20, since: 1_000 });
  });

  it('accepts a summary as well as the record, and refuses a bad definition or host', () => {
    const stats = history(30);
    assert.deepEqual(recommend('job', stats.summary(), profile(), HOST), recommend('job', stats, profile(), HOST));
    const bad: Array<[unknown, unknown]> = [[null, HOST], [{ ...profile(), kind: 'lambda' }, HOST], [{ ...profile(), timeoutMs: -1 }, HOST], [profile(), { cores: 0 }], [profile(), null]];
    for (const [def, host] of bad) assert.throws(() => recommend('job', stats, def as TaskProfile, host as { cores: number }), { code: ErrorCodes.INVALID_OPTION });
  });
});

describe('recommend: executor', () => {
  it('a handler whose runs crash threads → command (subprocess isolation)', () => {
    const r = only(history(100, (i) => (i < 2 ? { outcome: 'failed', cause: 'crash' } : {})), profile(), 'executor')!;
    assert.equal(r.value, 'command');
    assert.equal(r.evidence.crashes, 2);
    assert.equal(r.evidence.crashRate, 0.02);
  });

  it('one out-of-memory run is enough; so is heavy memory; so is a long median for a handler', () => {
    assert.equal(only(history(100, (i) => (i === 0 ? { outcome: 'retrying', cause: 'out_of_memory' } : {})), profile(), 'executor')?.value, 'command');
    assert.equal(only(history(30, () => ({ peakRssMb: 900 })), profile(), 'executor')?.value, 'command');
    assert.equal(only(history(30, () => ({ durationMs: 90_000 })), profile({ timeoutMs: 0 }), 'executor')?.value, 'command');
  });

  it('CPU-heavy inline code → handler; short CPU-heavy commands → handler', () => {
    const inline = only(history(30, () => ({ durationMs: 200, cpuMs: 190 })), profile({ kind: 'inline' }), 'executor')!;
    assert.equal(inline.value, 'handler');
    assert.equal(inline.evidence.cpuPerSecond, 0.95);
    const command = only(history(30, () => ({ durationMs: 200, cpuMs: 180 })), profile({ kind: 'command' }), 'executor')!;
    assert.equal(command.value, 'handler');
    assert.equal(command.evidence.p50Ms, 200);
  });

  it('stays quiet where the kind fits (and fires exactly at the crash threshold)', () => {
    const quiet: Array<[TaskStats, TaskProfile]> = [
      [history(100, () => ({ cpuMs: 95, peakRssMb: 60 })), profile()], // healthy short handler
      [history(100, (i) => (i === 0 ? { outcome: 'failed', cause: 'crash' } : {})), profile()], // 1 in 100 reaches the 1 % threshold
      [history(30, () => ({ durationMs: 5_000, cpuMs: 4_800 })), profile({ kind: 'command' })], // long CPU-heavy command
      [history(30, () => ({ durationMs: 200, cpuMs: 20 })), profile({ kind: 'command' })], // short but waits
      [history(30, () => ({ durationMs: 200, cpuMs: 10 })), profile({ kind: 'inline' })], // inline I/O
      [history(100, (i) => ({ durationMs: 200, cpuMs: 180, ...(i < 3 ? { outcome: 'failed' as const, cause: 'crash' as const } : {}) })), profile({ kind: 'command' })], // crashing: keep it isolated
    ];
    const fired = quiet.map(([stats, def]) => only(stats, def, 'executor')?.value);
    assert.deepEqual(fired, [undefined, 'command', undefined, undefined, undefined, undefined]);
    assert.equal(only(history(101, (i) => (i === 0 ? { outcome: 'failed', cause: 'crash' } : {})), profile(), 'executor'), undefined, '1 in 101 is below it');
  });
});

describe('recommend: timeout', () => {
  const p99of = (p99: number) => history(100, (i) => ({ durationMs: i < 98 ? p99 / 2 : p99 }));

  it('none set → max(p99 × 3, p99 + 1 s), rounded up', () => {
    const r = only(p99of(400), profile({ timeoutMs: 0 }), 'timeout')!;
    assert.deepEqual(r.value, { timeout: 2_000 });
    assert.deepEqual([r.evidence.p99Ms, r.evidence.timeoutMs], [400, 0]);
    assert.deepEqual(only(p99of(20_000), profile({ timeoutMs: 0 }), 'timeout')!.value, { timeout: 60_000 });
  });

  it('attempts hit the timeout → raise it, at least to twice the current one', () => {
    const stats = history(100, (i) => (i < 5 ? { outcome: 'timed_out', durationMs: 1_000 } : { durationMs: i < 98 ? 300 : 900 }));
    const r = only(stats, profile({ timeoutMs: 1_000 }), 'timeout')!;
    assert.deepEqual(r.value, { timeout: 3_000 });
    assert.deepEqual([r.evidence.timeouts, r.evidence.timeoutRate], [5, 0.05]);
  });

  it('p99 within 1.5× of the timeout → raise; over 20× what runs need → lower', () => {
    assert.deepEqual(only(p99of(800), profile({ timeoutMs: 1_000 }), 'timeout')!.value, { timeout: 3_000 });
    const loose = only(p99of(100), profile({ timeoutMs: 3_600_000 }), 'timeout')!;
    assert.deepEqual(loose.value, { timeout: 2_000 });
  });

  it('stays quiet when the timeout fits', () => {
    assert.equal(only(p99of(800), profile({ timeoutMs: 5_000 }), 'timeout'), undefined);
    assert.equal(only(p99of(100), profile({ timeoutMs: 30_000 }), 'timeout'), undefined, '15× is not over 20×');
    assert.equal(only(history(100, () => ({ durationMs: 1_000 })), profile({ timeoutMs: 5_000 }), 'timeout'), undefined);
  });

  it('timeouts far above what finished runs take are hangs: keep the timeout, find the hang (no value)', () => {
    const stats = history(100, (i) => (i < 3 ? { outcome: 'timed_out', durationMs: 5_000 } : {}));
    const r = only(stats, profile({ timeoutMs: 5_000 }), 'timeout')!;
    assert.equal(r.value, undefined);
    assert.match(r.advice, /hang/);
    assert.deepEqual([r.evidence.timeouts, r.evidence.p99Ms], [3, 100]);
    const retried = history(100, (i) => (i < 6 ? { outcome: 'retrying', cause: 'timeout', durationMs: 5_000 } : {}));
    assert.equal(only(retried, profile({ timeoutMs: 5_000 }), 'retry'), undefined, 'nor a longer timeout in place of retries');
  });

  it('niceCeil rounds to figures a person writes', () => {
    assert.deepEqual([niceCeil(1), niceCeil(101), niceCeil(1_001), niceCeil(59_001), niceCeil(600_001)], [100, 200, 2_000, 60_000, 660_000]);
  });
});

describe('recommend: concurrency', () => {
  const cpuShare = (share: number, extra: (i: number) => Partial<RunObservation> = () => ({})) =>
    history(50, (i) => ({ durationMs: 100, cpuMs: 100 * share, ...extra(i) }));

  it('CPU-bound → the core count (1 for inline code)', () => {
    const r = only(cpuShare(0.95), profile(), 'concurrency')!;
    assert.deepEqual(r.value, { concurrency: 2 });
    assert.deepEqual([r.evidence.cpuPerSecond, r.evidence.cores, r.evidence.current], [0.95, 2, 'global limit only']);
    assert.deepEqual(only(cpuShare(0.95), profile({ concurrency: 8 }), 'concurrency')!.value, { concurrency: 2 });
    assert.deepEqual(only(cpuShare(0.95), profile({ kind: 'inline' }), 'concurrency')!.value, { concurrency: 1 });
  });

  it('waiting work → cores × 0.8 / CPU share, and the adaptive option', () => {
    const r = only(cpuShare(0.05), profile(), 'concurrency')!;
    assert.deepEqual(r.value, { concurrency: 32 });
    assert.match(r.advice, /adaptive: true, min: 1, max: 64/);
    const starved = only(cpuShare(0.05, () => ({ waitMs: 500 })), profile({ concurrency: 4 }), 'concurrency')!;
    assert.deepEqual(starved.value, { concurrency: 32 });
    assert.equal(starved.evidence.waitP95Ms, 500);
  });

  it('stays quiet when the limit fits, when nobody waits for a slot, or without CPU figures', () => {
    assert.equal(only(cpuShare(0.95), profile({ concurrency: 2 }), 'concurrency'), undefined);
    assert.equal(only(cpuShare(0.05, () => ({ waitMs: 5 })), profile({ concurrency: 4 }), 'concurrency'), undefined);
    assert.equal(only(cpuShare(0.05), profile({ concurrency: 40 }), 'concurrency'), undefined);
    assert.equal(only(history(50), profile(), 'concurrency'), undefined);
  });
});

describe('recommend: retry', () => {
  it('failures that are mostly timeouts → raise the timeout, not the attempts', () => {
    // Finished runs take 400 ms against a 1 s timeout: the runs that time out are slow ones, not hung ones.
    const stats = history(100, (i) => (i < 6 ? { outcome: 'retrying', cause: 'timeout', durationMs: 1_000 } : i < 8 ? { outcome: 'retrying', durationMs: 400 } : { durationMs: 400 }));
    const r = only(stats, profile({ timeoutMs: 1_000 }), 'retry')!;
    assert.deepEqual(r.value, { timeout: 2_000 });
    assert.deepEqual([r.evidence.timeouts, r.evidence.failedAttempts], [6, 8]);
  });

  it('failures that never succeed on a retry → fewer attempts and PermanentError', () => {
    const stats = history(100, (i) => (i < 6 ? { outcome: 'failed', attempt: 3 } : i < 18 ? { outcome: 'retrying', attempt: 1 + (i % 2) } : {}));
    const r = only(stats, profile(), 'retry')!;
    assert.deepEqual(r.value, { retry: { attempts: 1 } });
    assert.match(r.advice, /PermanentError/);
    assert.deepEqual([r.evidence.exhaustedRetries, r.evidence.recoveredByRetry], [6, 0]);
  });

  it('failures that succeed on a retry but sometimes run out → more attempts', () => {
    const stats = history(100, (i) => (i < 8 ? { attempt: 2 } : i < 10 ? { outcome: 'failed', attempt: 3 } : i < 26 ? { outcome: 'retrying' } : {}));
    const r = only(stats, profile(), 'retry')!;
    assert.deepEqual(r.value, { retry: { attempts: 5 } });
  });

  it('stays quiet when retries work, when nothing is retried, or when failures are permanent', () => {
    assert.equal(only(history(100, (i) => (i < 8 ? { attempt: 2 } : i < 16 ? { outcome: 'retrying' } : {})), profile(), 'retry'), undefined);
    assert.equal(only(history(100, (i) => (i < 6 ? { outcome: 'failed' } : {})), profile({ retry: { ...RETRY, attempts: 1 } }), 'retry'), undefined);
    assert.equal(only(history(100, (i) => (i < 6 ? { outcome: 'failed', attempt: 2, cause: 'permanent' } : {})), profile(), 'retry'), undefined);
    assert.equal(only(history(100, (i) => (i < 4 ? { outcome: 'retrying', cause: 'timeout' } : {})), profile(), 'retry'), undefined, 'fewer than 5');
  });
});

describe('recommend: streaming', () => {
  const longChatty = history(30, () => ({ durationMs: 30_000, outputLines: 500 }));

  it('long runs with much output → rt.start', () => {
    const r = only(longChatty, profile({ timeoutMs: 120_000 }), 'streaming')!;
    assert.equal(r.value, 'rt.start');
    assert.deepEqual([r.evidence.p50Ms, r.evidence.meanOutputLines], [30_000, 500]);
  });

  it('stays quiet when already streamed, when short, or when quiet', () => {
    assert.equal(only(longChatty, profile({ timeoutMs: 120_000, streaming: true }), 'streaming'), undefined);
    assert.equal(only(history(30, () => ({ durationMs: 2_000, outputLines: 500 })), profile(), 'streaming'), undefined);
    assert.equal(only(history(30, () => ({ durationMs: 30_000, outputLines: 5 })), profile({ timeoutMs: 120_000 }), 'streaming'), undefined);
  });
});

describe('recommend: schedule', () => {
  it('runs longer than the interval → overlap skip or a longer interval', () => {
    const stats = history(30, () => ({ durationMs: 90_000 }));
    const r = only(stats, profile({ timeoutMs: 600_000, schedules: [{ id: 'every-minute', intervalMs: 60_000, overlap: 'queue' }] }), 'schedule')!;
    assert.deepEqual(r.value, { overlap: 'skip', every: 135_000 });
    assert.deepEqual([r.evidence.schedule, r.evidence.intervalMs, r.evidence.p95Ms], ['every-minute', 60_000, 90_000]);
  });

  it('measured overlap flags a schedule even without a known interval', () => {
    const stats = history(30);
    for (let i = 0; i < 20; i++) stats.observeOverlap('cron-1', i % 4 === 0);
    const r = only(stats, profile({ schedules: [{ id: 'cron-1', overlap: 'allow' }] }), 'schedule')!;
    assert.deepEqual(r.value, { overlap: 'skip', every: 200 });
    assert.deepEqual([r.evidence.slots, r.evidence.overlappedSlots, r.evidence.overlapRate], [20, 5, 0.25]);
  });

  it("with overlap 'skip', many skipped slots → a longer interval", () => {
    const stats = history(30, () => ({ durationMs: 90_000 }));
    for (let i = 0; i < 20; i++) stats.observeOverlap('every-minute', i % 3 === 0);
    const r = only(stats, profile({ timeoutMs: 600_000, schedules: [{ id: 'every-minute', intervalMs: 60_000, overlap: 'skip' }] }), 'schedule')!;
    assert.deepEqual(r.value, { every: 135_000 });
  });

  it('stays quiet when runs fit their slots', () => {
    const stats = history(30, () => ({ durationMs: 10_000 }));
    for (let i = 0; i < 20; i++) stats.observeOverlap('every-minute', false);
    assert.equal(only(stats, profile({ schedules: [{ id: 'every-minute', intervalMs: 60_000, overlap: 'queue' }] }), 'schedule'), undefined);
    const skipped = history(30, () => ({ durationMs: 90_000 }));
    for (let i = 0; i < 20; i++) skipped.observeOverlap('every-minute', i % 10 === 0);
    assert.equal(only(skipped, profile({ timeoutMs: 600_000, schedules: [{ id: 'every-minute', intervalMs: 60_000, overlap: 'skip' }] }), 'schedule'), undefined, "10 % skipped with 'skip' is fine");
  });
});
