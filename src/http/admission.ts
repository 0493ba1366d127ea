/**
 * Resource-aware admission (opt-in): every `intervalMs` the health check samples the runtime, and while its
 * overall status is `error` (memory, disk, CPU, event-loop delay or queue age past its error threshold) this node
 * claims no task of the user task names (`rt.holdIntake`); when the status drops back below error it claims them
 * again. Built-in maintenance tasks are never held (an operator may need `cleanup-runs` to get out of a full
 * disk). The hold is this node's alone: not a pause, so nothing is stored, the other nodes sharing the store go on
 * claiming those names (a pause would reach them all), and pauses an operator made are left as they are (a name
 * paused by hand is held too, so that resuming it meanwhile does not let it in here).
 */
import type { TimerHandle } from '../clock.ts';
import { invalidOption } from '../errors.ts';
import type { Runtime } from '../runtime.ts';

export interface AdmissionOptions {
  /** How often health is sampled, in ms (at least 100). */
  intervalMs: number;
}

export interface Admission {
  /** Names held by admission on this node right now. */
  readonly paused: readonly string[];
  /** Stops sampling and releases what admission held. */
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
    const names = new Set(rt.tasks().map((t) => t.name));
    // A name unregistered since is held no more.
    rt.holdIntake(rt.heldNames().filter((n) => names.has(n) && !paused.includes(n)));
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
        const already = new Set(rt.heldNames());
        paused = rt.tasks().filter((t) => !t.builtin && !already.has(t.name)).map((t) => t.name);
        if (paused.length > 0) rt.holdIntake([...already, ...paused]);
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
