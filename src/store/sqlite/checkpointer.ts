/**
 * WAL checkpoints of a SQLite file, run on a thread of their own.
 *
 * Why: in WAL mode every commit appends to the `-wal` file, and SQLite copies it back into the database file (a
 * checkpoint) once it holds `wal_autocheckpoint` pages (1000 by default): inside the commit that crossed the line,
 * on the connection that made it. With troupe's one connection that is the main thread, for the several
 * milliseconds that copying 4 MB and syncing the file take; every event waiting then (a task's output line, a
 * timer, a request) waits with it. Measured with a command printing 20,000 lines/s to a subscriber, on a
 * SQLite runtime: the p99 delay of a line was 7.2–9.0 ms with checkpoints on the main thread, 2.5–5.4 ms without.
 *
 * Here a worker thread holds a second connection to the file and runs `PRAGMA wal_checkpoint(PASSIVE)` every
 * `intervalMs` (less often while there is nothing to copy). A passive checkpoint never blocks the writer and
 * never waits for it: commits go on meanwhile. The main connection keeps an automatic checkpoint as a backstop,
 * at `backstopPages`: should the thread fall behind, fail to start or die, SQLite checkpoints there as before.
 * Nothing about durability changes: a commit is durable in the WAL (`synchronous=FULL`) or at the next sync of it.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Milliseconds between checkpoints while the WAL grows. @default 100 */
  intervalMs?: number;
  /** The longest pause between checkpoints while nothing is written. @default 1000 */
  idleIntervalMs?: number;
  busyTimeoutMs: number;
  /** The worker's source (tests replace it to make the thread fail). */
  source?: string;
}

export interface CheckpointStats {
  /** Checkpoints that copied pages. */
  checkpoints: number;
  /** WAL pages copied into the database file. */
  pages: number;
  /** `online` while the thread runs; `failed` once it could not start or died (the backstop works alone then). */
  state: 'starting' | 'online' | 'failed' | 'closed';
}

const requireModule = createRequire(import.meta.url);

/** The worker, as a script: it needs nothing of troupe, only better-sqlite3. */
const CHECKPOINT_THREAD_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const { path, intervalMs, idleIntervalMs, busyTimeoutMs } = workerData;
const db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: true });
db.pragma('wal_autocheckpoint = 0');
let wait = intervalMs;
let timer;
// what the last checkpoint saw: frames in the WAL, and frames of it already copied (a new WAL starts over)
let log = 0;
let done = 0;
const tick = () => {
  let copied = 0;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    if (row && row.log >= 0 && (row.log !== log || row.checkpointed !== done)) {
      copied = row.log >= log && row.checkpointed >= done ? row.checkpointed - done : row.checkpointed;
      log = row.log;
      done = row.checkpointed;
    }
  } catch (error) {
    if (!/busy|locked/i.test(String(error && error.message))) throw error;
  }
  if (copied > 0) parentPort.postMessage(copied);
  wait = copied > 0 ? intervalMs : Math.min(idleIntervalMs, wait * 2);
  timer = setTimeout(tick, wait);
};
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
timer = setTimeout(tick, intervalMs);
parentPort.postMessage('ready');
`;

export class Checkpointer {
  readonly #worker: Worker | undefined;
  readonly #onFail: () => void;
  #stats: CheckpointStats = { checkpoints: 0, pages: 0, state: 'starting' };
  #exited: Promise<void>;

  /** Starts the thread on `path`; `onFail` is called once if it cannot start or dies before `close`. */
  constructor(path: string, options: CheckpointerOptions, onFail: () => void) {
    this.#onFail = onFail;
    let exited!: () => void;
    this.#exited = new Promise((resolve) => (exited = resolve));
    let worker: Worker | undefined;
    try {
      worker = new Worker(options.source ?? CHECKPOINT_THREAD_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: {
          module: requireModule.resolve('better-sqlite3'),
          path,
          intervalMs: options.intervalMs ?? 100,
          idleIntervalMs: options.idleIntervalMs ?? 1000,
          busyTimeoutMs: options.busyTimeoutMs,
        },
      });
    } catch {
      this.#fail();
      exited();
      return;
    }
    worker.on('message', (message: number | 'ready') => {
      if (message === 'ready') {
        if (this.#stats.state === 'starting') this.#stats.state = 'online';
        return;
      }
      this.#stats.checkpoints++;
      this.#stats.pages += message;
    });
    worker.on('error', () => this.#fail());
    worker.on('exit', () => {
      this.#fail();
      exited();
    });
    worker.unref();
    this.#worker = worker;
  }

  get stats(): CheckpointStats {
    return { ...this.#stats };
  }

  /** Stops the thread (after the checkpoint it may be running) and closes its connection. */
  async close(): Promise<void> {
    if (this.#stats.state !== 'failed') this.#stats.state = 'closed';
    // held until it is gone: a caller awaiting close() must not see the process end first
    this.#worker?.ref();
    this.#worker?.postMessage('close');
    await this.#exited;
  }

  #fail(): void {
    if (this.#stats.state === 'closed' || this.#stats.state === 'failed') return;
    this.#stats.state = 'failed';
    this.#onFail();
  }
}
