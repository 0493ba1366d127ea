/**
 * The `ctx` an inline run's code gets. A class, so that every run's context has the same hidden class: an object
 * literal with a getter (`get signal()`) gets a fresh getter closure per run, and V8 then cannot share the literal's
 * map between runs. Measured on the scale workload (SQLite, 60,000 inline no-ops): with the literal ≈1 KB per run
 * survived two scavenges and was promoted to the old generation (45 MB of 67 MB promoted), to be freed only by a
 * full collection; with this class, none of it.
 */
import { invalidOption } from '../../src/errors.ts';
import { normalizeProgress, type TaskContext } from '../../src/registry.ts';
import type { Progress, TaskRecord } from '../../src/task.ts';
import type { RunSink, TaskActor } from './task-actor.ts';

export class InlineContext implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly attempt: number;
  readonly progress: TaskContext['progress'];
  readonly log: TaskContext['log'];
  children?: TaskContext['children'];
  readonly #run: TaskActor;

  /** Progress and log lines go to `sink` (the executor's, shared by every run: no callbacks made per run for it). */
  constructor(run: TaskActor, task: TaskRecord, sink: Pick<RunSink, 'runProgress' | 'runLog'>) {
    this.id = task.id;
    this.name = task.name;
    this.attempt = task.attempts;
    this.#run = run;
    // own properties, as before: code may destructure them (`const { progress } = ctx`)
    this.progress = (value) => {
      const p: Progress | undefined = normalizeProgress(value);
      // As a handler's ctx does (src/pool/handler-worker.ts): a value that is no progress is a mistake, said so.
      if (p === undefined) throw invalidOption('ctx.progress()', 'a fraction in [0, 1] or `{ done, total }` with total > 0', value);
      sink.runProgress(run, p);
    };
    this.log = (line) => sink.runLog(run, String(line));
    if (task.children) this.children = task.children;
  }

  /** Made when the code reads it: most runs never do, and an AbortController is a few µs and garbage. */
  get signal(): AbortSignal {
    return this.#run.signal;
  }
}
