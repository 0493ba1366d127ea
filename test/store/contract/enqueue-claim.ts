/** Contract: enqueue, idempotency keys, delayed tasks, claim order per strategy, claim filters and leases. */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ManualClock } from '../../../src/clock.ts';
import type { ClaimRequest, Store, Strategy } from '../../../src/store/store.ts';
import { OWNER, ids, seededRandom, withStore, type ContractContext, type MakeStore } from './context.ts';

export function enqueueClaimContract(makeStore: MakeStore): void {
  describe('enqueue', () => {
    it('round-trips every field through get', () =>
      withStore(makeStore, {}, async ({ store, task, clock }) => {
        const t = task({
          name: 'report',
          input: { date: '2026-11-23', nested: { list: [1, 'two', null, true] }, unicode: 'café 🎉' },
          priority: 7,
          weight: 2.5,
          key: 'order-42',
          maxAttempts: 5,
          scheduleId: 'nightly',
          options: { timeoutMs: 1500, retry: { attempts: 5, backoff: 'exponential', delayMs: 100, maxDelayMs: 1000, jitter: 0.2 } },
        });
        assert.deepEqual(await store.enqueue([t]), [{ id: t.id, created: true, state: 'queued' }]);
        assert.deepEqual(await store.get(t.id), {
          id: t.id,
          name: 'report',
          state: 'queued',
          input: t.input,
          priority: 7,
          weight: 2.5,
          key: 'order-42',
          attempts: 0,
          maxAttempts: 5,
          createdAt: clock.now(),
          runAt: clock.now(),
          updatedAt: clock.now(),
          scheduleId: 'nightly',
          options: t.options,
        });
        assert.equal(await store.get('0'.repeat(28)), undefined);
      }));

    it('keeps null, scalar and array inputs as they are', () =>
      withStore(makeStore, {}, async ({ store, add }) => {
        for (const input of [null, 0, 'text', [1, 2], false]) {
          const t = await add({ input });
          assert.deepEqual((await store.get(t.id))?.input, input);
        }
      }));

    it('inserts a batch and answers in input order', () =>
      withStore(makeStore, {}, async ({ store, task, clock }) => {
        const batch = [task(), task({ runAt: clock.now() + 1000 }), task()];
        const res = await store.enqueue(batch);
        assert.deepEqual(res, [
          { id: batch[0]!.id, created: true, state: 'queued' },
          { id: batch[1]!.id, created: true, state: 'scheduled' },
          { id: batch[2]!.id, created: true, state: 'queued' },
        ]);
        assert.deepEqual(await store.enqueue([]), []);
      }));

    it('returns the first task for a second enqueue with the same key, whatever its state', () =>
      withStore(makeStore, {}, async ({ store, add, task, claim, succeed }) => {
        const first = await add({ key: 'k1' });
        const again = task({ key: 'k1', input: { other: true } });
        assert.deepEqual(await store.enqueue([again]), [{ id: first.id, created: false, state: 'queued' }]);
        assert.equal(await store.get(again.id), undefined);
        const [running] = await claim();
        assert.deepEqual(await store.enqueue([task({ key: 'k1' })]), [{ id: first.id, created: false, state: 'running' }]);
        assert.equal(await succeed(running!), true);
        assert.deepEqual(await store.enqueue([task({ key: 'k1' })]), [{ id: first.id, created: false, state: 'succeeded' }]);
        assert.deepEqual((await store.get(first.id))?.input, first.input);
      }));

    it('applies idempotency keys inside one batch', () =>
      withStore(makeStore, {}, async ({ store, task }) => {
        const a = task({ key: 'same' });
        const b = task({ key: 'same' });
        const c = task({ key: 'other' });
        const res = await store.enqueue([a, b, c]);
        assert.deepEqual(res, [
          { id: a.id, created: true, state: 'queued' },
          { id: a.id, created: false, state: 'queued' },
          { id: c.id, created: true, state: 'queued' },
        ]);
        assert.equal((await store.counts(0)).byState.queued, 2);
      }));

    it('a long batch: a repeated id and key answer with the first, an existing id with the stored task', () =>
      withStore(makeStore, {}, async ({ store, task, add }) => {
        const old = await add();
        const batch = Array.from({ length: 70 }, (_, i) => task({ input: { i } }));
        batch[10] = { ...batch[9]!, input: 'again' };
        batch[40] = { ...batch[40]!, key: 'k' };
        batch[41] = { ...batch[41]!, key: 'k' };
        batch[50] = { ...old, input: 'again' };
        const res = await store.enqueue(batch);
        const created = res.filter((r) => r.created).length;
        assert.equal(created, 67);
        assert.deepEqual(res[10], { id: batch[9]!.id, created: false, state: 'queued' });
        assert.deepEqual(res[41], { id: batch[40]!.id, created: false, state: 'queued' });
        assert.deepEqual(res[50], { id: old.id, created: false, state: 'queued' });
        assert.deepEqual(res[69], { id: batch[69]!.id, created: true, state: 'queued' });
        assert.deepEqual((await store.get(batch[9]!.id))?.input, { i: 9 });
        assert.equal(await store.get(batch[41]!.id), undefined);
        assert.deepEqual(await store.history(batch[69]!.id), [{ taskId: batch[69]!.id, from: null, to: 'queued', at: batch[69]!.createdAt, attempt: 0 }]);
        assert.equal((await store.counts(0)).byState.queued, 68);
      }));

    it('treats a second enqueue of the same id as a no-op', () =>
      withStore(makeStore, {}, async ({ store, task }) => {
        const a = task();
        await store.enqueue([a]);
        assert.deepEqual(await store.enqueue([{ ...a, input: 'changed' }]), [{ id: a.id, created: false, state: 'queued' }]);
        assert.deepEqual((await store.get(a.id))?.input, a.input);
      }));
  });

  describe('delayed tasks', () => {
    it('are scheduled, not claimed before runAt, and claimed once due', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const t = await add({ runAt: clock.now() + 5000 });
        assert.equal((await store.get(t.id))?.state, 'scheduled');
        assert.equal(await store.nextRunAt(), t.runAt);
        await clock.advanceTo(t.runAt - 1);
        assert.deepEqual(await claim(), []);
        await clock.advanceTo(t.runAt);
        const claimed = await claim();
        assert.deepEqual(ids(claimed), [t.id]);
        assert.equal(claimed[0]!.state, 'running');
        assert.equal(await store.nextRunAt(), undefined);
        const history = await store.history(t.id);
        assert.deepEqual(history.map((h) => [h.from, h.to, h.attempt]), [
          [null, 'scheduled', 0],
          ['scheduled', 'queued', 0],
          ['queued', 'running', 1],
        ]);
      }));
  });

  describe('claim order', () => {
    const orderOf = async (strategy: Strategy, fields: Array<{ priority?: number; delay?: number }>) => {
      let order: number[] = [];
      await withStore(makeStore, { strategy }, async ({ add, claim, clock }) => {
        const added: string[] = [];
        for (const f of fields) {
          const t = await add({ priority: f.priority ?? 0, runAt: clock.now() + (f.delay ?? 0) });
          added.push(t.id);
        }
        await clock.advance(10_000);
        const one = await claim({ limit: 1 });
        const rest = await claim({ limit: 100 });
        order = ids([...one, ...rest]).map((id) => added.indexOf(id));
      });
      return order;
    };

    it('fifo takes the oldest first', async () => {
      assert.deepEqual(await orderOf('fifo', [{}, {}, {}, {}]), [0, 1, 2, 3]);
    });

    it('lifo takes the newest first', async () => {
      assert.deepEqual(await orderOf('lifo', [{}, {}, {}, {}]), [3, 2, 1, 0]);
    });

    it('priority takes the highest priority first, fifo within a priority', async () => {
      assert.deepEqual(
        await orderOf('priority', [{ priority: 1 }, { priority: 5 }, { priority: -2 }, { priority: 5 }, { priority: 3 }]),
        [1, 3, 4, 0, 2],
      );
    });

    it('weighted-random takes the oldest within one weight', async () => {
      assert.deepEqual(await orderOf('weighted-random', [{}, {}, {}, {}]), [0, 1, 2, 3]);
    });

    it('orders a due delayed task by its runAt (fifo and lifo)', async () => {
      // task 0 waits until after task 1 and 2 were created
      assert.deepEqual(await orderOf('fifo', [{ delay: 3 }, {}, {}, {}]), [1, 2, 0, 3]);
      assert.deepEqual(await orderOf('lifo', [{ delay: 3 }, {}, {}, {}]), [3, 0, 2, 1]);
    });

    it('weighted-random picks each task with a chance proportional to its weight', () =>
      withStore(makeStore, { strategy: 'weighted-random', random: seededRandom(20261123) }, async ({ store, task, claim, clock }) => {
        // 1000 tasks of each weight; 10,000 draws in claims of 10, each claim released at once, so the
        // classes stay (within 1 %) the same size and every draw expects weight / 10 of the picks
        const weights = [1, 2, 7];
        const perClass = 1000;
        const order = new Map<string, { weight: number; rank: number }>();
        const batch = weights.flatMap((weight) =>
          Array.from({ length: perClass }, (_, rank) => {
            const t = task({ weight, runAt: clock.now() + rank - perClass, createdAt: clock.now() + rank - perClass });
            order.set(t.id, { weight, rank });
            return t;
          }),
        );
        await store.enqueue(batch);
        const draws = 10_000;
        const hits = new Map<number, number>(weights.map((w) => [w, 0]));
        for (let done = 0; done < draws; done += 10) {
          const claimed = await claim({ limit: 10 });
          assert.equal(claimed.length, 10);
          const ranks = new Map<number, number[]>();
          for (const t of claimed) {
            const { weight, rank } = order.get(t.id)!;
            hits.set(weight, hits.get(weight)! + 1);
            ranks.set(weight, [...(ranks.get(weight) ?? []), rank]);
          }
          // released tasks keep their runAt, so within a class the oldest are always the ones picked
          for (const list of ranks.values()) assert.deepEqual(list, list.map((_, i) => i));
          const ops = claimed.map((t) => ({ type: 'release' as const, id: t.id, owner: OWNER, attempt: t.attempts, at: clock.now(), reason: 'test' }));
          assert.ok((await store.settle(ops)).every(Boolean));
        }
        const total = weights.reduce((a, b) => a + b, 0);
        let chi2 = 0;
        for (const w of weights) {
          const expected = (draws * w) / total;
          chi2 += (hits.get(w)! - expected) ** 2 / expected;
          const sigma = Math.sqrt(draws * (w / total) * (1 - w / total));
          assert.ok(Math.abs(hits.get(w)! - expected) < 4 * sigma, `weight ${w}: ${hits.get(w)} hits, expected ${expected}`);
        }
        // chi-square with 2 degrees of freedom: 13.8 is the 0.1 % critical value
        assert.ok(chi2 < 13.8, `chi2 ${chi2.toFixed(2)} with hits ${JSON.stringify([...hits])}`);
      }));

    for (const strategy of ['fifo', 'priority', 'weighted-random'] as const) {
      it(`${strategy}: a due delayed task is not starved by a stream of new queued ones`, () =>
        withStore(makeStore, { strategy, random: seededRandom(7) }, async ({ add, claim, clock }) => {
          const delayed = await add({ runAt: clock.now() + 50 });
          let claimedAt = -1;
          for (let round = 0; round < 200 && claimedAt < 0; round++) {
            await add();
            const [t] = await claim({ limit: 1 });
            if (t?.id === delayed.id) claimedAt = round;
          }
          assert.ok(claimedAt >= 0, 'the delayed task was never claimed');
          // it is due from round 49 on, and older than every task created after that
          assert.ok(claimedAt <= 60, `claimed only at round ${claimedAt}`);
        }));
    }
  });

  describe('claim filters', () => {
    const setup = async (add: (f?: object) => Promise<{ id: string }>) => {
      for (const name of ['a', 'b', 'c', 'a', 'b', 'c', 'a']) await add({ name });
    };

    it('takes only the given names', () =>
      withStore(makeStore, {}, async ({ add, claim }) => {
        await setup(add);
        const got = await claim({ names: ['a', 'c'] });
        assert.deepEqual(got.map((t) => t.name), ['a', 'c', 'a', 'c', 'a']);
        assert.deepEqual(await claim({ names: [] }), []);
      }));

    it('never takes excluded names', () =>
      withStore(makeStore, {}, async ({ add, claim }) => {
        await setup(add);
        assert.deepEqual((await claim({ exclude: ['a'] })).map((t) => t.name), ['b', 'c', 'b', 'c']);
      }));

    it('caps names with perName and respects the overall limit', () =>
      withStore(makeStore, {}, async ({ add, claim }) => {
        await setup(add);
        assert.deepEqual((await claim({ perName: { a: 1, b: 0 }, limit: 3 })).map((t) => t.name), ['a', 'c', 'c']);
        assert.deepEqual((await claim({ perName: { a: 1 }, names: ['a', 'b'] })).map((t) => t.name), ['b', 'a', 'b']);
        assert.deepEqual((await claim()).map((t) => t.name), ['a']);
      }));

    // Many rows per name, so a store that reads each name apart has to merge them and fetch again mid-claim.
    for (const strategy of ['fifo', 'lifo', 'priority'] as const satisfies readonly Strategy[]) {
      it(`${strategy}: several names interleave in the strategy's order, with exclusions and caps`, () =>
        withStore(makeStore, { strategy }, async ({ store, task, claim, clock }) => {
          const names = ['a', 'b', 'c', 'd'];
          const added = Array.from({ length: 120 }, (_, i) => {
            // runs of one name, of varying length, and priorities that cut across them
            const t = task({ name: names[Math.floor(i / (1 + (i % 5))) % names.length]!, priority: (i * 7) % 4, runAt: clock.now() + i, createdAt: clock.now() + i });
            return { ...t, rank: i };
          });
          await store.enqueue(added);
          await clock.advance(1000);
          const before = (x: (typeof added)[number], y: (typeof added)[number]): number => {
            if (strategy === 'priority' && x.priority !== y.priority) return y.priority - x.priority;
            return strategy === 'lifo' ? y.rank - x.rank : x.rank - y.rank;
          };
          const order = [...added].sort(before);
          // a is capped at 7, b excluded, c and d free
          const capped: string[] = [];
          const expected = order.filter((t) => t.name !== 'b' && (t.name !== 'a' || capped.push(t.id) <= 7)).slice(0, 50);
          const first = await claim({ limit: 50, names, exclude: ['b'], perName: { a: 7 } });
          assert.deepEqual(ids(first), ids(expected));
          const taken = new Set(ids(first));
          const rest = await claim({ limit: 1000 });
          assert.deepEqual(ids(rest), ids(order.filter((t) => !taken.has(t.id))));
        }));
    }

    it('takes nothing when every listed name is excluded or capped at 0, and leaves the tasks queued', () =>
      withStore(makeStore, {}, async ({ store, add, claim }) => {
        await setup(add);
        assert.deepEqual(await claim({ names: ['a', 'b'], exclude: ['a'], perName: { b: 0 } }), []);
        assert.equal((await store.counts(Date.now())).byState.queued, 7);
        assert.equal((await claim({ names: ['a', 'b'] })).length, 5);
      }));

    it('honours limit and returns nothing for limit 0', () =>
      withStore(makeStore, {}, async ({ add, claim }) => {
        await setup(add);
        assert.deepEqual(await claim({ limit: 0 }), []);
        assert.equal((await claim({ limit: 2 })).length, 2);
        assert.equal((await claim({ limit: 100 })).length, 5);
        assert.deepEqual(await claim(), []);
      }));
  });

  describe('leases', () => {
    it('a claim sets owner, lease, attempts and startedAt', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const t = await add();
        const [c] = await claim({ owner: 'node-x', leaseMs: 1234 });
        const expected = { state: 'running', owner: 'node-x', leaseUntil: clock.now() + 1234, attempts: 1, startedAt: clock.now(), updatedAt: clock.now() };
        assert.deepEqual({ state: c!.state, owner: c!.owner, leaseUntil: c!.leaseUntil, attempts: c!.attempts, startedAt: c!.startedAt, updatedAt: c!.updatedAt }, expected);
        assert.deepEqual(await store.get(t.id), c);
      }));

    it('heartbeat extends the leases of one owner, all or by id, and never shortens one', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        await add();
        await add();
        await add();
        const [a, b] = await claim({ owner: 'n1', limit: 2 });
        const [c] = await claim({ owner: 'n2' });
        assert.equal(await store.heartbeat('n1', clock.now() + 99_000), 2);
        assert.equal((await store.get(a!.id))?.leaseUntil, clock.now() + 99_000);
        assert.equal((await store.get(c!.id))?.leaseUntil, c!.leaseUntil);
        assert.equal(await store.heartbeat('n1', clock.now() + 120_000, [b!.id, c!.id]), 1);
        assert.equal((await store.get(b!.id))?.leaseUntil, clock.now() + 120_000);
        assert.equal((await store.get(a!.id))?.leaseUntil, clock.now() + 99_000);
        assert.equal(await store.heartbeat('nobody', clock.now() + 1), 0);
        // A late heartbeat (an earlier, shorter lease) keeps the longer one, and still counts the task.
        assert.equal(await store.heartbeat('n1', clock.now() + 50_000), 2);
        assert.equal((await store.get(a!.id))?.leaseUntil, clock.now() + 99_000);
        assert.equal((await store.get(b!.id))?.leaseUntil, clock.now() + 120_000);
      }));

    // A process restarted with the node id of one that crashed renews the tasks it holds by id, and only those: the
    // crashed one's tasks under the same owner must expire. Hundreds of ids go in one call.
    it('heartbeat with ids extends those leases only, hundreds in one call; none for an empty list', () =>
      withStore(makeStore, {}, async ({ store, task, claim, clock }) => {
        const many = Array.from({ length: 300 }, (_, i) => task({ input: { i } }));
        await store.enqueue(many);
        const claimed = await claim({ owner: 'n1', limit: 300 });
        assert.equal(claimed.length, 300);
        const before = claimed[0]!.leaseUntil!;
        const held = claimed.slice(0, 250).map((t) => t.id);
        const orphans = claimed.slice(250);
        await clock.advance(1000);
        // Ids of tasks that are not running under this owner are not counted: one unknown, one queued elsewhere.
        const [queued] = await store.enqueue([task({ input: { queued: true } })]);
        assert.equal(await store.heartbeat('n1', clock.now() + 30_000, [...held, 'no-such-task', queued!.id]), 250);
        for (const id of held) assert.equal((await store.get(id))?.leaseUntil, clock.now() + 30_000);
        for (const t of orphans) assert.equal((await store.get(t.id))?.leaseUntil, before, 'a task not named keeps its lease');
        assert.equal((await store.get(queued!.id))?.leaseUntil, undefined);
        assert.equal(await store.heartbeat('n1', clock.now() + 60_000, []), 0);
        assert.equal((await store.get(held[0]!))?.leaseUntil, clock.now() + 30_000);
        // The tasks not named expire while the named ones are renewed.
        await clock.advance(30_000);
        assert.equal(await store.heartbeat('n1', clock.now() + 30_000, held), 250);
        const recovered = await store.recoverExpired(clock.now());
        assert.deepEqual(recovered.map((t) => t.id).sort(), orphans.map((t) => t.id).sort());
      }));

    it('recoverExpired requeues an expired lease: the first lost run adds an attempt, later ones use one up, then it fails', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const t = await add({ maxAttempts: 2 });
        const other = await add();
        await claim({ limit: 1, leaseMs: 1000 });
        await clock.advance(500);
        const [o] = await claim({ leaseMs: 10_000 });
        assert.equal(o!.id, other.id);
        await clock.advance(501);
        assert.deepEqual(await store.recoverExpired(clock.now() - 2), []);
        const [back] = await store.recoverExpired(clock.now());
        assert.equal(back?.id, t.id);
        assert.equal(back?.state, 'queued');
        assert.deepEqual([back?.attempts, back?.maxAttempts], [1, 3], 'the attempt counts (it fences the lost run) and one is added');
        assert.equal(back?.owner, undefined);
        assert.equal(back?.leaseUntil, undefined);
        assert.equal((await store.get(other.id))?.state, 'running');
        const last = async () => {
          const h = (await store.history(t.id)).at(-1)!;
          return { from: h.from, to: h.to, attempt: h.attempt, reason: h.reason };
        };
        assert.deepEqual(await last(), { from: 'running', to: 'queued', attempt: 1, reason: 'lease expired (one attempt added)' });

        // Lost again: this one uses its attempt up (one of three left after it).
        const [second] = await claim({ owner: 'node-b', leaseMs: 1000 });
        assert.equal(second?.attempts, 2);
        await clock.advance(1001);
        const [counted] = await store.recoverExpired(clock.now());
        assert.deepEqual([counted?.state, counted?.attempts, counted?.maxAttempts], ['queued', 2, 3]);
        assert.deepEqual(await last(), { from: 'running', to: 'queued', attempt: 2, reason: 'lease expired' });

        const [third] = await claim({ owner: 'node-c', leaseMs: 1000 });
        assert.equal(third?.attempts, 3);
        await clock.advance(1001);
        const [dead] = await store.recoverExpired(clock.now());
        assert.equal(dead?.state, 'failed');
        assert.equal(dead?.error?.code, 'TROUPE_ERR_LEASE_EXPIRED');
        assert.equal(dead?.finishedAt, clock.now());
        assert.equal((await store.history(t.id)).at(-1)?.to, 'failed');
        assert.deepEqual(await claim({ owner: 'node-d' }), []);
      }));

    it('a task with one attempt whose node was lost runs again once, then fails with TROUPE_ERR_LEASE_EXPIRED', () =>
      withStore(makeStore, {}, async ({ store, add, claim, clock }) => {
        const t = await add({ maxAttempts: 1 });
        await claim({ leaseMs: 1000 });
        await clock.advance(1001);
        assert.deepEqual((await store.recoverExpired(clock.now())).map((r) => [r.id, r.state, r.attempts, r.maxAttempts]), [[t.id, 'queued', 1, 2]]);
        const [again] = await claim({ owner: 'node-b', leaseMs: 1000 });
        assert.equal(again?.attempts, 2);
        await clock.advance(1001);
        const [dead] = await store.recoverExpired(clock.now());
        assert.deepEqual([dead?.state, dead?.error?.code], ['failed', 'TROUPE_ERR_LEASE_EXPIRED']);
      }));
  });


  describe('enqueue and claim in one call', () => {
    /** Runs `fn` when the adapter has the optional verb; otherwise the test is skipped and says why. */
    const withCombined = (fn: (ctx: ContractContext, combined: NonNullable<Store['enqueueAndClaim']>) => Promise<void>) => (t: TestContext) =>
      withStore(makeStore, { strategy: 'priority' }, async (ctx) => {
        if (!ctx.store.enqueueAndClaim) {
          t.skip(`the ${ctx.store.kind} store has no enqueueAndClaim (it enqueues and claims separately)`);
          return;
        }
        await fn(ctx, ctx.store.enqueueAndClaim.bind(ctx.store));
      });
    const request = (clock: ManualClock, fields: Partial<ClaimRequest> = {}): ClaimRequest => ({ owner: OWNER, limit: 8, leaseMs: 30_000, now: clock.now(), ...fields });

    it('leases a new due task in the same call, as a claim after the enqueue would', withCombined(async ({ store, task, clock }, combined) => {
      const t = task();
      const { results, claimed } = await combined([t], request(clock));
      assert.deepEqual(results, [{ id: t.id, created: true, state: 'queued' }]);
      assert.deepEqual(ids(claimed), [t.id]);
      assert.equal(claimed[0]!.state, 'running');
      assert.equal(claimed[0]!.attempts, 1);
      assert.equal(claimed[0]!.owner, OWNER);
      assert.equal(claimed[0]!.leaseUntil, clock.now() + 30_000);
      assert.equal((await store.get(t.id))?.state, 'running');
      assert.deepEqual((await store.history(t.id)).map((h) => h.to), ['queued', 'running']);
    }));

    it('claims in strategy order: an older or more urgent due task goes first', withCombined(async ({ store, task, add, clock }, combined) => {
      const old = await add();
      const urgent = await add({ priority: 5 });
      const t = task();
      const { results, claimed } = await combined([t], request(clock, { limit: 2 }));
      assert.equal(results[0]!.created, true);
      assert.deepEqual(ids(claimed), [urgent.id, old.id]);
      assert.equal((await store.get(t.id))?.state, 'queued');
    }));

    it('claims nothing that is not due, not named, or over the limit', withCombined(async ({ store, task, clock }, combined) => {
      const later = task({ runAt: clock.now() + 1000 });
      const other = task({ name: 'other' });
      const a = task();
      const b = task();
      const { results, claimed } = await combined([later, other, a, b], request(clock, { limit: 1, names: ['job'] }));
      assert.deepEqual(results.map((r) => r.state), ['scheduled', 'queued', 'queued', 'queued']);
      assert.deepEqual(ids(claimed), [a.id]);
      assert.equal((await store.get(b.id))?.state, 'queued');
      assert.equal((await store.get(other.id))?.state, 'queued');
      assert.deepEqual(ids((await combined([], request(clock, { limit: 0 }))).claimed), []);
    }));

    it('answers a matched idempotency key with the existing task, which is claimed once only', withCombined(async ({ task, clock }, combined) => {
      const first = task({ key: 'k' });
      const one = await combined([first], request(clock));
      assert.deepEqual(ids(one.claimed), [first.id]);
      const again = await combined([task({ key: 'k' })], request(clock));
      assert.deepEqual(again.results, [{ id: first.id, created: false, state: 'running' }]);
      assert.deepEqual(again.claimed, []);
    }));
  });
}
