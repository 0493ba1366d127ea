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
 * Here a worker thread holds a second connection to the file. Every `intervalMs` (less often while nothing is
 * written) it reads from the wal-index how many WAL pages are not copied back yet, and once there are `minPages`
 * (1000, SQLite's own threshold) it runs `PRAGMA wal_checkpoint(PASSIVE)`: the same work, as often, off the main
 * thread. A passive checkpoint never blocks the writer and
 * never waits for it: commits go on meanwhile. The main connection keeps an automatic checkpoint as a backstop,
 * at `backstopPages`: should the thread fall behind, fail to start or die, SQLite checkpoints there as before.
 * Nothing about durability changes: a commit is durable in the WAL (`synchronous=FULL`) or at the next sync of it.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Milliseconds between checks of the WAL while it grows. @default 100 */
  intervalMs?: number;
  /** The longest pause between checks while nothing is written. @default 1000 */
  idleIntervalMs?: number;
  /** WAL pages not yet copied back that make a checkpoint worth its sync of the file (SQLite's own threshold). @default 1000 */
  minPages?: number;
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
const fs = require('node:fs');
const Database = require(workerData.module);
const { path, intervalMs, idleIntervalMs, busyTimeoutMs, minPages } = workerData;
const db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: true });
db.pragma('wal_autocheckpoint = 0');
// The wal-index (the -shm file, https://sqlite.org/walformat.html) says how many WAL frames are not copied back
// yet: mxFrame (offset 16) less nBackfill (offset 96), native byte order. Read it, not the WAL: a checkpoint
// only when there is enough to copy, as SQLite's own would, not a sync of the file after every few pages.
const shm = Buffer.alloc(100);
let fd;
/** Frames already copied back (nBackfill), and frames waiting; Infinity when the index cannot be read as expected. */
let backfilled = 0;
const pending = () => {
  try {
    fd ??= fs.openSync(path + '-shm', 'r');
    if (fs.readSync(fd, shm, 0, 100, 0) < 100) return 0;
    if (shm.readUInt32LE(0) !== 3007000) return Infinity;
    backfilled = shm.readUInt32LE(96);
    return Math.max(0, shm.readUInt32LE(16) - backfilled);
  } catch {
    return Infinity;
  }
};
let wait = intervalMs;
let timer;
const tick = () => {
  let copied = 0;
  backfilled = 0;
  if (pending() >= minPages) {
    try {
      const [row] = db.pragma('wal_checkpoint(PASSIVE)');
      if (row && row.checkpointed > backfilled) copied = row.checkpointed - backfilled;
    } catch (error) {
      if (!/busy|locked/i.test(String(error && error.message))) throw error;
    }
  }
  if (copied > 0) parentPort.postMessage(copied);
  wait = copied > 0 ? intervalMs : Math.min(idleIntervalMs, wait * 2);
  timer = setTimeout(tick, wait);
};
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearTimeout(timer);
  if (fd !== undefined) fs.closeSync(fd);
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
          minPages: options.minPages ?? 1000,
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
