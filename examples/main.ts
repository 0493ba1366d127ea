// `npm start`: the example runtime showing each pattern at work, then serving it over the HTTP API and the
// dashboard on 127.0.0.1:7420 until Ctrl-C (SIGINT) or SIGTERM, which shut it down gracefully.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createResourcePool, isTroupeError } from '../src/index.ts';
import { createStyle, wantsColor } from '../src/cli/format.ts';
import { createRuntimeFromConfig, loadConfig } from '../src/config.ts';
import { startServer, type StartedServer } from '../src/http/listen.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Bold labels on a terminal only, never with NO_COLOR: the command line's rule (src/cli/format.ts).
const style = createStyle(wantsColor(process.stdout));
const say = (label: string, text: string) => console.log(`${style.bold(label.padEnd(4))} ${text}`);

const loaded = await loadConfig(path.join(here, 'troupe.config.ts'));
const rt = await createRuntimeFromConfig(loaded);
say('', `troupe runtime ${rt.nodeId} on ${rt.store.kind}`);

// P1: run and await a result.
const digest = await rt.run<{ digest: string }>('hash', { text: 'abc', rounds: 20_000 });
say('P1', `run('hash') → ${digest.digest.slice(0, 16)}…`);

// P2: start a long-running command and stream its output and progress.
const handle = rt.start('report', { steps: 5, delayMs: 80 });
handle.on('progress', (p) => say('P2', `progress ${Math.round(p.fraction * 100)} %`));
for await (const line of handle.output) say('P2', `[${line.stream}] ${line.text}`);
say('P2', `result ${JSON.stringify(await handle.result)}`);

// P3: many at once under a limit, settled in input order.
const settled = await rt.runAll(
  ['a', 'b', 'c', 'd'].map((text) => ({ name: 'hash', input: { text, rounds: 5000 } })),
  { concurrency: 2 },
);
say('P3', `runAll → ${settled.map((s) => s.status).join(', ')}`);

// P4: fire and forget, then look it up.
const id = await rt.enqueue('flaky', {});
const done = new Promise<void>((resolve) => {
  const off = rt.on('task.succeeded', (e) => e.id === id && (off(), resolve()));
});
rt.on('task.retrying', (e) => e.id === id && say('P4', `attempt ${e.attempt} failed (${e.error.message}); retry at +${e.runAt - e.at} ms`));
await done;
const task = await rt.get(id);
say('P4', `enqueue('flaky') → ${task?.state} after ${task?.attempts} attempts; history: ${task?.history?.map((h) => h.to).join(' → ')}`);

// P5: periodic work is opt-in: create a schedule, watch two slots, remove it.
let fired = 0;
const twice = new Promise<void>((resolve) => {
  const off = rt.on('task.succeeded', (e) => e.name === 'hash' && ++fired === 2 && (off(), resolve()));
});
await rt.schedule('hash', { every: '1s', id: 'demo-every-second' }, { text: 'tick', rounds: 1000 });
await twice;
await rt.unschedule('demo-every-second');
say('P5', 'schedule every 1s fired twice, then removed');

// P6: a pool of user resources with min/max and validation.
let opened = 0;
const pool = createResourcePool({ create: () => ({ n: ++opened }), min: 1, max: 2 });
const borrowed = await Promise.all([1, 2, 3, 4].map(() => pool.use(async (conn) => conn.n)));
say('P6', `4 borrows, at most 2 at once → resources ${borrowed.join(', ')} (${opened} opened, ${pool.size} kept)`);
await pool.close();

// P7: which pattern fits.
const advice = rt.advise({ expectedDurationMs: 120_000, streaming: true });
say('P7', `advise(long, streaming) → ${advice.pattern}: ${advice.reason}`);

try {
  await rt.run('nope', {});
} catch (error) {
  if (isTroupeError(error)) say('', `unknown task → ${error.code}`);
}

// Serve: the HTTP API and the dashboard. Any other address than loopback needs TROUPE_TOKEN.
let server: StartedServer;
try {
  server = await startServer(rt, loaded.config.http ?? {});
} catch (error) {
  console.error(isTroupeError(error) ? `${error.code}: ${error.message}` : error);
  await rt.close();
  process.exit(1);
}
say('', `HTTP API and dashboard on ${server.url}${server.authenticated ? ' (bearer token required)' : ''}`);
say('', `try: curl -s ${server.url}/api/task-types · curl -s -X POST ${server.url}/api/tasks -H 'content-type: application/json' -d '{"name":"report","input":{"steps":20}}'`);
say('', 'Ctrl-C stops (running tasks get 10 s to finish, then go back to the queue)');

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  say('', `${signal}: stopping…`);
  try {
    await server.close();
    await rt.close({ timeout: '10s' });
    process.exit(0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
};
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
