/**
 * The shapes of task statistics: one observed attempt going in, the summary and the persisted form coming out.
 */
import type { Percentiles } from './percentiles.ts';

/** How an attempt ended. `retrying` = it failed and another attempt is planned. */
export const RunOutcomes = {
  succeeded: 'succeeded',
  failed: 'failed',
  timed_out: 'timed_out',
  retrying: 'retrying',
  cancelled: 'cancelled',
} as const;
export type RunOutcome = (typeof RunOutcomes)[keyof typeof RunOutcomes];

/** Why an attempt that did not succeed ended. */
export const FailureCauses = {
  error: 'error',
  timeout: 'timeout',
  crash: 'crash',
  out_of_memory: 'out_of_memory',
  permanent: 'permanent',
} as const;
export type FailureCause = (typeof FailureCauses)[keyof typeof FailureCauses];

/** One ended attempt, as the executor sees it when it settles the run. Only `name`, `outcome`, `attempt` are required. */
export interface RunObservation {
  name: string;
  outcome: RunOutcome;
  /** The attempt that ended (1 = the first run). */
  attempt: number;
  /** Why a failed, retrying or timed-out attempt ended. @default 'timeout' for timed_out, else 'error' */
  cause?: FailureCause;
  /** When it ended (epoch ms). @default clock.now() */
  at?: number;
  /** From start to end of the attempt. */
  durationMs?: number;
  /** From due (`runAt`) to start. */
  waitMs?: number;
  /**
   * CPU time the attempt used, in ms; absent = not measured (never a made-up 0). What the runtime's executor records:
   * - command: CPU time (user + system) of its process and of the descendants it waited for, read by the spawn
   *   server when it reaped the child (Linux, 10 ms ticks); when several children were reaped at once, or without
   *   the spawn server, the last /proc sample's figure (taken at gaps of 20 ms doubling to 1 s: absent for a
   *   command that ended within 20 ms). See src/process/process-usage.ts.
   * - handler: CPU time of its worker thread from the call to the settle (Linux: /proc/thread-self/schedstat,
   *   brought up to date first; elsewhere the thread's event-loop active time), for a handler that may be slow
   *   (never timed, or ≥ 1 ms a call); for a fast handler's batched jobs, the time spent inside its synchronous
   *   call. See src/pool/thread-usage.ts.
   * - inline: the time spent inside its synchronous call on the main thread (the time it held the event loop);
   *   what it computes after an `await` is not counted.
   */
  cpuMs?: number;
  /**
   * Peak memory of the attempt, in MiB; absent = not measured.
   * - command: the largest resident set of its process (`VmHWM`) at the last /proc sample (Linux; descendants not
   *   included; memory first reached after the last sample, within one gap of the exit, is missed).
   * - handler: memory held by its thread's isolate when it settled (V8 committed heap + external memory), for a
   *   handler that may be slow; threads share the process's RSS, so this is the per-thread figure there is.
   * - inline: not measured (the main thread's memory is the runtime's).
   */
  peakRssMb?: number;
  /** Output lines it produced (stdout, stderr and ctx.log). */
  outputLines?: number;
}

export interface StatsCounts {
  attempts: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  retried: number;
  cancelled: number;
}

export interface ScheduleOverlap {
  id: string;
  slots: number;
  /** Slots that came while the previous run of the schedule was still active. */
  overlapped: number;
  rate: number;
}

/** What the ring says, computed on read. Rates are fractions (0–1) of the attempts in the window. */
export interface TaskStatsSummary {
  name: string;
  /** Attempts observed since the record began (across restarts). */
  runs: number;
  /** When the record began. */
  firstAt?: number;
  /** The oldest attempt in the window. */
  since?: number;
  lastAt?: number;
  /** Attempts in the rolling window. */
  window: number;
  counts: StatsCounts;
  totals: StatsCounts;
  /** succeeded / (succeeded + failed + timed out), final outcomes only. */
  successRate?: number;
  retryRate: number;
  timeoutRate: number;
  crashRate: number;
  /** Attempts by cause, over the attempts that did not succeed. */
  causes: Record<FailureCause, number>;
  /** Successes on a later attempt (a retry helped). */
  recoveredByRetry: number;
  /** Attempts that failed for good after at least one retry, not marked permanent (retries did not help). */
  exhaustedRetries: number;
  /** Attempts that ran to their own end (succeeded or failed, not timed out or cancelled). */
  durationMs?: Percentiles;
  waitMs?: Percentiles;
  cpuMs?: Percentiles;
  /** CPU-seconds per second of run time: ≈1 for CPU-bound code on one thread, ≈0 for code that waits. */
  cpuPerSecond?: number;
  peakRssMb?: Percentiles;
  outputLines?: Percentiles;
  schedules: ScheduleOverlap[];
}

/** The persisted form. Arrays are oldest first; `null` is a value the attempt did not carry. */
export interface TaskStatsJSON {
  version: 1;
  name: string;
  capacity: number;
  firstAt: number | null;
  totals: StatsCounts;
  samples: {
    at: number[];
    outcome: RunOutcome[];
    cause: Array<FailureCause | null>;
    attempt: number[];
    durationMs: Array<number | null>;
    waitMs: Array<number | null>;
    cpuMs: Array<number | null>;
    peakRssMb: Array<number | null>;
    outputLines: Array<number | null>;
  };
  schedules: Array<{ id: string; slots: number; overlapped: number }>;
}
