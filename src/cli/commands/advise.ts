/**
 * `troupe advise`: which pattern fits a task, from flags that declare its traits. It needs no server: the
 * advisor is a pure function of the traits (`rt.advise` is the same function).
 */
import { adviseFromTraits, type TaskTraits } from '../../advisor.ts';
import { parseDuration } from '../../units.ts';
import { ExitCodes } from '../errors.ts';
import type { Style } from '../format.ts';
import { renderAdvice } from '../render.ts';
import { parseInteger } from './remote.ts';

export interface AdviseOptions {
  recurring?: boolean;
  streaming?: boolean;
  duration?: string;
  count?: string;
  /** `--no-result` sets this to false. */
  result?: boolean;
  highFrequency?: boolean;
  json?: boolean;
}

/** Why: flags are the natural way to state traits on a command line. */
export function traitsFromFlags(o: AdviseOptions): TaskTraits {
  const traits: TaskTraits = {};
  if (o.recurring) traits.recurring = true;
  if (o.streaming) traits.streaming = true;
  if (o.duration !== undefined) traits.expectedDurationMs = parseDuration(o.duration, '--duration');
  if (o.count !== undefined) traits.count = parseInteger(o.count, '--count', { min: 1 });
  if (o.result === false) traits.needsResult = false;
  if (o.highFrequency) traits.highFrequency = true;
  return traits;
}

/** Prints the advice for the flags given (`--json` for scripts). */
export function adviseCommand(o: AdviseOptions, style: Style): number {
  const advice = adviseFromTraits(traitsFromFlags(o));
  process.stdout.write(`${o.json ? JSON.stringify(advice, null, 2) : renderAdvice(advice, style)}\n`);
  return ExitCodes.ok;
}
