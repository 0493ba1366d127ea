/**
 * The task lifecycle, as one XState v5 machine: the single definition of which state change is allowed when.
 *
 * | state       | entered when                                        | leaves on                                  |
 * |-------------|-----------------------------------------------------|--------------------------------------------|
 * | scheduled   | enqueued with a delay / runAt, or by a schedule    | due → queued; cancel                       |
 * | queued      | enqueued; due; released; lease expired; requeued    | start → running; cancel                    |
 * | running     | claimed by a node (the attempt is counted)          | succeed, fail, time_out, cancel, release,  |
 * |             |                                                     | lease_expired                              |
 * | retrying    | an attempt failed or timed out and may run again    | due → queued; cancel                       |
 * | succeeded   | the handler returned                                | (final)                                    |
 * | failed      | an attempt failed with no retry left, or permanently| requeue → queued (dead letter put back)    |
 * | cancelled   | cancel while not final                              | requeue → queued                           |
 * | timed_out   | the last attempt ran past its timeout               | requeue → queued                           |
 *
 * `fail`, `time_out` and `lease_expired` carry `retry`: whether the retry policy allows another attempt (decided by
 * the executor from the policy and the error's hint). The machine stays pure data; every side effect is the named
 * action `record`, which the task actor provides.
 *
 * Running a full XState actor per task costs ≈20 µs; the hot path instead uses `TRANSITIONS`, a table derived from
 * this machine's config once at load, and test/actors/task-machine.test.ts checks the table against XState's own
 * `transition()` for every state, event and guard outcome.
 */
import { setup } from 'xstate';
import type { TaskState } from '../../src/task.ts';

export type TaskEvent =
  | { type: 'due' }
  | { type: 'start' }
  | { type: 'succeed' }
  | { type: 'fail'; retry: boolean }
  | { type: 'time_out'; retry: boolean }
  | { type: 'cancel' }
  | { type: 'release' }
  /** Given back before its own time (a schedule slot's task written ahead of its slot): it waits for it again. */
  | { type: 'release_before_due' }
  | { type: 'lease_expired'; retry: boolean }
  | { type: 'requeue' };

export type TaskEventType = TaskEvent['type'];

export const taskMachine = setup({
  types: {
    events: {} as TaskEvent,
    input: {} as { delayed: boolean },
  },
  guards: {
    shouldRetry: ({ event }) => 'retry' in event && event.retry === true,
    isDelayed: (_, params: { delayed: boolean }) => params.delayed,
  },
  actions: {
    record: () => {},
  },
}).createMachine({
  id: 'task',
  initial: 'created',
  context: ({ input }) => ({ delayed: input.delayed }),
  states: {
    created: {
      always: [
        { guard: { type: 'isDelayed', params: ({ context }) => ({ delayed: (context as { delayed: boolean }).delayed }) }, target: 'scheduled' },
        { target: 'queued' },
      ],
    },
    scheduled: {
      entry: 'record',
      on: { due: 'queued', cancel: 'cancelled' },
    },
    queued: {
      entry: 'record',
      on: { start: 'running', cancel: 'cancelled' },
    },
    running: {
      entry: 'record',
      on: {
        succeed: 'succeeded',
        fail: [{ guard: 'shouldRetry', target: 'retrying' }, { target: 'failed' }],
        time_out: [{ guard: 'shouldRetry', target: 'retrying' }, { target: 'timed_out' }],
        lease_expired: [{ guard: 'shouldRetry', target: 'queued' }, { target: 'failed' }],
        cancel: 'cancelled',
        release: 'queued',
        release_before_due: 'scheduled',
      },
    },
    retrying: {
      entry: 'record',
      on: { due: 'queued', cancel: 'cancelled' },
    },
    succeeded: { entry: 'record', tags: ['final'] },
    failed: { entry: 'record', tags: ['final', 'dead'], on: { requeue: 'queued' } },
    cancelled: { entry: 'record', tags: ['final', 'dead'], on: { requeue: 'queued' } },
    timed_out: { entry: 'record', tags: ['final', 'dead'], on: { requeue: 'queued' } },
  },
});

interface Candidate {
  target: TaskState;
  /** Only `shouldRetry` guards appear in the table. */
  guarded: boolean;
}

type Table = Record<TaskState, Partial<Record<TaskEventType, readonly Candidate[]>>>;

/** Reads the machine's config into a state × event table of candidate targets (in priority order). */
export function deriveTransitions(machine: typeof taskMachine): Table {
  const table = {} as Table;
  const states = machine.config.states as Record<string, { on?: Record<string, unknown> }>;
  for (const [state, node] of Object.entries(states)) {
    if (state === 'created') continue;
    const row: Partial<Record<TaskEventType, Candidate[]>> = {};
    for (const [event, spec] of Object.entries(node.on ?? {})) {
      const list = Array.isArray(spec) ? spec : [spec];
      row[event as TaskEventType] = list.map((entry) =>
        typeof entry === 'string'
          ? { target: entry as TaskState, guarded: false }
          : { target: (entry as { target: string }).target as TaskState, guarded: (entry as { guard?: unknown }).guard !== undefined },
      );
    }
    table[state as TaskState] = row;
  }
  return table;
}

/** The lifecycle table used on the hot path. */
export const TRANSITIONS: Readonly<Table> = deriveTransitions(taskMachine);

/** The state an event leads to from `state`, or undefined when the machine does not allow it. */
export function nextTaskState(state: TaskState, event: TaskEvent): TaskState | undefined {
  const candidates = TRANSITIONS[state]?.[event.type];
  if (candidates === undefined) return undefined;
  for (const c of candidates) {
    if (!c.guarded || ('retry' in event && event.retry)) return c.target;
  }
  return undefined;
}

/** The first state of a new task. */
export function initialTaskState(delayed: boolean): TaskState {
  return delayed ? 'scheduled' : 'queued';
}
