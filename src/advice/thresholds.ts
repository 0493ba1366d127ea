/** The numbers the advisor's rules compare measurements with; docs/advisor.md explains each rule. */

/** Below this many attempts in the window only definition-based advice is given. */
export const MIN_RUNS_FOR_ADVICE = 20;

/** The thresholds the rules use; docs/advisor.md explains each. */
export const ADVICE_THRESHOLDS = Object.freeze({
  /** CPU-seconds per run-second at or above which a task is CPU-bound. */
  cpuBound: 0.7,
  /** …below which it mostly waits (I/O-bound). */
  ioBound: 0.3,
  /** CPU-heavy enough that a command's process start or the main thread is the wrong home. */
  cpuHeavy: 0.5,
  /** Runs shorter than this pay a process start that a pool thread would not. */
  shortRunMs: 1_000,
  /** Runs longer than this hold a pool thread long enough to prefer a killable subprocess. */
  longRunMs: 60_000,
  /** Peak memory above which a run should not share the runtime's heap. */
  memoryHeavyMb: 512,
  /** Share of attempts that crash a thread before isolation is advised. */
  crashRate: 0.01,
  /** Share of attempts that time out before the timeout is called too tight. */
  timeoutRate: 0.01,
  /** The timeout is called tight below p99 × this. */
  tightTimeoutFactor: 1.5,
  /** …and needlessly loose above the suggestion × this (and a minute more). */
  looseTimeoutFactor: 20,
  /** Failures of a kind needed before retry advice about that kind. */
  minFailures: 5,
  /** Runs at least this long with at least `streamLines` lines on average should stream. */
  streamMs: 10_000,
  streamLines: 100,
  /** Share of a schedule's slots that overlap its previous run before it is flagged. */
  overlapRate: 0.05,
  /** With `overlap: 'skip'`, a share of skipped slots above this asks for a longer interval. */
  skippedRate: 0.2,
  /** The largest concurrency the advisor suggests from CPU figures alone. */
  maxSuggestedConcurrency: 256,
});
