/** Rates read from a finished tinybench run, shared by the suites that report tasks per second. */
import type { Bench, Task } from 'tinybench';

/** Tasks per second of the row `name` when each timed call did `tasks` tasks; undefined when the row did not run. */
export function tasksPerSecOf(bench: Bench, name: string, tasks: number): number | undefined {
  const task: Task | undefined = bench.getTask(name);
  const result = task?.result;
  if (!result || !('latency' in result) || !result.latency.mean) return undefined;
  return Math.round((tasks / result.latency.mean) * 1000);
}
