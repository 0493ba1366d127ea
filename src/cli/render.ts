/**
 * How troupe's things look in a terminal: a task (status / inspect), a task list, the supervision tree, health,
 * schedules, task types, output lines and a task's end. Pure functions from data to text, shared by the CLI and
 * the REPL so both print the same thing.
 */
import type { TaskAdvice } from '../advice/recommend.ts';
import type { TreeNode } from '../actor/actor.ts';
import type { Advice } from '../advisor.ts';
import type { SerializedError } from '../errors.ts';
import type { FollowEnd, FollowState, HealthInfo, TaskTypeInfo } from '../repl/backend.ts';
import type { TaskView } from '../runtime.ts';
import type { ScheduleRecord } from '../store/store.ts';
import type { OutputLine, Progress, TaskState } from '../task.ts';
import { formatAge, formatDuration, formatJson, formatTime, keyValues, percent, table, type Style } from './format.ts';

/** Why: a state reads at a glance by its colour. */
export function paintState(state: TaskState | string, style: Style): string {
  switch (state) {
    case 'succeeded':
      return style.green(state);
    case 'failed':
    case 'timed_out':
      return style.red(state);
    case 'cancelled':
      return style.yellow(state);
    case 'running':
      return style.cyan(state);
    case 'retrying':
      return style.magenta(state);
    default:
      return style.dim(state);
  }
}

/** Why: `CODE: message`, the one way an error is shown. */
export function describeError(error: SerializedError | undefined): string | undefined {
  if (!error) return undefined;
  return error.code ? `${error.code}: ${error.message}` : error.message;
}

function describeProgress(p: Progress | undefined): string | undefined {
  if (!p) return undefined;
  return p.total !== undefined && p.done !== undefined ? `${percent(p.fraction)} (${p.done}/${p.total})` : percent(p.fraction);
}

/** Why: `status` and `inspect` show one task: state, attempts, timings, input, result or error, history. */
export function renderTask(view: TaskView, style: Style): string {
  const t = view.timings;
  const head = keyValues(
    [
      ['id', view.id],
      ['name', view.name],
      ['state', paintState(view.state, style)],
      ['attempts', `${view.attempts}/${view.maxAttempts}`],
      ['progress', describeProgress(view.progress)],
      ['priority', view.priority ? String(view.priority) : undefined],
      ['key', view.key],
      ['schedule', view.scheduleId],
      ['input', formatJson(view.input, 200)],
      ['result', view.result !== undefined ? formatJson(view.result, 400) : undefined],
      ['error', view.error ? style.red(describeError(view.error)!) : undefined],
      ['created', formatTime(t.createdAt)],
      ['due', t.runAt !== t.createdAt ? formatTime(t.runAt) : undefined],
      ['started', t.startedAt !== undefined ? `${formatTime(t.startedAt)} (waited ${formatDuration(t.waitMs)})` : undefined],
      ['finished', t.finishedAt !== undefined ? `${formatTime(t.finishedAt)} (ran ${formatDuration(t.runMs)})` : undefined],
      ['owner', view.owner],
    ],
    style,
  );
  if (!view.history || view.history.length === 0) return head;
  const rows = view.history.map((h) => [
    `+${formatDuration(h.at - t.createdAt)}`,
    `${h.from ?? '·'} → ${paintState(h.to, style)}`,
    String(h.attempt),
    [h.reason, describeError(h.error)].filter(Boolean).join(' — '),
  ]);
  return `${head}\n${style.dim('history')}\n${indent(table(['AT', 'TRANSITION', 'ATTEMPT', 'REASON'], rows, style), '  ')}`;
}

/**
 * The RUN column: how long the latest attempt ran, or, while one runs, for how long so far. A task back in the
 * queue (a run given back or lost) still has its last start: no clock runs for it.
 */
function runCell(v: TaskView, now: number): string {
  if (v.timings.runMs !== undefined) return formatDuration(v.timings.runMs);
  return v.state === 'running' && v.timings.startedAt !== undefined ? `${formatDuration(now - v.timings.startedAt)}…` : '';
}

/** Why: `list` / `ps` rows, newest first, one line per task. */
export function renderTaskList(tasks: readonly TaskView[], style: Style, now = Date.now()): string {
  if (tasks.length === 0) return style.dim('no tasks');
  const rows = tasks.map((v) => [
    v.id,
    v.name,
    paintState(v.state, style),
    `${v.attempts}/${v.maxAttempts}`,
    describeProgress(v.progress) ?? '',
    formatAge(v.timings.createdAt, now),
    runCell(v, now),
  ]);
  return table(['ID', 'NAME', 'STATE', 'ATTEMPTS', 'PROGRESS', 'CREATED', 'RUN'], rows, style);
}

/** Why: the supervision tree as an indented outline with status, restarts and the facts each actor shares. */
export function renderTree(root: TreeNode, style: Style): string {
  const out: string[] = [];
  const facts = (n: TreeNode) => {
    const parts: string[] = [];
    if (n.strategy) parts.push(n.strategy);
    if (n.kind !== 'task') parts.push(`restarts ${n.restarts}`);
    if (n.mailbox !== undefined && n.mailbox > 0) parts.push(`mailbox ${n.mailbox}`);
    for (const [k, v] of Object.entries(n.info ?? {})) {
      if (v === undefined || typeof v === 'object') continue;
      parts.push(`${k} ${String(v)}`);
    }
    return parts.join('  ');
  };
  const status = (s: string) => (s === 'running' ? style.green(s) : s === 'stopped' ? style.red(s) : style.yellow(s));
  const walk = (n: TreeNode, prefix: string, last: boolean, top: boolean) => {
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    out.push(`${prefix}${branch}${style.bold(n.address)}  ${style.dim(n.kind)}  ${status(String(n.status))}  ${style.dim(facts(n))}`.trimEnd());
    const kids = n.children ?? [];
    kids.forEach((c, i) => walk(c, top ? '' : prefix + (last ? '   ' : '│  '), i === kids.length - 1, false));
  };
  walk(root, '', true, true);
  return out.join('\n');
}

/** Why: `health` shows liveness (is it making progress?) and the report's checks against their thresholds. */
export function renderHealth(info: HealthInfo, style: Style): string {
  const paint = (s: string) => (s === 'ok' ? style.green(s) : s === 'warning' ? style.yellow(s) : s === 'unknown' ? style.dim(s) : style.red(s));
  const report = info.report as { status?: string; checks?: Record<string, { value: number | null; unit: string; status: string; warning: number; error: number }> } | undefined;
  const tasks = info.tasks as { queued?: number; due?: number; running?: number; oldestDueAgeMs?: number } | undefined;
  const lines = [
    keyValues(
      [
        ['status', paint(String(info.status))],
        ['health', report?.status !== undefined ? paint(report.status) : undefined],
        ['runtime', typeof info.runtime === 'string' ? info.runtime : undefined],
        ['uptime', typeof info.uptimeMs === 'number' ? formatDuration(info.uptimeMs) : undefined],
        ['node', typeof info.nodeId === 'string' ? info.nodeId : undefined],
        ['store', typeof info.store === 'string' ? info.store : undefined],
        ['tasks', tasks ? `${tasks.queued ?? 0} queued, ${tasks.due ?? tasks.queued ?? 0} due, ${tasks.running ?? 0} running, oldest due ${formatDuration(tasks.oldestDueAgeMs ?? 0)}` : undefined],
        ['escalated', typeof info.escalated === 'string' ? style.red(info.escalated) : undefined],
      ],
      style,
    ),
  ];
  if (report?.checks) {
    const rows = Object.entries(report.checks).map(([name, c]) => [name, c.value === null ? '-' : `${c.value} ${c.unit}`, paint(c.status), `${c.warning} / ${c.error} ${c.unit}`]);
    lines.push(table(['CHECK', 'VALUE', 'STATUS', 'WARN / ERROR'], rows, style));
  }
  return lines.join('\n');
}

/** Why: `schedules` lists what runs periodically (nothing unless configured). */
export function renderSchedules(list: readonly ScheduleRecord[], style: Style): string {
  if (list.length === 0) return style.dim('no schedules (nothing periodic runs unless configured)');
  const rows = list.map((s) => [s.id, s.task, s.cron ?? `every ${formatDuration(s.everyMs)}`, s.paused ? style.yellow('paused') : style.green('active'), s.lastSlot ? formatTime(s.lastSlot) : '-']);
  return table(['ID', 'TASK', 'WHEN', 'STATE', 'LAST SLOT'], rows, style);
}

/** Why: `types` shows what may be run (the registry is the security boundary). */
export function renderTaskTypes(list: readonly TaskTypeInfo[], style: Style): string {
  if (list.length === 0) return style.dim('no tasks registered');
  const rows = list.map((t) => [t.name, t.kind ?? '', t.builtin ? 'built-in' : '', t.description ?? '']);
  return table(['NAME', 'KIND', '', 'DESCRIPTION'], rows, style);
}

/** Why: the advisor's answer: the pattern, the call that implements it and the reason. */
export function renderAdvice(advice: Advice, style: Style): string {
  return keyValues([['pattern', style.bold(advice.pattern)], ['call', advice.call], ['reason', advice.reason]], style);
}

/** Why: measured advice reads as a list of topics, each with its advice and the numbers behind it. */
export function renderTaskAdvice(advice: TaskAdvice, style: Style): string {
  const head = `${style.bold(advice.name)}  ${advice.basedOn.runs} runs measured${advice.enoughData ? '' : style.dim(' (too few for measured advice)')}`;
  const lines = [head];
  if (advice.note) lines.push(style.dim(advice.note));
  const measured = renderMeasured(advice.measured);
  if (measured) lines.push(style.dim(measured));
  for (const r of advice.recommendations) {
    const evidence = Object.entries(r.evidence).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`- ${style.cyan(r.topic)}: ${r.advice}${evidence ? style.dim(`  [${evidence}]`) : ''}`);
  }
  if (advice.recommendations.length === 0) lines.push(style.dim('no recommendation'));
  return lines.join('\n');
}

/** Why: the figures behind the advice, one line: duration, CPU (and its share of run time), memory. */
function renderMeasured(m: TaskAdvice['measured']): string | undefined {
  if (m === undefined) return undefined;
  const parts: string[] = [];
  if (m.durationMs) parts.push(`duration p50 ${formatDuration(m.durationMs.p50)} p95 ${formatDuration(m.durationMs.p95)}`);
  if (m.cpuMs) parts.push(`cpu p50 ${formatDuration(m.cpuMs.p50)} p95 ${formatDuration(m.cpuMs.p95)}${m.cpuPerSecond !== undefined ? ` (${percent(m.cpuPerSecond)} of run time)` : ''}`);
  if (m.peakRssMb) parts.push(`memory p50 ${Math.round(m.peakRssMb.p50)} MiB max ${Math.round(m.peakRssMb.max)} MiB`);
  return parts.length ? `measured: ${parts.join(' · ')}` : undefined;
}

/** Why: captured lines print as they were written; stderr and drop markers are marked. */
export function renderLine(line: OutputLine, style: Style): string {
  if (line.stream === 'stderr') return style.red(line.text);
  if (line.stream === 'marker') return style.dim(line.text);
  if (line.stream === 'log') return style.cyan(line.text);
  return line.text;
}

/** Why: the last line of a follow: how the task ended. */
export function renderEnd(id: string, end: FollowEnd, style: Style): string {
  const tail = end.state === 'succeeded' ? (end.result !== undefined ? ` → ${formatJson(end.result, 200)}` : '') : end.error ? ` — ${describeError(end.error)}` : '';
  return `${style.dim(id)} ${paintState(end.state, style)}${tail}`;
}

/** Why: a failed attempt that will be retried is worth a line while following; other state changes are not. */
export function renderRetry(s: FollowState, now = Date.now()): string | undefined {
  if (s.state !== 'retrying') return undefined;
  const wait = s.runAt !== undefined ? ` — retrying in ${formatDuration(Math.max(0, s.runAt - now))}` : ' — retrying';
  const why = describeError(s.error);
  return `attempt ${s.attempts ?? '?'} failed${why ? `: ${why}` : ''}${wait}`;
}

/** Why: progress as one short line when no bar can be drawn. */
export function renderProgress(p: Progress): string {
  return `progress ${describeProgress(p)}`;
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

/**
 * Why: the line `cancel` prints when the task had already ended. A flow parent's children that had not ended are
 * cancelled even then, so it says so rather than "nothing happened".
 */
export function notCancelledLine(id: string, view: Pick<TaskView, 'state' | 'flow'>): string {
  const base = `${id} was not cancelled: it had already ended (${view.state})`;
  return view.flow ? `${base}; its children that had not ended were cancelled with it` : base;
}
