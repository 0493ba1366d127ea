/**
 * How the thread pool notices that a job's `signal` or `hardSignal` aborted, cheaply.
 *
 * Adding and removing two abort listeners per job costs more main-thread time than a batched job's whole
 * dispatch (≈2–4 µs against ≈1 µs here), and most jobs finish long before anyone aborts them. So the pool sweeps
 * instead: every `intervalMs` while jobs are pending, a waiting job whose signal aborted is dropped, and a job in
 * flight is *adopted*: it gets listeners, so from then on it reacts at once. Jobs shorter than one interval never
 * pay for listeners; an abort reaches any job within one interval.
 *
 * Listeners are per distinct signal, not per job: a signal shared by many jobs (a runtime-wide shutdown signal)
 * carries one listener whatever the number of jobs watching it.
 */

/** What the watch needs of a job. */
export interface Watchable {
  readonly job: { readonly signal: AbortSignal; readonly hardSignal: AbortSignal };
  /** Set while the job has listeners. */
  listening: boolean;
}

/** The job's aborted signal, the hard one first; undefined while neither aborted. */
export function abortedSignalOf(w: Watchable): AbortSignal | undefined {
  const { signal, hardSignal } = w.job;
  return hardSignal.aborted ? hardSignal : signal.aborted ? signal : undefined;
}

class SignalListener<E extends Watchable> {
  readonly entries = new Set<E>();
  readonly #signal: AbortSignal;
  readonly #onAbort: (entry: E, signal: AbortSignal) => void;

  constructor(signal: AbortSignal, onAbort: (entry: E, signal: AbortSignal) => void) {
    this.#signal = signal;
    this.#onAbort = onAbort;
  }

  handleEvent(): void {
    for (const e of [...this.entries]) this.#onAbort(e, this.#signal);
  }
}

export interface AbortWatchOptions<E extends Watchable> {
  /** Called once a job's signal is seen aborted (by a sweep or a listener). */
  onAbort(entry: E, signal: AbortSignal): void;
  /** One sweep: check waiting jobs, adopt jobs in flight; returns whether any job is still pending. */
  sweep(watch: AbortWatch<E>): boolean;
  /** @default 10 */
  intervalMs?: number;
}

export class AbortWatch<E extends Watchable> {
  readonly #listeners = new Map<AbortSignal, SignalListener<E>>();
  readonly #onAbort: (entry: E, signal: AbortSignal) => void;
  readonly #sweep: (watch: AbortWatch<E>) => boolean;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: AbortWatchOptions<E>) {
    this.#onAbort = options.onAbort;
    this.#sweep = options.sweep;
    this.#intervalMs = options.intervalMs ?? 10;
  }

  /** Makes sure a sweep is coming (call when a job is added). */
  arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#sweep(this)) this.arm();
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** A waiting job: reported if aborted. */
  check(entry: E): void {
    const signal = abortedSignalOf(entry);
    if (signal !== undefined) this.#onAbort(entry, signal);
  }

  /** A job in flight: gets listeners (once), and is reported if already aborted. */
  adopt(entry: E): void {
    if (entry.listening) return;
    entry.listening = true;
    this.#listen(entry, entry.job.signal);
    if (entry.job.hardSignal !== entry.job.signal) this.#listen(entry, entry.job.hardSignal);
    this.check(entry);
  }

  /** A settled job: its listeners go (the signal's one listener goes with its last job). */
  release(entry: E): void {
    if (!entry.listening) return;
    entry.listening = false;
    this.#unlisten(entry, entry.job.signal);
    if (entry.job.hardSignal !== entry.job.signal) this.#unlisten(entry, entry.job.hardSignal);
  }

  /** Signals with a listener now (for tests and stats). */
  get watchedSignals(): number {
    return this.#listeners.size;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #listen(entry: E, signal: AbortSignal): void {
    let listener = this.#listeners.get(signal);
    if (listener === undefined) {
      listener = new SignalListener(signal, this.#onAbort);
      this.#listeners.set(signal, listener);
      signal.addEventListener('abort', listener);
    }
    listener.entries.add(entry);
  }

  #unlisten(entry: E, signal: AbortSignal): void {
    const listener = this.#listeners.get(signal);
    if (listener === undefined || !listener.entries.delete(entry) || listener.entries.size > 0) return;
    this.#listeners.delete(signal);
    signal.removeEventListener('abort', listener);
  }
}
