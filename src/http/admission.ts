/**
 * Resource-aware admission (opt-in): every `intervalMs` the health check samples the runtime, and while its
 * overall status is `error` (memory, disk, CPU, event-loop delay or queue age past its error threshold) the
 * user task names are paused, so nothing new is claimed; when the status drops back below error they are
 * resumed. Built-in maintenance tasks are never paused (an operator may need `cleanup-runs` to get out of a
 * full disk). Names an operator paused by hand are left alone in both directions.
 *
 * Pauses are persistent in the runtime, so stopping admission resumes what it paused.
 */
import type { TimerHandle } from '../clock.ts';
import { invalidOption } from '../errors.ts';
import type { Runtime } from '../runtime.ts';

export interface AdmissionOptions {
  /** How often health is sampled, in ms (at least 100). */
  intervalMs: number;
}

export interface Admission {
  /** Names paused by admission right now. */
  readonly paused: readonly string[];
  /** Stops sampling and resumes what admission paused. */
  stop(): void;
}

/** Starts the admission loop (why: shed load before the host runs out of memory or disk, not after). */
export function createAdmission(rt: Runtime, options: AdmissionOptions): Admission {
  const intervalMs = options?.intervalMs;
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < 100) throw invalidOption('admission.intervalMs', 'an integer of at least 100', intervalMs);
  const clock = rt.options.clock;
  let paused: string[] = [];
  let timer: TimerHandle | undefined;
  let stopped = false;

  const intake = (isPaused: boolean, reason: string) => {
    rt.bus.publish('http', { type: 'runtime.intake', paused: isPaused, reason, at: clock.now() });
  };
  const resumeAll = (reason: string) => {
    if (paused.length === 0) return;
    for (const name of paused) {
      try {
        rt.resume(name);
      } catch {
        // Unregistered since: nothing to resume.
      }
    }
    paused = [];
    intake(false, reason);
  };

  const tick = async () => {
    timer = undefined;
    if (stopped || rt.status !== 'running' || !rt.builtin) return;
    try {
      const report = await rt.builtin.healthCheck();
      if (stopped || rt.status !== 'running') return;
      if (report.status === 'error' && paused.length === 0) {
        const already = new Set(rt.pausedNames());
        paused = rt.tasks().filter((t) => !t.builtin && !already.has(t.name)).map((t) => t.name);
        for (const name of paused) rt.pause(name);
        const failing = Object.entries(report.checks).filter(([, c]) => c.status === 'error').map(([k]) => k);
        if (paused.length > 0) intake(true, `health check in error: ${failing.join(', ') || report.errors.map((e) => e.reading).join(', ')}`);
      } else if (report.status !== 'error') {
        resumeAll('health check back below its error thresholds');
      }
    } catch {
      // A failed sample changes nothing; the next one decides.
    }
    arm();
  };
  const arm = () => {
    if (stopped) return;
    timer = clock.setTimeout(() => void tick(), intervalMs);
    timer.unref?.();
  };
  arm();

  return {
    get paused() {
      return paused;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clock.clearTimeout(timer);
      if (rt.status === 'running') resumeAll('admission stopped');
    },
  };
}
