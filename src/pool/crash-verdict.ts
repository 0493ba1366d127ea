/**
 * Who is to blame when a Piscina run fails: its thread died (process.exit, an uncaught error, resource limits),
 * we ended it (hard stop), or its message could not cross threads (input or result not cloneable).
 *
 * The slot flags of each job of the run decide. The suspects are the jobs whose handler was running (called, not
 * settled); when none was, the jobs still loading their handler module (taken, not called, not settled).
 *
 * | job / the run                  | verdict        | the caller gets                                        |
 * |--------------------------------|----------------|--------------------------------------------------------|
 * | hard-stopped run, other jobs   | `requeue`      | WORKER_CRASHED, `details.requeue: true`                 |
 * | not taken by the worker        | `requeue`      | WORKER_CRASHED, `details.requeue: true`                 |
 * | a suspect                      | `blame`        | WORKER_CRASHED (RESOURCE_LIMIT if out of memory)        |
 * | not a suspect, while one exists| `requeue`      | it may run again (a finished one's result was lost)     |
 * | batch with no suspect          | `resend`       | sent again alone: isolates a job whose message fails    |
 * | alone, not taken, clone error  | `invalid-input`| INVALID_INPUT: its input cannot be sent to a thread     |
 * | alone, finished, no suspect    | `blame`        | its result could not come back                          |
 *
 * Async handlers of one batch run together, so several may be suspects; each is blamed.
 */
import { SlotFlags } from './batcher.ts';

export const Verdicts = {
  requeue: 'requeue',
  blame: 'blame',
  resend: 'resend',
  invalidInput: 'invalid-input',
} as const;
export type Verdict = (typeof Verdicts)[keyof typeof Verdicts];

export interface FailedRun {
  /** We ended the thread on purpose (one of its jobs was hard-stopped). */
  hardStopped: boolean;
  /** Piscina reported a DataCloneError (a message could not be cloned). */
  cloneFailed: boolean;
}

const TAKEN_NOT_SETTLED = SlotFlags.STARTED | SlotFlags.DONE;
const RUNNING_NOT_SETTLED = SlotFlags.RUNNING | SlotFlags.DONE;

function isRunning(flags: number): boolean {
  return (flags & RUNNING_NOT_SETTLED) === SlotFlags.RUNNING;
}

function isLoading(flags: number): boolean {
  return (flags & TAKEN_NOT_SETTLED) === SlotFlags.STARTED && (flags & SlotFlags.RUNNING) === 0;
}

/** One verdict per job of a failed run, from each job's slot flags. */
export function judgeFailedRun(flags: readonly number[], run: FailedRun): Verdict[] {
  const isSuspect = flags.some(isRunning) ? isRunning : isLoading;
  const noSuspect = !run.hardStopped && !flags.some(isSuspect);
  const alone = flags.length === 1;
  return flags.map((f): Verdict => {
    const taken = (f & SlotFlags.STARTED) !== 0;
    if (noSuspect && !alone) return Verdicts.resend;
    if (noSuspect && run.cloneFailed && !taken) return Verdicts.invalidInput;
    if (run.hardStopped || !taken) return Verdicts.requeue;
    if (isSuspect(f) || noSuspect) return Verdicts.blame;
    return Verdicts.requeue;
  });
}
