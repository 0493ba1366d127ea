/**
 * The PostgreSQL store's verbs one phase at a time, with fixed batch sizes: `npx tsx bench/pg-phases.ts [options]`.
 *
 * The durable suite and bench/pg-cpu.ts run a whole runtime, whose claim and settle batch sizes follow the
 * timing of the moment (a settle may carry 50 outcomes or 1,500). Here the store is driven directly and the sizes
 * are fixed, so that two builds can be compared statement for statement. One round, on a fresh schema (strategy
 * `priority`, as in the durable suite):
 *
 * 1. enqueue `--tasks` no-ops in batches of 500;
 * 2. claim them `--claim` at a time (with the name list, as a runtime claims);
 * 3. settle them as succeeded, `--settle` outcomes a call.
 *
 * With `--awaited`, a phase between 1 and 2 marks every task awaited by another node (`awaitEnd`, 500 ids a call,
 * as a runtime's read of a backlog it waits for), so the settles name each task on the ended channel; the line
 * also tells what share of the marks' row updates were HOT (the row stayed on its heap page).
 *
 * Per phase: the store backends' CPU (utime + stime from /proc, 10 ms ticks) and the calls' wall time, per task.
 *
 * Options: --tasks N (20000), --claim N (64), --settle N (256), --rounds N (3), --awaited,
 * --url postgres://… (TROUPE_TEST_PG_URL or the local default).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createTaskId } from '../src/ids.ts';
import { createPostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { SettleOp } from '../src/store/store.ts';
import type { NewTask, TaskRecord } from '../src/task.ts';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    claim: { type: 'string', default: '64' },
    settle: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '3' },
    awaited: { type: 'boolean', default: false },
    url: { type: 'string', default: process.env.TROUPE_BENCH_PG_URL || process.env.TROUPE_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const TASKS = Number(args.tasks);
const CLAIM = Number(args.claim);
const SETTLE = Number(args.settle);
const ROUNDS = Number(args.rounds);
const URL_ = args.url!;
const OWNER = 'phases-node';

/** utime + stime of a process in µs (clock ticks of 10 ms), 0 once it is gone. */
function procCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 1e4;
  } catch {
    return 0;
  }
}

async function serverCpu(admin: pg.Client, tag: string): Promise<number> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [tag]);
  let sum = 0;
  for (const { pid } of rows) sum += procCpuUs(pid);
  return sum;
}

async function phase(admin: pg.Client, tag: string, label: string, body: () => Promise<void>): Promise<string> {
  const cpu0 = await serverCpu(admin, tag);
  const t0 = performance.now();
  await body();
  const wall = performance.now() - t0;
  const cpu = (await serverCpu(admin, tag)) - cpu0;
  return `${label} server ${(cpu / TASKS).toFixed(1).padStart(5)} µs  wall ${((wall * 1000) / TASKS).toFixed(1).padStart(5)} µs`;
}

async function round(r: number, admin: pg.Client): Promise<void> {
  const tag = `pgphases${process.pid}r${r}`;
  const schema = `bench_phases_${process.pid}_${r}`;
  const store = createPostgresStore(URL_, { schema, strategy: 'priority', applicationName: tag, listen: false });
  await store.open();
  try {
    const now = Date.now();
    const tasks: NewTask[] = Array.from({ length: TASKS }, (_, i) => ({
      id: createTaskId(now + i),
      name: 'noop',
      input: i,
      priority: 0,
      weight: 1,
      maxAttempts: 1,
      createdAt: now,
      runAt: now,
    }));
    const claimed: TaskRecord[] = [];
    const cols: string[] = [];
    cols.push(
      await phase(admin, tag, 'enqueue', async () => {
        for (let at = 0; at < TASKS; at += 500) await store.enqueue(tasks.slice(at, at + 500));
      }),
    );
    if (args.awaited) {
      // The heap page of each row: a mark changes no indexed column, so its new version is HOT exactly when it
      // stays on the page of the old one (there was room).
      const pages = async () => {
        const { rows } = await admin.query<{ id: string; page: number }>(`SELECT id, (ctid::text::point)[0]::int AS page FROM "${schema}".tasks`);
        return new Map(rows.map((r) => [r.id, r.page]));
      };
      const before = await pages();
      let marked = 0;
      cols.push(
        await phase(admin, tag, 'mark', async () => {
          for (let at = 0; at < TASKS; at += 500) marked += (await store.awaitEnd!(tasks.slice(at, at + 500).map((t) => t.id), 'waiter-node')).size;
        }),
      );
      if (marked !== TASKS) throw new Error(`marked ${marked} of ${TASKS}`);
      let stayed = 0;
      for (const [id, page] of await pages()) if (before.get(id) === page) stayed++;
      cols.push(`mark HOT ${((100 * stayed) / TASKS).toFixed(0)} %`);
    }
    cols.push(
      await phase(admin, tag, `claim ${CLAIM}`, async () => {
        for (;;) {
          const got = await store.claim({ owner: OWNER, limit: CLAIM, leaseMs: 60_000, now: Date.now(), names: ['noop'] });
          if (got.length === 0) break;
          for (const t of got) claimed.push(t);
        }
      }),
    );
    if (claimed.length !== TASKS) throw new Error(`claimed ${claimed.length} of ${TASKS}`);
    cols.push(
      await phase(admin, tag, `settle ${SETTLE}`, async () => {
        for (let at = 0; at < claimed.length; at += SETTLE) {
          const ops: SettleOp[] = claimed
            .slice(at, at + SETTLE)
            .map((t) => ({ type: 'succeeded', id: t.id, owner: OWNER, attempt: t.attempts, at: Date.now(), result: null }));
          const applied = await store.settle(ops);
          if (applied.some((a) => !a)) throw new Error('a settle op was not applied');
        }
      }),
    );
    console.log(`round ${r}  ${cols.join('  |  ')}`);
  } finally {
    await store.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

const admin = new pg.Client({ connectionString: URL_ });
await admin.connect();
try {
  console.log(`${TASKS} tasks, claim ${CLAIM}, settle ${SETTLE}`);
  for (let r = 1; r <= ROUNDS; r++) await round(r, admin);
} finally {
  await admin.end();
}
