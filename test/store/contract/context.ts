/**
 * What every contract test gets: a fresh store on a manual clock, a task factory that fills every `NewTask`
 * field, and short forms of the verbs the tests repeat. Only the Store interface is used, so the same tests
 * run against every adapter.
 */
import { ManualClock, type Clock } from '../../../src/clock.ts';
import { createTaskId } from '../../../src/ids.ts';
import type { ClaimRequest, SettleOp, Store, StoreOptions } from '../../../src/store/store.ts';
import type { NewTask, TaskRecord } from '../../../src/task.ts';

export type MakeStore = (options: StoreOptions & { clock: Clock }) => Promise<Store>;

export interface ContractContext {
  store: Store;
  clock: ManualClock;
  /** A complete NewTask at the clock's time (not enqueued). */
  task(fields?: Partial<NewTask>): NewTask;
  /** Enqueues one task, then moves the clock 1 ms so the next task is strictly younger. */
  add(fields?: Partial<NewTask>): Promise<NewTask>;
  /** Claims at the clock's time as `node-a` with a 30 s lease unless told otherwise. */
  claim(request?: Partial<ClaimRequest>): Promise<TaskRecord[]>;
  /** Settles one op and returns whether it applied. */
  settleOne(op: SettleOp): Promise<boolean>;
  /** Ends a claimed task with `succeeded`. */
  succeed(task: TaskRecord, result?: unknown): Promise<boolean>;
}

export const OWNER = 'node-a';
export const LEASE_MS = 30_000;

/** Runs `fn` against a fresh, opened store, and always closes it. */
export async function withStore(
  makeStore: MakeStore,
  options: StoreOptions,
  fn: (ctx: ContractContext) => Promise<void>,
): Promise<void> {
  const clock = new ManualClock();
  const store = await makeStore({ ...options, clock });
  await store.open();
  const task = (fields: Partial<NewTask> = {}): NewTask => {
    const now = clock.now();
    return {
      id: createTaskId(now),
      name: 'job',
      input: { n: 1 },
      priority: 0,
      weight: 1,
      maxAttempts: 3,
      createdAt: now,
      runAt: now,
      ...fields,
    };
  };
  const ctx: ContractContext = {
    store,
    clock,
    task,
    async add(fields) {
      const t = task(fields);
      await store.enqueue([t]);
      await clock.advance(1);
      return t;
    },
    claim: (request = {}) => store.claim({ owner: OWNER, limit: 100, leaseMs: LEASE_MS, now: clock.now(), ...request }),
    async settleOne(op) {
      const [applied] = await store.settle([op]);
      return applied === true;
    },
    async succeed(t, result = 'ok') {
      return ctx.settleOne({ type: 'succeeded', id: t.id, owner: t.owner!, attempt: t.attempts, at: clock.now(), result });
    },
  };
  try {
    await fn(ctx);
  } finally {
    await store.close();
  }
}

/** A small seeded PRNG (mulberry32), so that weighted-random tests are deterministic. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function ids(tasks: readonly { id: string }[]): string[] {
  return tasks.map((t) => t.id);
}
