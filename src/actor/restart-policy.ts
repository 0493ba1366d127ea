/**
 * Restart intensity, as in OTP: at most `maxRestarts` restarts within `withinMs`; one more means the supervisor
 * gives up and escalates to its parent. A pure function of the restart history and the time.
 */

export interface RestartIntensity {
  /** @default 3 */
  maxRestarts: number;
  /** @default 5000 */
  withinMs: number;
}

export const DEFAULT_INTENSITY: Readonly<RestartIntensity> = Object.freeze({ maxRestarts: 3, withinMs: 5000 });

/** Decides whether one more crash at `now` may be restarted, given the earlier restart times (pruned in place). */
export function decideRestart(history: number[], now: number, intensity: RestartIntensity): 'restart' | 'escalate' {
  const since = now - intensity.withinMs;
  while (history.length > 0 && history[0]! <= since) history.shift();
  if (history.length >= intensity.maxRestarts) return 'escalate';
  history.push(now);
  return 'restart';
}
