/**
 * The statistics of every task name on a node, and how they reach the store: a book of `TaskStats` keyed by
 * name that remembers which names changed, and a persister that writes the changed ones with
 * `store.setMeta('stats:<name>', json)` every few seconds (and once more on close), so statistics survive
 * restarts without a write per run.
 */
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import type { Store } from '../store/store.ts';
import { TaskStats, type RunObservation, type TaskStatsOptions } from './task-stats.ts';

/** The store key of a name's statistics. */
export const statsKey = (name: string): string => `stats:${name}`;

export type StatsBookOptions = TaskStatsOptions;

/** Every task name's statistics on this node. */
export class StatsBook {
  readonly #byName = new Map<string, TaskStats>();
  readonly #dirty = new Set<string>();
  /** Names whose stored record is being read: not written before it is in place (see `loading`). */
  readonly #loading = new Set<string>();
  readonly #options: StatsBookOptions;

  constructor(options: StatsBookOptions = {}) {
    this.#options = options;
  }

  /** Records one ended attempt under its name (one map lookup; creates the name's record on first use). */
  observe(obs: RunObservation): void {
    this.#stats(obs.name).observe(obs);
    this.#dirty.add(obs.name);
  }

  /** Records one slot of a schedule of `name`: whether the schedule's previous run was still active. */
  observeOverlap(name: string, scheduleId: string, overlapped: boolean): void {
    this.#stats(name).observeOverlap(scheduleId, overlapped);
    this.#dirty.add(name);
  }

  /** The record of `name`, if it has one. */
  get(name: string): TaskStats | undefined {
    return this.#byName.get(name);
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }

  /**
   * Puts a record read from the store in place. Attempts this book recorded under the name meanwhile (a name
   * registered while the runtime runs starts before its record is read) are added to it, not lost.
   */
  restore(stored: TaskStats): void {
    const current = this.#byName.get(stored.name);
    if (current) {
      stored.absorb(current);
      this.#dirty.add(stored.name);
    }
    this.#byName.set(stored.name, stored);
  }

  /** Holds back the writes of `name` until `done()`: its stored record has not been read yet. */
  loading(name: string): { done(): void } {
    this.#loading.add(name);
    return { done: () => this.#loading.delete(name) };
  }

  /** The names changed since the last call, cleared (a name still loading stays marked). */
  takeDirty(): string[] {
    if (this.#loading.size === 0) {
      const names = [...this.#dirty];
      this.#dirty.clear();
      return names;
    }
    const names = [...this.#dirty].filter((name) => !this.#loading.has(name));
    for (const name of names) this.#dirty.delete(name);
    return names;
  }

  /** Marks names as changed again (a write that failed). */
  markDirty(names: Iterable<string>): void {
    for (const name of names) this.#dirty.add(name);
  }

  #stats(name: string): TaskStats {
    let stats = this.#byName.get(name);
    if (!stats) {
      stats = new TaskStats(name, this.#options);
      this.#byName.set(name, stats);
    }
    return stats;
  }
}

/** Writes the names changed since the last flush; a failed write leaves them marked for the next one. */
export async function flushStats(book: StatsBook, store: Pick<Store, 'setMeta'>): Promise<number> {
  const names = book.takeDirty();
  let written = 0;
  for (let i = 0; i < names.length; i++) {
    const stats = book.get(names[i]!);
    if (!stats) continue;
    try {
      await store.setMeta(statsKey(stats.name), JSON.stringify(stats));
      written++;
    } catch (error) {
      book.markDirty(names.slice(i));
      throw error;
    }
  }
  return written;
}

/**
 * Loads the stored statistics of `names` into the book. A record that cannot be read is skipped (statistics
 * are advice, not state) and its name returned in `unreadable`, so the caller can log it.
 */
export async function restoreStats(
  book: StatsBook,
  store: Pick<Store, 'getMeta'>,
  names: Iterable<string>,
  options: Omit<TaskStatsOptions, 'capacity'> = {},
): Promise<{ restored: string[]; unreadable: string[] }> {
  const restored: string[] = [];
  const unreadable: string[] = [];
  for (const name of names) {
    const text = await store.getMeta(statsKey(name));
    if (text === undefined) continue;
    try {
      const stats = TaskStats.fromJSON(JSON.parse(text), options);
      if (stats.name !== name) throw new Error('name mismatch');
      book.restore(stats);
      restored.push(name);
    } catch {
      unreadable.push(name);
    }
  }
  return { restored, unreadable };
}

export interface StatsPersisterOptions {
  book: StatsBook;
  store: Pick<Store, 'setMeta'>;
  /** @default systemClock */
  clock?: Clock;
  /** Time between flushes. @default 10_000 */
  everyMs?: number;
  /** Told when a flush fails (the names stay marked and go with the next flush). */
  onError?(error: unknown): void;
}

export interface StatsPersister {
  /** Writes the changed names now. */
  flush(): Promise<number>;
  /** Stops the timer and flushes once more. Idempotent: the same promise. */
  close(): Promise<void>;
}

/** Flushes the book every `everyMs` on an unref'd timer; one flush at a time. */
export function createStatsPersister(options: StatsPersisterOptions): StatsPersister {
  const { book, store, clock = systemClock, everyMs = 10_000, onError } = options;
  let timer: TimerHandle | undefined;
  let running: Promise<number> | undefined;
  let closing: Promise<void> | undefined;

  const flush = (): Promise<number> => {
    running ??= flushStats(book, store).finally(() => {
      running = undefined;
    });
    return running;
  };
  const arm = () => {
    timer = clock.setTimeout(() => {
      flush().catch((error: unknown) => onError?.(error)).finally(() => {
        if (!closing) arm();
      });
    }, everyMs);
    timer.unref?.();
  };
  arm();

  return {
    flush,
    close() {
      closing ??= (async () => {
        clock.clearTimeout(timer);
        await running?.catch(() => undefined);
        await flush();
      })();
      return closing;
    },
  };
}
