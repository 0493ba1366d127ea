// A waiting task that comes due while this node may not claim it (its name or group is paused) must not wake the
// scheduler again and again: the timer for the next delayed task is armed past the claim's time, so the node
// sleeps until the next task it can run (or a resume). Before, every empty claim re-armed a timer at the paused
// task's past due time: ~1000 empty claims a second on a real clock (a query each on SQLite and PostgreSQL), and
// `ManualClock.advance` never returned. Memory, SQLite and PostgreSQL, on a ManualClock.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { Store } from '../../src/store/store.ts';
import { PG_URL, trackSchemas } from '../helpers/pg.ts';
import { tempDb } from '../helpers/temp-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const T0 = Date.UTC(2026, 0, 1);
/** Claims that finding nothing new may take in the steps below; a spinning scheduler makes thousands. */
const FEW_CLAIMS = 20;

const schemas = trackSchemas('dueheld');
after(() => schemas.dropAll());

const STORES = PG_URL ? (['memory', 'sqlite', 'postgres'] as const) : (['memory', 'sqlite'] as const);

function openStore(kind: (typeof STORES)[number]): string | Store {
  if (kind === 'memory') return 'memory';
  if (kind === 'sqlite') return `sqlite:${tempDb('due-held')}`;
  return createPostgresStore(PG_URL!, { schema: schemas.next(), poolSize: 2 });
}

function claims(rt: Runtime): number {
  return ((rt.tree().children?.find((c) => c.address === 'scheduler')?.info ?? {}) as { claims?: number }).claims ?? 0;
}

/** Advances the clock, failing (instead of never returning) when the scheduler claims over and over meanwhile. */
async function advanceQuietly(rt: Runtime, clock: ManualClock, ms: number, what: string): Promise<void> {
  const before = claims(rt);
  let done = false;
  const advanced = clock.advance(ms).then(() => (done = true));
  await waitFor(() => done || claims(rt) - before > FEW_CLAIMS, { timeout: 20_000 });
  assert.ok(claims(rt) - before <= FEW_CLAIMS, `${what}: the scheduler claimed ${claims(rt) - before} times`);
  await advanced;
}

describe('a due task this node may not claim does not make the scheduler spin', () => {
  for (const kind of STORES) {
    for (const hold of ['name', 'group'] as const) {
      it(`${kind}: paused ${hold}; a later task of another name still starts on its time; the held one runs on resume`, async () => {
        const clock = new ManualClock(T0);
        const runs: Array<[string, number]> = [];
        const rt = await createRuntime({
          store: openStore(kind),
          clock,
          maintenance: false,
          tasks: {
            held: { run: () => void runs.push(['held', clock.now()]) },
            other: { run: () => void runs.push(['other', clock.now()]) },
          },
        });
        try {
          if (hold === 'name') rt.pause('held');
          else rt.pauseGroup('g');
          await rt.enqueue('held', null, { delay: 1000, group: 'g' });
          await rt.enqueue('other', null, { delay: 3000 });
          await advanceQuietly(rt, clock, 1000, 'the held task came due');
          await advanceQuietly(rt, clock, 1000, 'a second passed with the held task due');
          assert.deepEqual(runs, []);
          await advanceQuietly(rt, clock, 1000, 'the other task came due');
          // A durable store answers the next due time after a round trip: a timer armed after the advance for a time
          // it passed fires at the next advance on a manual clock (at once on a real one), so time is nudged.
          await waitFor(
            async () => {
              await clock.advance(0);
              return runs.length === 1;
            },
            { timeout: 20_000 },
          );
          assert.deepEqual(runs, [['other', T0 + 3000]], 'the other name still starts on its time');
          if (hold === 'name') rt.resume('held');
          else rt.resumeGroup('g');
          await waitFor(() => runs.length === 2, { timeout: 20_000 });
          assert.deepEqual(runs[1], ['held', T0 + 3000], 'the held task runs once resumed');
        } finally {
          await rt.close({ timeout: 2000, force: true });
        }
      });
    }
  }
});
