/**
 * Several troupe nodes on one PostgreSQL schema, as real processes (issue 6): every task completes exactly once
 * across three nodes, a SIGKILLed node's claimed tasks finish on the others once its leases run out, a periodic
 * schedule run by every node fires each slot once, a cancel made on one node ends the run on another, and a node
 * whose connections are cut keeps its running tasks, reports itself unhealthy, reconnects and loses nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import type { NewTask } from '../../src/task.ts';
import { liveNodes, NodeProcess } from '../fixtures/multi-node/node-process.ts';
import { storeFor } from '../fixtures/multi-node/store-for.ts';
import { asyncCommitUrl, PG_SKIP, PG_URL, trackSchemas } from '../helpers/pg.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { isRunning, waitUntil } from '../process/pid-probe.ts';

const COUNT = Number(process.env.TROUPE_MULTI_NODE_COUNT ?? 20_000);
const LEASE_MS = 2000;
const HEARTBEAT_MS = 500;
/** How often every node sweeps for expired leases (the tracker: lease / 2, at least 250 ms). */
const SWEEP_MS = Math.max(250, LEASE_MS / 2);
const SCHEDULE_ID = 'mn-tick';
const SLOT_MS = 1000;
const MIN_SLOTS = 6;

const schemas = trackSchemas('mn');
const tempDirs: string[] = [];
after(async () => {
  for (const node of liveNodes) await node.kill();
  await schemas.dropAll();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** The store URL of one schema (commits without waiting for the WAL flush: the server itself is not crashed here). */
function schemaUrl(schema: string, extra: Record<string, string> = {}, base = asyncCommitUrl(PG_URL)): string {
  const u = new URL(base);
  u.searchParams.set('schema', schema);
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  return u.toString();
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-mn-'));
  tempDirs.push(dir);
  return dir;
}

/** A safety net on a wait that an event ends. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting until ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `<id> <attempt> <label>` lines of one node's execution log. */
function readLog(file: string): Array<{ id: string; attempt: number; label: string }> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, attempt, label] = line.split(' ');
      return { id: id!, attempt: Number(attempt), label: label! };
    });
}

describe('several nodes on one PostgreSQL database', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  let admin: pg.Client;
  before(async () => {
    admin = new pg.Client({ connectionString: PG_URL, application_name: 'troupe-test-admin' });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
  });
  const count = async (sql: string, values: unknown[] = []): Promise<number> => Number((await admin.query<{ n: string }>(sql, values)).rows[0]!.n);

  it('three nodes run every task once, recover a SIGKILLed node\'s leases and fire each schedule slot once', async () => {
    const schema = schemas.next();
    const url = schemaUrl(schema);
    const dir = tempDir();
    const logs = [0, 1, 2].map((i) => path.join(dir, `node-${i}.log`));
    const T = `"${schema}".tasks`;
    const TR = `"${schema}".transitions`;

    // The victim is killed from its own stdout handler, the moment it has completed enough work: mid-run.
    let killAt = 0;
    const killAfter = Math.floor(COUNT / 6);
    const nodes: NodeProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const config = { url, log: logs[i]!, lease: `${LEASE_MS}ms`, heartbeat: `${HEARTBEAT_MS}ms`, schedule: { id: SCHEDULE_ID, every: `${SLOT_MS}ms` } };
      nodes.push(
        new NodeProcess(
          config,
          i === 2
            ? (line) => {
                if (killAt === 0 && line.startsWith('succeeded ') && Number(line.split(' ')[1]) >= killAfter) {
                  killAt = Date.now();
                  nodes[2]!.child.kill('SIGKILL');
                }
              }
            : undefined,
        ),
      );
    }
    const ids = await Promise.all(nodes.map((n) => n.ready()));
    // Node identity: host:pid:start…, one per process.
    for (const [i, id] of ids.entries()) assert.ok(id.startsWith(`${os.hostname()}:${nodes[i]!.pid}:`), id);
    assert.equal(new Set(ids).size, 3);
    const [, , victimId] = ids as [string, string, string];

    // Enqueue from outside the nodes, in batches; each batch wakes the nodes through NOTIFY.
    const producer = storeFor(url, { listen: false, poolSize: 1 });
    await producer.open();
    const now = Date.now();
    try {
      for (let start = 0; start < COUNT; start += 1000) {
        const batch: NewTask[] = [];
        for (let i = start; i < Math.min(COUNT, start + 1000); i++) {
          batch.push({ id: createTaskId(now), name: 'work', input: { i }, priority: 0, weight: 1, maxAttempts: 10, createdAt: now, runAt: now, key: `w-${i}` });
        }
        await producer.enqueue(batch);
      }
    } finally {
      await producer.close();
    }

    // The victim dies mid-run; what it held is still marked with its id until the leases run out.
    const killed = await within(nodes[2]!.exited, 60_000, 'the victim was killed mid-run');
    assert.equal(killed.signal, 'SIGKILL', `victim ended by ${killed.code ?? killed.signal}: ${nodes[2]!.stderr}`);

    await waitFor(async () => (await count(`SELECT count(*) AS n FROM ${T} WHERE name = 'work' AND state = 'succeeded'`)) === COUNT, {
      timeout: 90_000,
      interval: 50,
      label: `all ${COUNT} work tasks succeeded`,
    });
    // Enough slots, some of them after the kill (fired by the two survivors).
    await waitFor(
      async () => (await count(`SELECT count(*) AS n FROM ${T} WHERE schedule_id = $1 AND state = 'succeeded' AND created_at > $2`, [SCHEDULE_ID, killAt])) >= 2 &&
        (await count(`SELECT count(*) AS n FROM ${T} WHERE schedule_id = $1 AND state = 'succeeded'`, [SCHEDULE_ID])) >= MIN_SLOTS,
      { timeout: 30_000, interval: 50, label: `${MIN_SLOTS} schedule slots ran` },
    );
    await Promise.all([nodes[0]!.close(), nodes[1]!.close()]);

    // Every task: succeeded once, with one `succeeded` transition, run by one of the three nodes.
    const tasks = (
      await admin.query<{ id: string; name: string; state: string; attempts: number; owner: string | null; key: string | null; result: unknown; input: { i?: number } | null; finished_at: string }>(
        `SELECT id, name, state, attempts, owner, key, result, input, finished_at FROM ${T}`,
      )
    ).rows;
    const work = tasks.filter((t) => t.name === 'work');
    const ticks = tasks.filter((t) => t.name === 'tick');
    assert.equal(work.length, COUNT);
    for (const t of work) {
      assert.equal(t.state, 'succeeded', t.id);
      assert.equal(t.result, t.input!.i, t.id);
      assert.ok(t.owner !== null && ids.includes(t.owner), `${t.id} owned by ${t.owner}`);
    }
    const twice = await count(`SELECT count(*) AS n FROM (SELECT task_id FROM ${TR} WHERE to_state = 'succeeded' GROUP BY task_id HAVING count(*) > 1) AS d`);
    assert.equal(twice, 0, 'no task has two succeeded transitions');
    const succeededTasks = tasks.filter((t) => t.state === 'succeeded').length;
    assert.equal(await count(`SELECT count(*) AS n FROM ${TR} WHERE to_state = 'succeeded'`), succeededTasks);
    for (const owner of ids.slice(0, 2)) assert.ok(work.some((t) => t.owner === owner), `node ${owner} completed work`);

    // Execution logs: their union is every succeeded task; a task ran twice only if the victim ran it and died
    // before committing, and the second run was a later attempt on a survivor.
    const runs = new Map<string, Array<{ node: number; attempt: number }>>();
    logs.forEach((file, node) => {
      for (const e of readLog(file)) {
        const list = runs.get(e.id) ?? [];
        list.push({ node, attempt: e.attempt });
        runs.set(e.id, list);
      }
    });
    // What the victim held when it died: the victim is the only node that died, so every lease that expired was one
    // of its leases (read from the history once all is done, so a busy machine cannot race the read with recovery).
    const held = (
      await admin.query<{ id: string; attempts: number }>(
        `SELECT DISTINCT ON (task_id) task_id AS id, attempt AS attempts FROM ${TR} WHERE reason LIKE 'lease expired%' ORDER BY task_id, at`,
      )
    ).rows;
    assert.ok(held.length > 0, 'the victim held running tasks when it was killed');
    const heldIds = new Set(held.map((h) => h.id));
    for (const t of tasks) {
      if (t.state !== 'succeeded') continue;
      const r = runs.get(t.id) ?? [];
      assert.ok(r.length >= 1, `task ${t.id} never ran`);
      if (r.length > 1) {
        assert.ok(heldIds.has(t.id), `task ${t.id} ran ${r.length} times but the victim did not hold it`);
        assert.equal(r.filter((x) => x.node !== 2).length, 1, `task ${t.id}: one run on a survivor`);
        assert.ok(r.find((x) => x.node !== 2)!.attempt >= 2);
      }
    }
    const executions = [...runs.values()].reduce((s, r) => s + r.length, 0);

    // Lease recovery: each task the victim held was taken back and finished on a survivor, attempt ≥ 2, within
    // lease + heartbeat (+ one sweep of the recovering node and some slack for this busy machine).
    const byId = new Map(tasks.map((t) => [t.id, t]));
    let latest = 0;
    for (const h of held) {
      const t = byId.get(h.id)!;
      assert.equal(t.state, 'succeeded', h.id);
      assert.ok(t.owner !== victimId && ids.includes(t.owner!), `${h.id} finished by ${t.owner}`);
      assert.ok(t.attempts >= 2 && t.attempts > h.attempts, `${h.id}: attempts ${h.attempts} → ${t.attempts}`);
      latest = Math.max(latest, Number(t.finished_at) - killAt);
    }
    const expired = await count(`SELECT count(*) AS n FROM ${TR} WHERE reason LIKE 'lease expired%' AND task_id = ANY($1::text[])`, [[...heldIds]]);
    assert.equal(expired, heldIds.size, 'each held task went back through lease expiry once');
    const bound = LEASE_MS + HEARTBEAT_MS + SWEEP_MS + 1500;
    assert.ok(latest <= bound, `recovered tasks finished ${latest} ms after the kill (bound ${bound} ms)`);

    // The schedule: one row; one task per slot (unique keys), consecutive slots with no gap and no duplicate.
    assert.equal(await count(`SELECT count(*) AS n FROM "${schema}".schedules WHERE id = $1`, [SCHEDULE_ID]), 1);
    const slots = ticks.map((t) => {
      const m = /^schedule:mn-tick:(\d+)$/.exec(t.key ?? '');
      assert.ok(m, `slot key ${t.key}`);
      return Number(m[1]);
    });
    slots.sort((a, b) => a - b);
    assert.equal(new Set(slots).size, slots.length, 'one task per slot');
    assert.ok(slots.length >= MIN_SLOTS, `${slots.length} slots`);
    for (let i = 1; i < slots.length; i++) assert.equal(slots[i]! - slots[i - 1]!, SLOT_MS, `slot after ${slots[i - 1]} is the next one`);
    assert.ok(slots.some((s) => s > killAt), 'slots kept firing after the victim died');

    const summary = { tasks: COUNT, held: held.length, executions, recoveredWithinMs: latest, slots: slots.length };
    console.log(`# multi-node: ${JSON.stringify(summary)}`);
  });

  it('a cancel made on one node ends the run on the node that holds it', async () => {
    const schema = schemas.next();
    const url = schemaUrl(schema);
    const dir = tempDir();
    const nodeA = new NodeProcess({ url, log: path.join(dir, 'a.log'), lease: '5s' });
    await nodeA.ready();
    // Node B runs in this process and registers nothing: it cannot claim the task, only cancel it.
    const rtB: Runtime = await createRuntime({ store: storeFor(url), maintenance: false });
    try {
      const id = await nodeA.enqueue('sleeper');
      const line = await nodeA.next((l) => l.startsWith(`output ${id} pid `), 'the command printed its pid');
      const pid = Number(line.split(' ')[3]);
      assert.ok(isRunning(pid), 'the command runs on node A');
      const seen = await rtB.get(id as never);
      assert.equal(seen?.state, 'running');
      assert.equal(seen?.owner, nodeA.nodeId, 'node B sees node A as the owner');

      assert.equal(await rtB.cancel(id as never), true);
      await waitUntil(() => !isRunning(pid), `pid ${pid} ended`, 10_000);
      assert.equal((await rtB.get(id as never))?.state, 'cancelled');
      // Node A is still fine: it runs the next task.
      const next = await nodeA.enqueue('work', { i: 7 });
      await waitFor(async () => (await rtB.get(next as never))?.state === 'succeeded', { timeout: 10_000, interval: 20, label: 'node A ran another task' });
    } finally {
      await rtB.close();
      await nodeA.close();
    }
  });

  it('a node whose connections are cut keeps its running tasks, reports unhealthy, reconnects and loses nothing', async () => {
    const schema = schemas.next();
    // A role of its own, so the outage can refuse this node's reconnections (CONNECTION LIMIT 0) while
    // pg_terminate_backend ends the ones it has; the superuser connections of other tests are untouched.
    const role = schema;
    await admin.query(`CREATE ROLE "${role}" LOGIN`);
    try {
      const db = (await admin.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
      await admin.query(`GRANT CREATE ON DATABASE "${db}" TO "${role}"`);
      const base = new URL(asyncCommitUrl(PG_URL));
      base.username = role;
      base.password = '';
      const url = schemaUrl(schema, { application_name: role }, base.toString());
      await outageRun(url, role, schema);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      const db = (await admin.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
      await admin.query(`REVOKE CREATE ON DATABASE "${db}" FROM "${role}"`);
      await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    }
  });

  async function outageRun(url: string, role: string, schema: string): Promise<void> {
    const GATED = 8;
    const FAST = 3000;
    const runs = new Map<string, number>();
    let gateOpen!: () => void;
    const gate = new Promise<void>((resolve) => (gateOpen = resolve));
    let gatedStarted = 0;
    const rt = await createRuntime({
      store: storeFor(url),
      maintenance: false,
      concurrency: 16,
      lease: '10s',
      heartbeat: '300ms',
      tasks: {
        gated: {
          run: async (_input: unknown, ctx) => {
            runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
            gatedStarted++;
            await gate;
            return 'held';
          },
        },
        fast: {
          run: (input: { i: number }, ctx) => {
            runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
            return input.i;
          },
        },
      },
    });
    try {
      const gatedIds = await rt.enqueueMany(Array.from({ length: GATED }, (_, i) => ({ name: 'gated', input: { i } })));
      await waitFor(() => gatedStarted === GATED, { timeout: 10_000, label: 'gated tasks running' });
      const fastIds = await rt.enqueueMany(Array.from({ length: FAST }, (_, i) => ({ name: 'fast', input: { i } })));
      let succeeded = 0;
      const off = rt.on('task.succeeded', () => void succeeded++);
      await waitFor(() => succeeded >= 200, { timeout: 10_000, label: 'fast tasks flowing' });

      // The outage: refuse new connections of this role, end the ones it has, while tasks are running.
      await admin.query(`ALTER ROLE "${role}" CONNECTION LIMIT 0`);
      const terminated = await count(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE usename = $1`, [role]);
      assert.ok(terminated > 0, 'the node had connections to end');
      await waitFor(() => !rt.liveness().storeHealthy, { timeout: 10_000, interval: 5, label: 'the node reports the store unhealthy' });
      const during = rt.liveness();
      // The gated tasks finish while the database is away: their outcomes wait in the tracker.
      gateOpen();
      assert.equal(rt.liveness().storeHealthy, false, 'still unhealthy while connections are refused');

      await admin.query(`ALTER ROLE "${role}" CONNECTION LIMIT -1`);
      await waitFor(() => rt.liveness().storeHealthy, { timeout: 20_000, interval: 10, label: 'the node reports the store healthy again' });
      await waitFor(async () => (await rt.counts()).byState.succeeded === GATED + FAST, { timeout: 30_000, interval: 20, label: 'every task succeeded' });
      off();

      for (const id of [...gatedIds, ...fastIds]) assert.equal(runs.get(id), 1, `task ${id} ran once`);
      for (const id of gatedIds) {
        const t = await rt.get(id);
        assert.equal(t?.state, 'succeeded');
        assert.equal(t?.result, 'held');
        assert.equal(t?.attempts, 1, 'a task running through the outage was neither taken back nor re-run');
        assert.equal(t?.history?.filter((h) => h.to === 'succeeded').length, 1);
      }
      const twice = await count(`SELECT count(*) AS n FROM (SELECT task_id FROM "${schema}".transitions WHERE to_state = 'succeeded' GROUP BY task_id HAVING count(*) > 1) AS d`);
      assert.equal(twice, 0, 'no task has two succeeded transitions');
      const counts = await rt.counts();
      assert.equal(counts.byState.succeeded, GATED + FAST);
      assert.equal(counts.byState.running + counts.byState.queued + counts.byState.failed, 0);
      console.log(`# outage: ${JSON.stringify({ terminated, storeError: during.storeError?.slice(0, 80) })}`);
    } finally {
      await rt.close();
    }
  }
});
