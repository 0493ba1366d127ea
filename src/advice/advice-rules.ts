/**
 * The advisor's rules. Each reads a statistics summary and the task's definition and returns zero or more
 * recommendations; a rule that has no evidence (no CPU figures, too few failures) says nothing rather than guess.
 *
 * executor     crashes, heavy memory or (for handlers) long runs → a subprocess; CPU-heavy work on the main
 *              thread → a handler; short CPU-heavy commands → a handler on the warm pool
 * timeout      none, too tight (timeouts seen, or p99 near it) or far too loose → max(p99 × 3, p99 + 1 s);
 *              timeouts far above the p99 of finished runs are hangs: keep the timeout, find the hang
 * concurrency  CPU-bound → cores; waiting work → cores × 0.8 / CPU-per-second (or adaptive)
 * retry        timeouts (of slow runs) dominate → raise the timeout; retries never help → fewer attempts + PermanentError;
 *              retries help but run out → more attempts
 * streaming    long runs with much output → rt.start
 * schedule     runs outlast the interval or overlap their previous run → overlap 'skip' or a longer interval
 */
import { adviseFromTraits } from '../advisor.ts';
import type { HostProfile, Recommendation, TaskProfile } from './recommend.ts';
import type { TaskStatsSummary } from './task-stats.ts';
import { ADVICE_THRESHOLDS as TH } from './thresholds.ts';

const ms = (v: number): number => Math.round(v);
const rate = (v: number): number => Math.round(v * 1000) / 1000;

/** Rounds a duration up to a figure a person would write: 100 ms steps below 1 s, 1 s below 10 min, then minutes. */
export function niceCeil(value: number): number {
  const step = value <= 1_000 ? 100 : value <= 600_000 ? 1_000 : 60_000;
  return Math.ceil(value / step) * step;
}

/** The timeout the advisor suggests: max(p99 × 3, p99 + 1 s); when runs are cut by the current one, at least twice it. */
export function suggestTimeout(s: TaskStatsSummary, def: TaskProfile): number | undefined {
  const d = s.durationMs;
  if (!d) return undefined;
  let base = Math.max(d.p99 * 3, d.p99 + 1_000);
  if (def.timeoutMs > 0 && s.timeoutRate >= TH.timeoutRate && !timeoutsLookHung(s, def)) base = Math.max(base, def.timeoutMs * 2);
  return niceCeil(base);
}

/**
 * Runs that finish take under a third of the timeout at p99, yet some hit it: those are hung runs, not slow ones,
 * and a longer timeout (or more attempts) would only keep them waiting longer.
 */
export function timeoutsLookHung(s: TaskStatsSummary, def: TaskProfile): boolean {
  return def.timeoutMs > 0 && s.durationMs !== undefined && s.durationMs.p99 * 3 < def.timeoutMs;
}

/** Every measured rule, in topic order. */
export function measuredRules(s: TaskStatsSummary, def: TaskProfile, host: HostProfile): Recommendation[] {
  return [
    ...executorRule(s, def),
    ...timeoutRule(s, def),
    ...concurrencyRule(s, def, host),
    ...retryRule(s, def),
    ...streamingRule(s, def),
    ...scheduleRule(s, def),
  ];
}

/** Thread, subprocess or main thread, from crashes, memory, duration and CPU share. */
export function executorRule(s: TaskStatsSummary, def: TaskProfile): Recommendation[] {
  const p50 = s.durationMs?.p50;
  const cpu = s.cpuPerSecond;
  const rss = s.peakRssMb?.max;
  const evidence: Record<string, number | string> = { kind: def.kind, window: s.window };
  if (p50 !== undefined) evidence.p50Ms = ms(p50);
  if (cpu !== undefined) evidence.cpuPerSecond = rate(cpu);
  if (rss !== undefined) evidence.peakRssMb = Math.round(rss);
  const crashes = s.causes.crash + s.causes.out_of_memory;
  if (def.kind !== 'command') {
    const why: string[] = [];
    if (s.crashRate >= TH.crashRate || s.causes.out_of_memory > 0) {
      why.push(`${crashes} of ${s.window} attempts crashed their thread${s.causes.out_of_memory ? ` (${s.causes.out_of_memory} out of memory)` : ''}`);
      evidence.crashes = crashes;
      evidence.crashRate = rate(s.crashRate);
    }
    if (rss !== undefined && rss >= TH.memoryHeavyMb) why.push(`runs reach ${Math.round(rss)} MiB, which would share the runtime's memory`);
    if (def.kind === 'handler' && p50 !== undefined && p50 >= TH.longRunMs) why.push(`a median run takes ${Math.round(p50 / 1000)} s and holds a pool thread all that time`);
    if (why.length) {
      return [{
        topic: 'executor',
        advice: `Run it as a command (a subprocess): ${why.join('; ')}. A subprocess isolates crashes and memory, and its whole process tree can be ended.`,
        value: 'command',
        evidence,
      }];
    }
    if (def.kind === 'inline' && cpu !== undefined && cpu >= TH.cpuHeavy) {
      return [{
        topic: 'executor',
        advice: `Run it as a handler on the thread pool: it is busy on the CPU ${Math.round(cpu * 100)} % of its run time, and inline code blocks the runtime's event loop while it computes.`,
        value: 'handler',
        evidence,
      }];
    }
    return [];
  }
  const isolated = s.crashRate < TH.crashRate && s.causes.out_of_memory === 0 && (rss === undefined || rss < TH.memoryHeavyMb);
  if (p50 !== undefined && p50 < TH.shortRunMs && cpu !== undefined && cpu >= TH.cpuHeavy && isolated) {
    return [{
      topic: 'executor',
      advice: `If the code can run as JS/TS, make it a handler on the thread pool: a median run is ${ms(p50)} ms of mostly CPU work, so each process start (milliseconds for a binary, ~80 ms for node) is a large share of it, and a warm thread pays none.`,
      value: 'handler',
      evidence,
    }];
  }
  return [];
}

/** A timeout from the observed p99. */
export function timeoutRule(s: TaskStatsSummary, def: TaskProfile): Recommendation[] {
  const d = s.durationMs;
  const suggested = suggestTimeout(s, def);
  if (!d || suggested === undefined) return [];
  const evidence: Record<string, number | string> = { p50Ms: ms(d.p50), p99Ms: ms(d.p99), maxMs: ms(d.max), samples: d.samples, timeoutMs: def.timeoutMs };
  const rec = (advice: string): Recommendation[] => [{ topic: 'timeout', advice, value: { timeout: suggested }, evidence }];
  if (def.timeoutMs === 0) {
    return rec(`No timeout is set, so a hung run holds its slot until it is cancelled. Runs finish within ${ms(d.p99)} ms at p99: set \`timeout: ${suggested}\` (ms).`);
  }
  if (s.timeoutRate >= TH.timeoutRate) {
    evidence.timeouts = s.causes.timeout;
    evidence.timeoutRate = rate(s.timeoutRate);
    if (timeoutsLookHung(s, def)) {
      return [{
        topic: 'timeout',
        advice: `${Math.round(s.timeoutRate * 1000) / 10} % of attempts hit the ${def.timeoutMs} ms timeout while runs that finish take ${ms(d.p99)} ms at p99: those runs hang rather than run slow. Keep the timeout and look for the hang (a lock, a call without its own timeout); a longer one would only wait longer.`,
        evidence,
      }];
    }
    return rec(`${Math.round(s.timeoutRate * 1000) / 10} % of attempts hit the ${def.timeoutMs} ms timeout, so the true p99 is above it (${ms(d.p99)} ms among runs that finished). Raise it to ${suggested} ms.`);
  }
  if (def.timeoutMs < d.p99 * TH.tightTimeoutFactor) {
    return rec(`The ${def.timeoutMs} ms timeout is within ${TH.tightTimeoutFactor}× of the p99 (${ms(d.p99)} ms): a slightly slow run will be cut. Raise it to ${suggested} ms.`);
  }
  if (def.timeoutMs > suggested * TH.looseTimeoutFactor && def.timeoutMs - suggested >= 60_000) {
    return rec(`The ${def.timeoutMs} ms timeout is over ${TH.looseTimeoutFactor}× what runs need (p99 ${ms(d.p99)} ms): a hung run is noticed late. ${suggested} ms is ample.`);
  }
  return [];
}

/** A concurrency limit from the measured CPU share of a run. */
export function concurrencyRule(s: TaskStatsSummary, def: TaskProfile, host: HostProfile): Recommendation[] {
  const cpu = s.cpuPerSecond;
  if (cpu === undefined) return [];
  const cores = Math.max(1, Math.floor(host.cores));
  const cpuBound = cpu >= TH.cpuBound;
  const suggested = cpuBound
    ? (def.kind === 'inline' ? 1 : cores)
    : Math.min(TH.maxSuggestedConcurrency, Math.max(cores, Math.ceil((0.8 * cores) / Math.max(cpu, 0.001))));
  const current = def.concurrency;
  const waitP95 = s.waitMs?.p95 ?? 0;
  const p50 = s.durationMs?.p50 ?? 0;
  const starved = current !== undefined && current < suggested / 2 && waitP95 > p50;
  if (!(current === undefined || current > suggested * 1.5 || starved)) return [];
  const evidence: Record<string, number | string> = { cpuPerSecond: rate(cpu), cores, suggested, current: current ?? 'global limit only' };
  if (s.waitMs) evidence.waitP95Ms = ms(waitP95);
  if (s.durationMs) evidence.p50Ms = ms(p50);
  let advice: string;
  if (cpuBound) {
    advice = `Runs are CPU-bound (${Math.round(cpu * 100)} % of run time on the CPU): more than ${suggested} at once only queue for the ${cores} cores. Set \`concurrency: ${suggested}\`.`;
  } else {
    const kind = cpu < TH.ioBound ? 'mostly wait' : 'wait about half the time';
    advice = `Runs ${kind} (${Math.round(cpu * 100)} % of run time on the CPU): about ${suggested} at once keep the ${cores} cores near 80 %.` +
      (starved ? ` Runs wait ${ms(waitP95)} ms for a slot at p95, longer than a median run.` : '') +
      ` Set \`concurrency: ${suggested}\`, or let the limit follow the downstream with \`concurrency: { adaptive: true, min: 1, max: ${suggested * 2} }\`.`;
  }
  return [{ topic: 'concurrency', advice, value: { concurrency: suggested }, evidence }];
}

/** Retry settings from the failure pattern. */
export function retryRule(s: TaskStatsSummary, def: TaskProfile): Recommendation[] {
  const c = s.causes;
  const failures = c.error + c.timeout + c.crash + c.out_of_memory + c.permanent;
  const attempts = def.retry.attempts;
  const evidence: Record<string, number | string> = {
    attempts, failedAttempts: failures, timeouts: c.timeout, recoveredByRetry: s.recoveredByRetry, exhaustedRetries: s.exhaustedRetries,
  };
  const out: Recommendation[] = [];
  if (attempts > 1 && c.timeout >= TH.minFailures && c.timeout * 2 >= failures && !timeoutsLookHung(s, def)) {
    const suggested = suggestTimeout(s, def);
    out.push({
      topic: 'retry',
      advice: `${c.timeout} of ${failures} failed attempts were timeouts: a retry repeats the same wait. Raise the timeout${suggested ? ` (to ${suggested} ms)` : ''} rather than the attempts.`,
      ...(suggested ? { value: { timeout: suggested } } : {}),
      evidence,
    });
    return out;
  }
  if (attempts > 1 && s.exhaustedRetries >= TH.minFailures && s.recoveredByRetry * 10 <= s.exhaustedRetries) {
    out.push({
      topic: 'retry',
      advice: `${s.exhaustedRetries} runs failed on all their attempts and ${s.recoveredByRetry} succeeded on a retry: retries do not help this task. Use \`retry: { attempts: 1 }\`, and throw PermanentError for errors that cannot recover.`,
      value: { retry: { attempts: 1 } },
      evidence,
    });
  } else if (s.recoveredByRetry >= TH.minFailures && s.exhaustedRetries > 0 && s.recoveredByRetry >= s.exhaustedRetries) {
    const more = Math.min(10, attempts + 2);
    out.push({
      topic: 'retry',
      advice: `${s.recoveredByRetry} runs succeeded on a retry but ${s.exhaustedRetries} ran out of attempts: the failures are transient. Raise attempts from ${attempts} to ${more}.`,
      value: { retry: { attempts: more } },
      evidence,
    });
  }
  return out;
}

/** Long runs with much output should stream. */
export function streamingRule(s: TaskStatsSummary, def: TaskProfile): Recommendation[] {
  const d = s.durationMs;
  const lines = s.outputLines;
  if (def.streaming || !d || !lines || d.p50 < TH.streamMs || lines.mean < TH.streamLines) return [];
  return [{
    topic: 'streaming',
    advice: `Runs take ${Math.round(d.p50 / 1000)} s at the median and print ${Math.round(lines.mean)} lines on average: start them with \`rt.start(name, input)\` and read the lines as they come instead of awaiting the end.`,
    value: 'rt.start',
    evidence: { p50Ms: ms(d.p50), meanOutputLines: Math.round(lines.mean), maxOutputLines: lines.max },
  }];
}

/** Schedules whose runs outlast their interval or overlap their previous run. */
export function scheduleRule(s: TaskStatsSummary, def: TaskProfile): Recommendation[] {
  const ids = new Set([...(def.schedules ?? []).map((x) => x.id), ...s.schedules.map((x) => x.id)]);
  const p95 = s.durationMs?.p95;
  const out: Recommendation[] = [];
  for (const id of ids) {
    const sched = def.schedules?.find((x) => x.id === id);
    const seen = s.schedules.find((x) => x.id === id);
    const interval = sched?.intervalMs;
    const outlasts = interval !== undefined && p95 !== undefined && p95 > interval;
    const overlapping = seen !== undefined && seen.slots >= 10 && seen.rate >= TH.overlapRate;
    if (!outlasts && !overlapping) continue;
    const every = p95 !== undefined ? niceCeil(p95 * 1.5) : undefined;
    const evidence: Record<string, number | string> = { schedule: id, overlap: sched?.overlap ?? 'unknown' };
    if (interval !== undefined) evidence.intervalMs = interval;
    if (p95 !== undefined) evidence.p95Ms = ms(p95);
    if (seen) Object.assign(evidence, { slots: Math.round(seen.slots), overlappedSlots: Math.round(seen.overlapped), overlapRate: rate(seen.rate) });
    const facts = [
      outlasts ? `p95 run ${ms(p95!)} ms against a slot every ${interval} ms` : '',
      seen && overlapping ? `${Math.round(seen.rate * 100)} % of slots came while the previous run was active` : '',
    ].filter(Boolean).join('; ');
    if (sched?.overlap !== 'skip') {
      out.push({
        topic: 'schedule',
        advice: `Runs of schedule \`${id}\` outlast its slots (${facts}): set \`overlap: 'skip'\`${every ? `, or a slot interval of at least ${every} ms` : ''}.`,
        value: { overlap: 'skip', ...(every ? { every } : {}) },
        evidence,
      });
    } else if (seen && seen.rate >= TH.skippedRate && every !== undefined) {
      out.push({
        topic: 'schedule',
        advice: `Schedule \`${id}\` skips ${Math.round(seen.rate * 100)} % of its slots because runs outlast them: a slot every ${every} ms or more matches how long runs take.`,
        value: { every },
        evidence,
      });
    }
  }
  return out;
}

/** Advice that follows from the definition alone, for a task with too little history. */
export function traitRules(def: TaskProfile, window: number): Recommendation[] {
  const out: Recommendation[] = [];
  if (def.timeoutMs === 0) {
    out.push({ topic: 'timeout', advice: 'No timeout is set, so a hung run holds its slot until it is cancelled. Set one; after 20 runs the advisor suggests a value from the measured p99.', evidence: { timeoutMs: 0, window } });
  }
  if (def.streaming) {
    const advice = adviseFromTraits({ streaming: true });
    out.push({ topic: 'streaming', advice: `Start it with \`${advice.call}\` (${advice.reason}).`, value: 'rt.start', evidence: { streaming: 'declared', window } });
  }
  for (const sched of def.schedules ?? []) {
    if (sched.overlap !== 'allow') continue;
    out.push({
      topic: 'schedule',
      advice: `Schedule \`${sched.id}\` allows overlapping runs: if runs outlast the interval they pile up. Prefer \`overlap: 'skip'\` until durations are measured.`,
      value: { overlap: 'skip' },
      evidence: { schedule: sched.id, overlap: 'allow', window, ...(sched.intervalMs !== undefined ? { intervalMs: sched.intervalMs } : {}) },
    });
  }
  return out;
}
