/**
 * The Backend in-process: commands call an embedded `Runtime` directly (`troupe run`, `troupe repl --config`).
 * Following output subscribes to the task's facts first and then reads what was already captured, so no line
 * falls between the two; lines are told apart by their `seq`. A task another node runs (a shared store) is
 * followed through the store: its lines every ELSEWHERE_POLL_MS, its end when the store has it final.
 */
import type { TimerHandle } from '../clock.ts';
import { ErrorCodes, TroupeError, isTroupeError, type SerializedError } from '../errors.ts';
import { ELSEWHERE_POLL_MS, type Runtime } from '../runtime.ts';
import { isFinalState, type OutputLine, type Progress, type TaskState } from '../task.ts';
import { MAINTENANCE_TASKS, normalizeTaskTypes, type Backend, type FollowOptions, type FollowState } from './backend.ts';
import type { FollowEnd } from './client.ts';

export interface LocalBackendOptions {
  /** What `target` says. @default 'embedded runtime' */
  target?: string;
  /** Close the runtime when the backend closes. @default true */
  closeRuntime?: boolean;
  /** How long running tasks may finish when the runtime closes. @default '10s' */
  closeTimeout?: number | string;
}

const OUTCOMES = ['task.succeeded', 'task.failed', 'task.cancelled', 'task.timed_out'] as const;

/** Why: the same command set runs against an embedded runtime without a server. */
export function createLocalBackend(rt: Runtime, options: LocalBackendOptions = {}): Backend {
  const get = async (id: string) => {
    const view = await rt.get(id as never);
    if (!view) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\` — \`ps\` lists recent tasks`);
    return view;
  };
  return {
    target: options.target ?? 'embedded runtime',
    enqueue: (name, input, o) => rt.enqueue(name, input, o as never),
    get,
    list: (query = {}) => rt.list({ ...(query as object) } as never),
    cancel: (id) => rt.cancel(id as never),
    retry: async (id) => {
      await rt.retry(id as never);
    },
    output: (id) => rt.output(id as never, { limit: 100_000 }),
    follow: (id, o) => followLocal(rt, id, o ?? {}),
    taskTypes: async () => normalizeTaskTypes(rt.tasks()),
    schedules: () => rt.schedules(),
    schedule: async (id, action) => {
      if (action === 'trigger') return rt.triggerSchedule(id);
      await (action === 'pause' ? rt.pauseSchedule(id) : rt.resumeSchedule(id));
      return undefined;
    },
    queue: async (name, action) => {
      await (action === 'pause' ? rt.pause(name) : rt.resume(name));
    },
    maintenance: async (name, input) => {
      if (!(MAINTENANCE_TASKS as readonly string[]).includes(name)) {
        throw new TroupeError(ErrorCodes.UNKNOWN_TASK, `No maintenance task \`${name}\`: use one of ${MAINTENANCE_TASKS.join(', ')}`);
      }
      return rt.enqueue(name, input ?? {});
    },
    advise: (name) => rt.advise(name),
    health: async () => {
      // The shape of `GET /api/health?full=1`, so both modes render alike.
      const live = rt.liveness();
      const counts = live.status === 'running' ? await rt.counts().catch(() => undefined) : undefined;
      const report = live.status === 'running' && rt.builtin ? await rt.builtin.healthCheck() : undefined;
      const now = rt.options.clock.now();
      return {
        status: live.escalated ? 'escalated' : live.status !== 'running' ? live.status : 'ok',
        runtime: live.status,
        uptimeMs: live.uptimeMs,
        nodeId: live.nodeId,
        store: live.store,
        ...(counts ? { tasks: { queued: counts.byState.queued, due: counts.due, running: counts.byState.running, oldestDueAgeMs: counts.oldestDueAt !== undefined ? Math.max(0, now - counts.oldestDueAt) : 0 } } : {}),
        ...(live.escalated ? { escalated: live.escalated } : {}),
        ...(report ? { report } : {}),
      };
    },
    tree: async () => rt.tree(),
    restart: (address) => rt.restartActor(address),
    close: async () => {
      if (options.closeRuntime !== false) await rt.close({ timeout: (options.closeTimeout ?? '10s') as never });
    },
  };
}

async function followLocal(rt: Runtime, id: string, { signal, onLine, onProgress, onState }: FollowOptions): Promise<FollowEnd | undefined> {
  if (signal?.aborted) return undefined;
  let lastSeq = Number.NEGATIVE_INFINITY;
  // Lines and progress keep the order the tracker published them in.
  const live: Array<{ line: OutputLine } | { progress: Progress } | { state: FollowState }> = [];
  let ended = false;
  let stopped = false;
  /** Cancelled while it ran: the end waits for `task.stopped`. */
  let stopping = false;
  /** Ends the wait for another node's `task.stopped` that does not come. */
  let stopWait: TimerHandle | undefined;
  /** It started on this node, or a line of it was heard: its lines come live, the store is not read for them. */
  let here = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  /** Ends the follow, at once (`wait` undefined) or once the run's stop is heard, at most `wait` ms from now. */
  const endAfterStop = (wait: number | undefined): void => {
    if (wait === undefined) {
      ended = true;
      poke();
      return;
    }
    stopping = true;
    if (wait !== Infinity) {
      stopWait = rt.options.clock.setTimeout(() => {
        stopped = true;
        ended = true;
        poke();
      }, wait);
      stopWait.unref?.();
    }
  };
  const emit = (line: OutputLine) => {
    if (line.seq >= 0 && line.seq <= lastSeq) return;
    if (line.seq >= 0) lastSeq = line.seq;
    onLine?.(line);
  };
  const offs = [
    rt.on('task.output', (f) => {
      if (f.id !== id) return;
      here = true;
      live.push({ line: f.line });
      poke();
    }),
    rt.on('task.progress', (f) => {
      if (f.id !== id) return;
      live.push({ progress: f.progress });
      poke();
    }),
    rt.on('task.started', (f) => {
      if (f.id === id) here = true;
    }),
    rt.on('task.queued', (f) => {
      if (f.id === id) here = false;
    }),
    rt.on('task.retrying', (f) => {
      if (f.id !== id) return;
      here = false;
      live.push({ state: { state: 'retrying', attempts: f.attempt, runAt: f.runAt, error: f.error } });
      poke();
    }),
    ...OUTCOMES.map((type) =>
      rt.on(type, (f) => {
        if (f.id !== id) return;
        // Cancelled while it ran: its process may print while it stops; the follow ends once it has (the stop of
        // a run on another node is heard where the store announces it, and waited for only so long).
        endAfterStop(f.type === 'task.cancelled' && !stopped ? rt.stopWaitMs(f) : undefined);
      }),
    ),
    rt.on('task.stopped', (f) => {
      if (f.id !== id) return;
      stopped = true;
      ended = true;
      poke();
    }),
  ];
  const onAbort = () => poke();
  signal?.addEventListener('abort', onAbort);
  // On a shared store another node may run it: its end is read from the store, its lines too (every
  // ELSEWHERE_POLL_MS while it is not seen running here). A memory store has no other node.
  let poll: TimerHandle | undefined;
  const clock = rt.options.clock;
  const armPoll = (): void => {
    poll = clock.setTimeout(() => {
      if (ended || here) return armPoll();
      rt.output(id as never, { after: Number.isFinite(lastSeq) ? lastSeq : -1, limit: 100_000 }).then(
        (lines) => {
          for (const line of lines) live.push({ line });
          if (lines.length > 0) poke();
          if (poll !== undefined) armPoll();
        },
        () => {
          if (poll !== undefined) armPoll();
        },
      );
    }, ELSEWHERE_POLL_MS);
    poll.unref?.();
  };
  /** Aborted when the follow ends: withdraws its wait for the task's end. */
  const gone = new AbortController();
  /**
   * Final in the store, heard by a read (it ended on another node, or the store's word came before this node's fact):
   * a task cancelled while it ran (its last transition `running → cancelled`) waits for its run's stop as a cancel
   * heard here does, or the lines that run prints while it stops would be cut off.
   */
  const finalAnywhere = (): void => {
    if (stopping || ended) return;
    rt.get(id as never).then(
      (view) => {
        if (stopping || ended) return;
        const last = view?.history?.[view.history.length - 1];
        const cancelledRunning = view?.state === 'cancelled' && last?.to === 'cancelled' && last.from === 'running';
        endAfterStop(cancelledRunning && !stopped ? rt.stopWaitMs({ name: view.name, previous: 'running', owner: view.owner }) : undefined);
      },
      () => endAfterStop(undefined),
    );
  };
  try {
    // Lines published before the subscription are written by now; the seq check drops the ones seen twice.
    await rt.flush();
    const view = await rt.get(id as never);
    if (!view) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\` — \`ps\` lists recent tasks`);
    if (!isFinalState(view.state)) {
      rt.whenFinal(id as never, gone.signal).then(finalAnywhere, (error: unknown) => {
        if (!(isTroupeError(error) && error.code === ErrorCodes.CLOSED)) finalAnywhere();
      });
      if (rt.store.kind !== 'memory') armPoll();
    }
    for (const line of await rt.output(id as never, { limit: 100_000 })) emit(line);
    if (view.progress && !isFinalState(view.state)) onProgress?.(view.progress);
    if (isFinalState(view.state)) ended = true;
    for (;;) {
      while (live.length > 0) {
        const next = live.shift()!;
        if ('line' in next) emit(next.line);
        else if ('progress' in next) onProgress?.(next.progress);
        else onState?.(next.state);
      }
      if (signal?.aborted) return undefined;
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    await rt.flush();
    for (const line of await rt.output(id as never, { after: Number.isFinite(lastSeq) ? lastSeq : -1, limit: 100_000 })) emit(line);
    const final = await rt.get(id as never);
    return endOf(final?.state ?? 'failed', final?.result, final?.error);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const off of offs) off();
    const timer = poll;
    poll = undefined;
    clock.clearTimeout(timer);
    clock.clearTimeout(stopWait);
    gone.abort();
  }
}

function endOf(state: TaskState, result: unknown, error: SerializedError | undefined): FollowEnd {
  return { state, ...(result !== undefined ? { result } : {}), ...(error !== undefined ? { error } : {}) };
}
