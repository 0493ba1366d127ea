/**
 * Plain terminal formatting shared by the CLI and the REPL: colours only where a person reads them (a TTY, no
 * NO_COLOR), aligned tables measured without escape codes, and short human durations.
 */
import pc from 'picocolors';

export type Style = ReturnType<typeof pc.createColors>;

/** Why: colour is for people; pipes, files, CI logs and NO_COLOR users get plain text. */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** Why: one switch for every colour call, so plain output never carries an escape code. */
export function createStyle(enabled: boolean): Style {
  return pc.createColors(enabled);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Why: column widths must ignore colour codes. */
export function visibleLength(text: string): number {
  return text.replace(ANSI, '').length;
}

/** Why: aligned columns, two spaces apart, headers dimmed; no borders to copy around. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, style: Style): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, widths[i]! - visibleLength(c)))))
      .join('  ')
      .trimEnd();
  return [style.dim(line(headers)), ...rows.map(line)].join('\n');
}

/** Why: `key  value` blocks (status, inspect, health) line up like a table without headers. */
export function keyValues(pairs: ReadonlyArray<readonly [string, string | undefined]>, style: Style): string {
  const shown = pairs.filter((p): p is readonly [string, string] => p[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${style.dim(k.padEnd(width))}  ${v}`).join('\n');
}

/** Why: `850 ms`, `1.2 s`, `3m 05s`, `2h 03m` read faster than raw milliseconds. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Why: list rows say how long ago a task was created. */
export function formatAge(at: number | undefined, now: number): string {
  if (at === undefined) return '-';
  const d = now - at;
  if (d < 0) return `in ${formatDuration(-d)}`;
  return `${formatDuration(d)} ago`;
}

/** Why: absolute times in one unambiguous form (UTC, ISO 8601). */
export function formatTime(at: number | undefined): string {
  return at === undefined ? '-' : new Date(at).toISOString();
}

/** Why: inputs and results are JSON; long ones are cut in tables, never in `--json`. */
export function formatJson(value: unknown, max = Number.POSITIVE_INFINITY): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? 'undefined';
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;
}

/** Why: progress reads as a whole percentage. */
export function percent(fraction: number): string {
  return `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
}
