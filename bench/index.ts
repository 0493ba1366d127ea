/**
 * `npm run bench`: troupe against the systems users would pick instead, on this machine, in one run.
 *
 *   npm run bench [-- --scope mem|cpu|process|durable|latency|periodic|scale|streaming|all] [--filter regex] [--json]
 *
 * `--scope` takes one scope, several separated by commas, or `all` (the default: every scope but `scale`, which
 * takes minutes and must be asked for by name). `--filter` keeps the systems (and workloads) whose name matches
 * the regular expression, case-insensitive. Each scope prints its table (ops/s, mean / p50 / p99 latency, peak
 * RSS where a system ran in its own process) and its targets with a verdict, and writes
 * bench/results/<date>-<scope>.json with the machine, load average, Node version and the versions of every
 * package and server measured. `--json` prints those results as JSON instead of tables. `--report` (alone or
 * after a run) rewrites bench/RESULTS.md from the newest result of each scope.
 *
 * Tuning: `--passes N` (interleaved passes of the in-memory and durable scopes), `--tasks N` and
 * `--concurrency 1,8,32` (durable), `--samples N` (latency), `--slots N` (periodic), `--scale-tasks N` (scale).
 * Peers: PostgreSQL at TROUPE_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test), Redis at
 * TROUPE_BENCH_REDIS_URL (default redis://127.0.0.1:6379); an unreachable one is skipped with a printed reason.
 * `TROUPE_BENCH_CPU_PROF=<dir>` writes a V8 CPU profile of every child process there. Several scopes run one
 * after the other, each in its own process.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { finishMachineInfo, loadavg, packageVersions, readMachineInfo, waitForQuiet } from './lib/machine.ts';
import { checkPeers, serverVersions, type Peers } from './lib/peers.ts';
import { latestResults, writeResultsMarkdown } from './lib/report.ts';
import { DEFAULT_SCOPES, SCOPES, writeScopeResult, type Row, type Scope, type ScopeResult } from './lib/results.ts';
import { formatRows, formatVerdicts } from './lib/table.ts';
import { evaluateTargets } from './lib/targets.ts';

const { values } = parseArgs({
  options: {
    scope: { type: 'string', default: 'all' },
    filter: { type: 'string' },
    json: { type: 'boolean', default: false },
    report: { type: 'boolean', default: false },
    passes: { type: 'string' },
    tasks: { type: 'string' },
    concurrency: { type: 'string' },
    samples: { type: 'string' },
    slots: { type: 'string' },
    'scale-tasks': { type: 'string' },
  },
  strict: true,
});

function positive(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} expects a positive integer, got \`${raw}\``);
  return n;
}

function parseScopes(raw: string): Scope[] {
  const out = new Set<Scope>();
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (part === 'all') DEFAULT_SCOPES.forEach((s) => out.add(s));
    else if ((SCOPES as readonly string[]).includes(part)) out.add(part as Scope);
    else throw new Error(`--scope expects ${[...SCOPES, 'all'].join('|')} (or several, comma-separated), got \`${part}\``);
  }
  return SCOPES.filter((s) => out.has(s));
}

type SuiteResult = { rows: Row[]; skipped: string[]; info: Record<string, unknown> };

async function runScope(scope: Scope, peers: Peers, match: (text: string) => boolean): Promise<SuiteResult> {
  const passes = positive('passes', values.passes);
  switch (scope) {
    case 'mem':
    case 'cpu':
    case 'process':
    case 'streaming': {
      const compare = await import('./suites/compare.bench.ts');
      const run = { mem: compare.runMem, cpu: compare.runCpu, process: compare.runProcess, streaming: compare.runStreaming }[scope];
      return run({ match, ...(passes ? { passes } : {}) });
    }
    case 'durable': {
      const { runDurable } = await import('./suites/durable.bench.ts');
      const tasks = positive('tasks', values.tasks);
      const concurrency = values.concurrency?.split(',').map((c) => positive('concurrency', c)!);
      return runDurable({ peers, match, ...(passes ? { passes } : {}), ...(tasks ? { tasks } : {}), ...(concurrency ? { concurrency } : {}) });
    }
    case 'latency': {
      const { runLatency } = await import('./suites/latency.bench.ts');
      const samples = positive('samples', values.samples);
      return runLatency({ peers, match, ...(samples ? { samples } : {}) });
    }
    case 'periodic': {
      const { runPeriodic } = await import('./suites/periodic.bench.ts');
      const slots = positive('slots', values.slots);
      return runPeriodic({ peers, match, ...(slots ? { slots } : {}) });
    }
    case 'scale': {
      const { runScale } = await import('./suites/scale.bench.ts');
      const tasks = positive('scale-tasks', values['scale-tasks']);
      return runScale(tasks ? { tasks } : {});
    }
  }
}

/** Runs one scope in this process: measure, evaluate, print, write its result file. */
async function measureScope(scope: Scope, peers: Peers, versions: Record<string, string>, command: string, match: (text: string) => boolean, log: (...args: unknown[]) => void): Promise<ScopeResult | undefined> {
  const quiet = await waitForQuiet();
  const machine = { ...readMachineInfo(), quiet };
  const startedAt = new Date().toISOString();
  const busy = quiet.busy === undefined ? 'CPU use unknown' : `${Math.round(quiet.busy * 100)} % of the CPUs busy${quiet.quiet ? '' : ' (did not quiet down)'} after waiting ${(quiet.waitedMs / 1000).toFixed(1)} s`;
  log(`\n── ${scope} ── (load average ${machine.loadavgStart.join(' / ')}; ${busy})`);
  let suite: SuiteResult;
  try {
    suite = await runScope(scope, peers, match);
  } catch (error) {
    console.error(`${scope}: ${(error as Error).stack ?? String(error)}`);
    return undefined;
  }
  const verdicts = evaluateTargets(scope, suite.rows, suite.skipped);
  const result: ScopeResult = {
    scope,
    command,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: finishMachineInfo(machine),
    versions,
    rows: suite.rows,
    verdicts,
    skipped: suite.skipped,
    info: suite.info,
  };
  const file = writeScopeResult(result);
  log(`\n${formatRows(suite.rows)}`);
  if (verdicts.length) log(`\n${formatVerdicts(verdicts)}`);
  for (const s of suite.skipped) log(`skipped: ${s}`);
  log(`load average at the end ${result.machine.loadavgEnd.join(' / ')}; wrote ${file}`);
  return result;
}

/**
 * Several scopes: each in its own process, so one scope's threads, heap and RSS never weigh on the next (forking a
 * subprocess from a process that just ran the thread-pool scopes measured 4× slower here). The child prints its
 * tables and writes its file; the parent reads the file back.
 */
function runScopeInChild(scope: Scope): Promise<ScopeResult | undefined> {
  const args: string[] = [];
  const pass = ['filter', 'passes', 'tasks', 'concurrency', 'samples', 'slots', 'scale-tasks'] as const;
  for (const k of pass) if (values[k] !== undefined) args.push(`--${k}`, String(values[k]));
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--scope', scope, ...args], {
    stdio: ['ignore', values.json ? 2 : 'inherit', 'inherit'],
    env: { ...process.env, TROUPE_BENCH_COMMAND: COMMAND },
  });
  const started = new Date().toISOString();
  return new Promise((resolve) => {
    child.once('close', () => {
      const r = latestResults().get(scope);
      resolve(r && r.finishedAt >= started ? r : undefined);
    });
  });
}

const COMMAND = process.env.TROUPE_BENCH_COMMAND ?? ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');

async function main(): Promise<number> {
  const onlyReport = values.report && !process.argv.slice(2).some((a) => a.startsWith('--scope'));
  if (onlyReport) {
    console.log(`wrote ${writeResultsMarkdown()}`);
    return 0;
  }
  const scopes = parseScopes(values.scope!);
  const filter = values.filter ? new RegExp(values.filter, 'i') : undefined;
  const match = (text: string) => !filter || filter.test(text);
  const log = values.json ? (..._: unknown[]) => {} : (...args: unknown[]) => console.log(...args);
  if (values.json) console.log = (...args: unknown[]) => console.error(...args);
  log(`troupe bench: ${scopes.join(', ')}; Node ${process.version}; load average ${loadavg().join(' / ')}${filter ? `; filter ${filter}` : ''}`);

  const results: ScopeResult[] = [];
  if (scopes.length > 1) {
    for (const scope of scopes) {
      const r = await runScopeInChild(scope);
      if (r) results.push(r);
    }
    log(`\n── all targets ──\n${formatVerdicts(results.flatMap((r) => r.verdicts))}`);
  } else {
    const scope = scopes[0]!;
    const needsServers = scope === 'durable' || scope === 'latency' || scope === 'periodic';
    const peers: Peers = needsServers ? await checkPeers() : { postgres: { ok: false, reason: 'not probed' }, redis: { ok: false, reason: 'not probed' } };
    if (needsServers) {
      for (const [name, a] of Object.entries(peers)) log(a.ok ? `${name}: ${a.version}` : `${name}: skipped, ${a.reason}`);
    }
    const versions = { ...packageVersions(), ...(await serverVersions(peers)) };
    const r = await measureScope(scope, peers, versions, COMMAND, match, log);
    if (r) results.push(r);
  }
  if (values.report) log(`\nwrote ${writeResultsMarkdown()}`);
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return results.length === scopes.length ? 0 : 1;
}

// Peers (ioredis, pg pools) may leave handles behind after their close: end the process once the results are out.
const code = await main().catch((error: unknown) => {
  console.error((error as Error).message ?? error);
  return 2;
});
process.exitCode = code;
setTimeout(() => process.exit(code), 100).unref();
