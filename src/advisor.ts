/**
 * The pattern advisor: which of troupe's ways to run a task fits, from what the caller declares about it.
 * The checks go in order and the first match wins, each with the reason it was chosen.
 */
import { invalidOption } from './errors.ts';

/** What a caller knows about a task before running it. */
export interface TaskTraits {
  /** It should run again and again on a timetable. */
  recurring?: boolean;
  /** Its output or progress should be watched while it runs. */
  streaming?: boolean;
  /** How long one run takes, roughly. */
  expectedDurationMs?: number;
  /** How many of it are started together. */
  count?: number;
  /** The caller waits for the result. @default true */
  needsResult?: boolean;
  /** It is started many times a minute (more than 10). */
  highFrequency?: boolean;
}

export type Pattern = 'run' | 'start' | 'runAll' | 'enqueue' | 'schedule' | 'pool';

export interface Advice {
  pattern: Pattern;
  /** The API call that implements the pattern. */
  call: string;
  reason: string;
}

/** The traits there are; any other key is a mistake (a misspelt `streaming` would change the advice silently). */
const TRAIT_KEYS: readonly string[] = ['recurring', 'streaming', 'expectedDurationMs', 'count', 'needsResult', 'highFrequency'];
const FLAG_TRAITS = ['recurring', 'streaming', 'needsResult', 'highFrequency'] as const;

/** Runs longer than this are better watched through a handle than awaited blindly. */
export const LONG_RUNNING_MS = 60_000;

/** Recommends a pattern from declared traits (first match wins: recurring, streaming/long, many, no result, frequent). */
export function adviseFromTraits(given: TaskTraits): Advice {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalidOption('traits', 'an object', given);
  for (const key of Object.keys(given)) {
    if (!TRAIT_KEYS.includes(key)) throw invalidOption(`traits.${key}`, `one of the known traits (${TRAIT_KEYS.join(', ')})`, (given as Record<string, unknown>)[key]);
  }
  // The traits given, own keys only: an inherited `recurring` was nobody's declaration.
  const traits: TaskTraits = { ...given };
  for (const key of FLAG_TRAITS) {
    if (traits[key] !== undefined && typeof traits[key] !== 'boolean') throw invalidOption(`traits.${key}`, 'a boolean', traits[key]);
  }
  const { recurring, streaming, expectedDurationMs, count, needsResult = true, highFrequency } = traits;
  if (expectedDurationMs !== undefined && (typeof expectedDurationMs !== 'number' || !(expectedDurationMs >= 0))) {
    throw invalidOption('traits.expectedDurationMs', 'a non-negative number', expectedDurationMs);
  }
  if (count !== undefined && (typeof count !== 'number' || !Number.isInteger(count) || count < 1)) {
    throw invalidOption('traits.count', 'a positive integer', count);
  }
  if (recurring) return { pattern: 'schedule', call: 'rt.schedule(name, { cron | every }, input)', reason: 'it recurs: a stored schedule fires each slot once, across restarts and nodes' };
  if (streaming || (expectedDurationMs ?? 0) > LONG_RUNNING_MS) {
    return {
      pattern: 'start',
      call: 'rt.start(name, input)',
      reason: streaming ? 'its output is watched while it runs: a handle streams lines and progress and can cancel' : `it runs longer than ${LONG_RUNNING_MS / 1000} s: a handle shows progress and can cancel it`,
    };
  }
  if ((count ?? 1) > 1) return { pattern: 'runAll', call: 'rt.runAll(items, { concurrency })', reason: `${count} runs at once: runAll bounds concurrency and settles each one without stopping the rest` };
  if (!needsResult) return { pattern: 'enqueue', call: 'rt.enqueue(name, input)', reason: 'nobody waits for the result: enqueue returns an id at once and the outcome stays queryable' };
  if (highFrequency) return { pattern: 'pool', call: 'rt.run(name, input) with a handler task', reason: 'it runs many times a minute: a handler on the warm thread pool avoids a process start per run' };
  return { pattern: 'run', call: 'await rt.run(name, input)', reason: 'a single short run whose result is awaited' };
}
