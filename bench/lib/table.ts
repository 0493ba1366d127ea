/**
 * Plain-text and Markdown tables of rows and verdicts: the terminal output of `npm run bench` and the tables of
 * bench/RESULTS.md come from the same functions, so the file shows exactly what the command printed.
 */
import type { Row } from './results.ts';
import type { Verdict } from './targets.ts';

const ROW_COLUMNS = ['workload', 'system', 'conc.', 'ops/s', 'mean ms', 'p50 ms', 'p99 ms', 'peak RSS MB', 'n', 'note'] as const;

/** Why: one number format for every figure (thousands separated, latencies to the µs under 10 ms). */
export function formatNumber(value: number | undefined, kind: 'rate' | 'ms' | 'mb' | 'int' = 'int'): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  if (kind === 'ms') return value < 10 ? value.toFixed(3) : value < 1000 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
  if (kind === 'mb') return value.toFixed(0);
  return Math.round(value).toLocaleString('en-US');
}

function rowCells(r: Row): string[] {
  return [
    r.workload,
    r.system,
    r.concurrency === undefined ? '' : String(r.concurrency),
    formatNumber(r.opsPerSec, 'rate'),
    formatNumber(r.meanMs, 'ms'),
    formatNumber(r.p50Ms, 'ms'),
    formatNumber(r.p99Ms, 'ms'),
    formatNumber(r.peakRssMb, 'mb'),
    r.samples === undefined ? '' : String(r.samples),
    r.note ?? '',
  ];
}

function verdictCells(v: Verdict): string[] {
  return [v.label, v.target, v.figure, v.verdict];
}

/** Left-aligned text columns, right-aligned numbers, columns that are empty in every row left out. */
function textTable(header: readonly string[], body: string[][], numeric: ReadonlySet<number>): string {
  const keep = header.map((_, i) => body.some((cells) => cells[i] !== ''));
  const cols = header.map((h, i) => i).filter((i) => keep[i]);
  const width = cols.map((i) => Math.max(header[i]!.length, ...body.map((c) => c[i]!.length)));
  const line = (cells: readonly string[]) =>
    cols.map((i, j) => (numeric.has(i) ? cells[i]!.padStart(width[j]!) : cells[i]!.padEnd(width[j]!))).join('  ').trimEnd();
  return [line(header), cols.map((_, j) => '─'.repeat(width[j]!)).join('  '), ...body.map(line)].join('\n');
}

function markdownTable(header: readonly string[], body: string[][], numeric: ReadonlySet<number>): string {
  const keep = header.map((_, i) => body.some((cells) => cells[i] !== ''));
  const cols = header.map((h, i) => i).filter((i) => keep[i]);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${cols.map((i) => header[i]).join(' | ')} |`,
    `|${cols.map((i) => (numeric.has(i) ? '---:' : '---')).join('|')}|`,
    ...body.map((cells) => `| ${cols.map((i) => esc(cells[i]!)).join(' | ')} |`),
  ].join('\n');
}

const ROW_NUMERIC = new Set([2, 3, 4, 5, 6, 7, 8]);

/** Why: the terminal table of a scope's rows. */
export function formatRows(rows: readonly Row[]): string {
  return textTable(ROW_COLUMNS, rows.map(rowCells), ROW_NUMERIC);
}

/** Why: the same rows as a Markdown table for RESULTS.md. */
export function markdownRows(rows: readonly Row[]): string {
  return markdownTable(ROW_COLUMNS, rows.map(rowCells), ROW_NUMERIC);
}

const VERDICT_COLUMNS = ['target', 'wanted', 'measured', 'verdict'] as const;

/** Why: the targets next to the figures, in the terminal. */
export function formatVerdicts(verdicts: readonly Verdict[]): string {
  return textTable(VERDICT_COLUMNS, verdicts.map(verdictCells), new Set());
}

/** Why: the same verdicts as a Markdown table for RESULTS.md. */
export function markdownVerdicts(verdicts: readonly Verdict[]): string {
  return markdownTable(VERDICT_COLUMNS, verdicts.map(verdictCells), new Set());
}
