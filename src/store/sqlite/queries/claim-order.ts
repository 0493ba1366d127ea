/**
 * The due condition and the strategy orders every SQLite claim uses (plain and gated), each through the index
 * made for it; a claim adds its own filters between the two.
 */
import type { Strategy } from '../../store.ts';

export const DUE = `state IN ('queued', 'scheduled', 'retrying') AND run_at <= @now`;

/** Only the names this node runs, never the excluded ones (paused, or at their cap). */
export const NAME_FILTER = `AND (@names IS NULL OR name IN (SELECT value FROM json_each(@names)))
  AND (@exclude IS NULL OR name NOT IN (SELECT value FROM json_each(@exclude)))`;

/** `FROM tasks <this>`: the due rows passing `filter`, in the strategy's order. */
export function orderedDue(filter: string): Record<Exclude<Strategy, 'weighted-random'>, string> {
  return {
    fifo: `INDEXED BY tasks_due_time WHERE ${DUE} ${filter} ORDER BY run_at, id`,
    lifo: `INDEXED BY tasks_due_time WHERE ${DUE} ${filter} ORDER BY run_at DESC, id DESC`,
    priority: `INDEXED BY tasks_due_priority WHERE ${DUE} ${filter} ORDER BY priority DESC, run_at, id`,
  };
}
