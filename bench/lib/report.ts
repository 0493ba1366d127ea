/**
 * bench/RESULTS.md from the result files: for each scope the newest bench/results/<date>-<scope>.json, shown
 * with the command that produced it, its date, the load average, the versions measured, the rows, and the
 * targets next to the figures with a verdict each. Text between `<!-- notes:start -->` and `<!-- notes:end -->`
 * in the existing file (findings, profiles) is kept as it is.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULTS_DIR, SCOPES, type Scope, type ScopeResult } from './results.ts';
import { markdownRows, markdownVerdicts } from './table.ts';

export const RESULTS_MD = fileURLToPath(new URL('../RESULTS.md', import.meta.url));

const NOTES_START = '<!-- notes:start -->';
const NOTES_END = '<!-- notes:end -->';

/** Why: the newest result of each scope, wherever several runs left files. */
export function latestResults(dir = RESULTS_DIR): Map<Scope, ScopeResult> {
  const out = new Map<Scope, ScopeResult>();
  if (!existsSync(dir)) return out;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    let r: ScopeResult;
    try {
      r = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as ScopeResult;
    } catch {
      continue;
    }
    if (!SCOPES.includes(r.scope)) continue;
    const prev = out.get(r.scope);
    if (!prev || prev.finishedAt < r.finishedAt) out.set(r.scope, r);
  }
  return out;
}

const SCOPE_TITLES: Record<Scope, string> = {
  mem: '1. No-op task round trip in memory',
  cpu: '2. CPU-bound handler',
  process: '3. Subprocess task',
  durable: '4. Durable end to end',
  latency: '5. Add → start latency',
  periodic: '6. Periodic firing accuracy',
  scale: '7. Scale: 1,000,000 queued tasks in SQLite',
  streaming: '8. Output streaming',
};

const SCOPE_VERSIONS: Record<Scope, readonly string[]> = {
  mem: ['troupe', 'piscina', 'p-queue', 'xstate', 'tinybench'],
  cpu: ['troupe', 'piscina', 'tinybench'],
  process: ['troupe', 'execa', 'tinybench'],
  durable: ['troupe', 'better-sqlite3', 'sqlite', 'pg', 'postgresql', 'bullmq', 'ioredis', 'redis', 'pg-boss', 'graphile-worker'],
  latency: ['troupe', 'better-sqlite3', 'sqlite', 'pg', 'postgresql', 'bullmq', 'ioredis', 'redis', 'pg-boss', 'graphile-worker'],
  periodic: ['troupe', 'better-sqlite3', 'sqlite', 'pg', 'postgresql', 'croner'],
  scale: ['troupe', 'better-sqlite3', 'sqlite'],
  streaming: ['troupe', 'execa', 'better-sqlite3', 'fastify'],
};

function scopeSection(r: ScopeResult): string {
  const m = r.machine;
  const versions = SCOPE_VERSIONS[r.scope].filter((k) => r.versions[k]).map((k) => `${k} ${r.versions[k]}`).join(', ');
  const lines = [
    `## ${SCOPE_TITLES[r.scope]}`,
    '',
    `\`${r.command}\` — ${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC, load average ${m.loadavgStart.join(' / ')} at start, ${m.loadavgEnd.join(' / ')} at end (1/5/15 min, ${m.cpus.count} CPUs)${m.quiet?.busy !== undefined ? `; ${Math.round(m.quiet.busy * 100)} % of the CPUs busy when it started${m.quiet.quiet ? '' : ' (did not quiet down within a minute)'}` : ''}.`,
    `Versions: ${versions}; Node ${m.node}.`,
    '',
    markdownVerdicts(r.verdicts),
    '',
    markdownRows(r.rows),
  ];
  if (r.skipped.length) lines.push('', ...r.skipped.map((s) => `- skipped: ${s}`));
  return lines.join('\n');
}

/** Why: RESULTS.md is always what the committed command printed, never figures copied by hand. */
export function renderResultsMarkdown(results: ReadonlyMap<Scope, ScopeResult>, notes: string): string {
  const all = SCOPES.map((s) => results.get(s)).filter((r): r is ScopeResult => r !== undefined);
  const machine = all[0]?.machine;
  const summary = all.flatMap((r) => r.verdicts);
  const parts = [
    '# troupe benchmark results',
    '',
    'Produced by `npm run bench` (bench/index.ts) on this machine; regenerate this file with `npm run bench -- --report`',
    'after a run. Each scope below names the exact command, its date and the load average while it ran. The machine is',
    'shared and noisy: ratios measured in one run (the same Bench, or interleaved passes) are the figures to trust;',
    'absolute rates move with the load. Raw figures: bench/results/<date>-<scope>.json.',
    '',
    machine ? `Machine: ${machine.cpus.count} × ${machine.cpus.model}, ${Math.round(machine.memoryMb.total / 1024)} GB, ${machine.platform} ${machine.kernel}, Node ${machine.node}.` : 'No results yet.',
    '',
    '## Targets (issue 7)',
    '',
    markdownVerdicts(summary),
    '',
    NOTES_START,
    notes.trim(),
    NOTES_END,
    '',
    ...all.map((r) => `${scopeSection(r)}\n`),
  ];
  return `${parts.join('\n').trimEnd()}\n`;
}

/** Why: `npm run bench -- --report` rewrites RESULTS.md from the newest result files, keeping the notes. */
export function writeResultsMarkdown(file = RESULTS_MD, dir = RESULTS_DIR): string {
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const a = existing.indexOf(NOTES_START);
  const b = existing.indexOf(NOTES_END);
  const notes = a >= 0 && b > a ? existing.slice(a + NOTES_START.length, b) : '';
  writeFileSync(file, renderResultsMarkdown(latestResults(dir), notes));
  return file;
}
