/**
 * The handle `rt.start()` returns: the run's id, its live progress and output, its result and a cancel.
 * Output is iterated with `for await`: lines already captured first, then live ones, ending with the task.
 */
import { invalidOption } from './errors.ts';
import { dropMarkerText, type OutputCaps } from './output-caps.ts';
import { OutputRuns } from './store/output-runs.ts';
import type { OutputLine, Progress, TaskState } from './task.ts';

export interface TaskHandleEvents {
  progress: (progress: Progress) => void;
  output: (line: OutputLine) => void;
  state: (state: TaskState) => void;
}

export interface TaskHandle<O = unknown> {
  readonly id: string;
  readonly name: string;
  /** The latest known state. */
  readonly state: TaskState;
  /** The latest progress, if any was reported. */
  readonly progress: Progress | undefined;
  /** Captured lines: buffered first, then live; the iteration ends when the task ends. */
  readonly output: AsyncIterable<OutputLine>;
  /** The result, or a TroupeError (TROUPE_ERR_CANCELLED, TROUPE_ERR_TIMEOUT, …). */
  readonly result: Promise<O>;
  on<K extends keyof TaskHandleEvents>(event: K, listener: TaskHandleEvents[K]): () => void;
  /** Cancels the task (ends its process tree or aborts its signal); resolves true if this call cancelled it. */
  cancel(): Promise<boolean>;
}

/** @internal The mutable side of a handle, fed by the runtime's single fact subscription. */
export class HandleState<O = unknown> implements TaskHandle<O> {
  readonly id: string;
  readonly name: string;
  readonly result: Promise<O>;
  state: TaskState = 'queued';
  progress: Progress | undefined;
  /**
   * The lines so far, kept in runs as the memory store keeps them (one object and one string per chunk): one
   * object per line held for the whole run was what the collector copied and promoted during a flood.
   */
  #lines = new OutputRuns();
  /** The lines of the chunk being received (consecutive seqs, one stream and time), appended as one run. */
  #pending: OutputLine[] = [];
  #pushed = 0;
  /** What the task's store keeps (its definition's `output`): the handle holds no more. */
  #caps: OutputCaps;
  #ended = false;
  #wakers = new Set<() => void>();
  #listeners: { [K in keyof TaskHandleEvents]: Set<TaskHandleEvents[K]> } = { progress: new Set(), output: new Set(), state: new Set() };
  #cancel: () => Promise<boolean>;
  resolve!: (value: O) => void;
  reject!: (error: unknown) => void;

  constructor(id: string, name: string, caps: OutputCaps, cancel: (id: string) => Promise<boolean>) {
    this.id = id;
    this.name = name;
    this.#caps = caps;
    this.#cancel = () => cancel(id);
    this.result = new Promise<O>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A caller that only iterates output must not see an unhandled rejection.
    this.result.catch(() => {});
  }

  on<K extends keyof TaskHandleEvents>(event: K, listener: TaskHandleEvents[K]): () => void {
    // Checked here: a wrong name was a TypeError, and a listener that is not a function failed only when called.
    if (!Object.hasOwn(this.#listeners, event)) invalidEvent(event);
    if (typeof listener !== 'function') throw invalidOption(`on('${String(event)}', listener)`, 'a function', listener);
    (this.#listeners[event] as Set<TaskHandleEvents[K]>).add(listener);
    return () => (this.#listeners[event] as Set<TaskHandleEvents[K]>).delete(listener);
  }

  cancel(): Promise<boolean> {
    return this.#cancel();
  }

  get output(): AsyncIterable<OutputLine> {
    return { [Symbol.asyncIterator]: () => this.#iterate() };
  }

  /** @internal */
  pushLine(line: OutputLine): void {
    const last = this.#pending[this.#pending.length - 1];
    if (last !== undefined && (line.seq !== last.seq + 1 || line.stream !== last.stream || line.at !== last.at)) this.#settle();
    this.#pending.push(line);
    this.#pushed++;
    for (const l of this.#listeners.output) l(line);
    this.#wake();
  }

  /** Moves the pending chunk into the runs, keeping the newest within the caps. */
  #settle(): void {
    if (this.#pending.length === 0) return;
    this.#lines.append(this.#pending, this.#caps.maxLines, this.#caps.maxBytes);
    this.#pending = [];
  }

  get #dropped(): number {
    return this.#pushed - this.#pending.length - this.#lines.size;
  }

  /** @internal */
  setProgress(progress: Progress): void {
    this.progress = progress;
    for (const l of this.#listeners.progress) l(progress);
  }

  /** @internal */
  setState(state: TaskState): void {
    if (this.state === state) return;
    this.state = state;
    for (const l of this.#listeners.state) l(state);
  }

  /** @internal Marks the end: iterators finish after the buffered lines. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    // called per output line: nothing to copy when no iterator waits (the usual case in a flood)
    if (this.#wakers.size === 0) return;
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const w of wakers) w();
  }

  async *#iterate(): AsyncGenerator<OutputLine> {
    this.#settle();
    const dropped = this.#dropped;
    let after: number | undefined;
    if (dropped > 0) {
      const first = this.#lines.read(undefined, 2).find((l) => l.stream !== 'marker');
      yield { seq: -1, stream: 'marker', text: dropMarkerText(dropped), at: first?.at ?? 0 };
    }
    for (;;) {
      // Lines dropped while this iterator lagged are skipped: reading goes on after the last seq yielded.
      this.#settle();
      let read = 0;
      for (const line of this.#lines.read(after, 1000)) {
        if (line.stream === 'marker') continue;
        after = line.seq;
        read++;
        yield line;
      }
      if (read > 0) continue;
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wakers.add(resolve));
    }
  }
}

function invalidEvent(event: unknown): never {
  throw invalidOption('event', "one of 'progress', 'output', 'state'", event);
}
