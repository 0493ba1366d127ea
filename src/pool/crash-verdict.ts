/**
 * Who is to blame when a Piscina run fails: its thread died (process.exit, an uncaught error, resource limits),
 * we ended it (hard stop), or its message could not cross threads (input or result not cloneable).
 *
 * The slot flags of each job of the run decide:
 *
 * | job's flags / the run          | verdict        | the caller gets                                        |
 * |--------------------------------|----------------|--------------------------------------------------------|
 * | hard-stopped run, other jobs   | `requeue`      | WORKER_CRASHED, `details.requeue: true`                 |
 * | not started                    | `requeue`      | WORKER_CRASHED, `details.requeue: true`                 |
 * | started, not finished          | `blame`        | WORKER_CRASHED (RESOURCE_LIMIT if out of memory)        |
 * | finished, and someone to blame | `requeue`      | its result was lost with the thread                     |
 * | batch with no one to blame     | `resend`       | sent again alone: isolates a job whose message fails    |
 * | alone, not started, clone error| `invalid-input`| INVALID_INPUT: its input cannot be sent to a thread      |
 * | alone, finished, no one else   | `blame`        | its result could not come back                          |
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

function isSuspect(flags: number): boolean {
  return (flags & (SlotFlags.STARTED | SlotFlags.DONE)) === SlotFlags.STARTED;
}

/** One verdict per job of a failed run, from each job's slot flags. */
export function judgeFailedRun(flags: readonly number[], run: FailedRun): Verdict[] {
  const noSuspect = !run.hardStopped && !flags.some(isSuspect);
  const alone = flags.length === 1;
  return flags.map((f): Verdict => {
    const started = (f & SlotFlags.STARTED) !== 0;
    if (noSuspect && !alone) return Verdicts.resend;
    if (noSuspect && run.cloneFailed && !started) return Verdicts.invalidInput;
    if (run.hardStopped || !started) return Verdicts.requeue;
    if (isSuspect(f) || noSuspect) return Verdicts.blame;
    return Verdicts.requeue;
  });
}
