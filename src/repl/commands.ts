/**
 * The REPL's command table: each command has a name, aliases, a usage line, a summary for `help`, and a `run`
 * written against the Backend, so the same commands work attached to a server or embedded. A command reports a
 * problem by throwing; the REPL prints it as one line and keeps going.
 */
import type { TreeNode } from '../actor/actor.ts';
import { adviseFromTraits, type TaskTraits } from '../advisor.ts';
import { formatError, parseJsonInput } from '../cli/errors.ts';
import type { Style } from '../cli/format.ts';
import { createPlainProgressView } from '../cli/progress-view.ts';
import { renderAdvice, renderTaskAdvice, renderEnd, renderHealth, renderSchedules, renderTask, renderTaskList, renderTaskTypes, renderTree, notCancelledLine } from '../cli/render.ts';
import { ErrorCodes, TroupeError } from '../errors.ts';
import { isTaskState, TASK_STATES } from '../task.ts';
import { MAINTENANCE_TASKS, type Backend } from './backend.ts';
import type { RecentIds } from './recent-ids.ts';

/** What a command can use. */
export interface ReplSession {
  backend: Backend;
  style: Style;
  /** Writes one or more lines. */
  write(text: string): void;
  recent: RecentIds;
  /** Task names (for completion); refreshed by `types` and at start. */
  names: string[];
  scheduleIds: string[];
  actors: string[];
  /** Aborted by Ctrl-C: ends a follow, not the REPL. */
  signal: AbortSignal;
}

export interface ReplCommand {
  name: string;
  aliases?: readonly string[];
  usage: string;
  summary: string;
  /** `args` are the words after the command; `rest` is the raw text after the command word. */
  run(session: ReplSession, args: string[], rest: string): Promise<void | 'exit'>;
}

/** Why: a missing argument is a usage mistake that says how to write the command. */
function need(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new TroupeError(ErrorCodes.INVALID_OPTION, `usage: ${usage}`);
}

/** Why: `ps 0` or `ps 5000` is a mistake to point out, not a count to round silently (the range of `list --limit`). */
function countOf(word: string): number {
  const n = Number(word);
  if (!/^\d+$/.test(word) || n < 1 || n > 1000) {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, `a count is a whole number from 1 to 1000, got \`${word}\` — usage: ps [state] [name] [limit]`);
  }
  return n;
}

/** Splits `<task> [json]`: the first word, then everything after it as JSON (spaces allowed). */
function taskAndJson(rest: string): { task: string; json: unknown } {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(rest.trim());
  const task = m?.[1] ?? '';
  const text = m?.[2]?.trim() ?? '';
  return { task, json: text ? parseJsonInput(text, 'the input') : undefined };
}

async function follow(s: ReplSession, id: string): Promise<void> {
  const view = createPlainProgressView((text) => s.write(text), s.style);
  const end = await s.backend.follow(id, { signal: s.signal, onLine: view.line, onProgress: view.progress, onState: view.state });
  if (!end) {
    s.write(s.style.dim(`stopped following ${id} (the task goes on; \`cancel ${id}\` stops it)`));
    return;
  }
  s.write(renderEnd(id, end, s.style));
}

/** Whether `name` is registered, asking the backend again when the names read at start do not have it. */
async function isTaskName(s: ReplSession, name: string): Promise<boolean> {
  if (s.names.includes(name)) return true;
  s.names = (await s.backend.taskTypes()).map((t) => t.name);
  return s.names.includes(name);
}

function collectActors(node: TreeNode, out: string[] = []): string[] {
  if (node.kind !== 'task') out.push(node.address);
  for (const c of node.children ?? []) collectActors(c, out);
  return out;
}

export const COMMANDS: readonly ReplCommand[] = [
  {
    name: 'tree',
    usage: 'tree',
    summary: 'the supervision tree: actors, status, restarts, running tasks',
    run: async (s) => {
      const root = await s.backend.tree();
      s.actors = collectActors(root).filter((a) => a !== root.address);
      s.write(renderTree(root, s.style));
    },
  },
  {
    name: 'ps',
    aliases: ['tasks'],
    usage: 'ps [state] [name] [limit]',
    summary: 'recent tasks, newest first (filters: a state, a task name, a count)',
    run: async (s, args) => {
      let state: string | undefined;
      let name: string | undefined;
      let limit = 20;
      for (const a of args) {
        if (isTaskState(a)) state = a;
        else if (/^[-+]?\d*\.?\d+$/.test(a)) limit = countOf(a);
        else name = a;
      }
      const page = await s.backend.list({ ...(state ? { state } : {}), ...(name ? { name } : {}), limit });
      if (page.tasks.length === 0 && name !== undefined && !(await isTaskName(s, name))) {
        // A misspelt state (`ps faild`) would read as a task name and show an empty table: say so instead. A
        // name that is not registered but has tasks (from an earlier config) still lists them.
        throw new TroupeError(ErrorCodes.INVALID_OPTION, `\`${name}\` is neither a state (${TASK_STATES.join(', ')}) nor a registered task name — usage: ps [state] [name] [limit]`);
      }
      s.recent.add(...page.tasks.map((t) => t.id));
      s.write(renderTaskList(page.tasks, s.style));
    },
  },
  {
    name: 'inspect',
    usage: 'inspect <id>',
    summary: 'one task: state, attempts, timings, input, result or error, history',
    run: async (s, args) => {
      need(args, 1, 'inspect <id>');
      const view = await s.backend.get(s.recent.resolve(args[0]!));
      s.recent.add(view.id);
      s.write(renderTask(view, s.style));
    },
  },
  {
    name: 'tail',
    usage: 'tail <id>',
    summary: "follow a task's output until it ends (Ctrl-C stops following)",
    run: async (s, args) => {
      need(args, 1, 'tail <id>');
      const id = s.recent.resolve(args[0]!);
      s.recent.add(id);
      await follow(s, id);
    },
  },
  {
    name: 'run',
    usage: 'run <task> [json input]',
    summary: 'enqueue a task and follow it to its result',
    run: async (s, _args, rest) => {
      const { task, json } = taskAndJson(rest);
      if (!task) throw new TroupeError(ErrorCodes.INVALID_OPTION, 'usage: run <task> [json input]');
      const id = await s.backend.enqueue(task, json);
      s.recent.add(id);
      s.write(s.style.dim(`started ${task} ${id}`));
      await follow(s, id);
    },
  },
  {
    name: 'enqueue',
    usage: 'enqueue <task> [json input]',
    summary: 'enqueue a task and print its id (fire and forget)',
    run: async (s, _args, rest) => {
      const { task, json } = taskAndJson(rest);
      if (!task) throw new TroupeError(ErrorCodes.INVALID_OPTION, 'usage: enqueue <task> [json input]');
      const id = await s.backend.enqueue(task, json);
      s.recent.add(id);
      s.write(id);
    },
  },
  {
    name: 'cancel',
    usage: 'cancel <id>',
    summary: 'cancel a queued or running task (its process tree is ended)',
    run: async (s, args) => {
      need(args, 1, 'cancel <id>');
      const id = s.recent.resolve(args[0]!);
      const cancelled = await s.backend.cancel(id);
      s.write(cancelled ? `cancelled ${id}` : notCancelledLine(id, await s.backend.get(id)));
    },
  },
  {
    name: 'retry',
    usage: 'retry <id>',
    summary: 'put a failed, timed-out or cancelled task back in the queue',
    run: async (s, args) => {
      need(args, 1, 'retry <id>');
      const id = s.recent.resolve(args[0]!);
      await s.backend.retry(id);
      s.write(`retried ${id}: queued again`);
    },
  },
  {
    name: 'pause',
    usage: 'pause <task name> | pause schedule <id>',
    summary: 'stop claiming a task name (its queue is kept), or pause a schedule',
    run: (s, args) => pauseOrResume(s, args, 'pause'),
  },
  {
    name: 'resume',
    usage: 'resume <task name> | resume schedule <id>',
    summary: 'resume a paused task name or schedule',
    run: (s, args) => pauseOrResume(s, args, 'resume'),
  },
  {
    name: 'trigger',
    usage: 'trigger <schedule id>',
    summary: 'fire a schedule now, outside its timetable',
    run: async (s, args) => {
      const rest = args[0] === 'schedule' ? args.slice(1) : args;
      need(rest, 1, 'trigger <schedule id>');
      const id = await s.backend.schedule(rest[0]!, 'trigger');
      if (id) s.recent.add(id);
      s.write(id ? `triggered ${rest[0]}: task ${id}` : `triggered ${rest[0]}`);
    },
  },
  {
    name: 'schedules',
    usage: 'schedules',
    summary: 'periodic schedules (none unless configured)',
    run: async (s) => {
      const list = await s.backend.schedules();
      s.scheduleIds = list.map((x) => x.id);
      s.write(renderSchedules(list, s.style));
    },
  },
  {
    name: 'types',
    usage: 'types',
    summary: 'registered task names (what can be run)',
    run: async (s) => {
      const types = await s.backend.taskTypes();
      s.names = types.map((t) => t.name);
      s.write(renderTaskTypes(types, s.style));
    },
  },
  {
    name: 'restart',
    usage: 'restart <actor>',
    summary: 'restart an actor of the supervision tree by hand',
    run: async (s, args) => {
      need(args, 1, 'restart <actor>');
      await s.backend.restart(args[0]!);
      s.write(`restarted ${args[0]}`);
    },
  },
  {
    name: 'health',
    usage: 'health',
    summary: 'CPU, memory, disk, event loop and queue against their thresholds',
    run: async (s) => s.write(renderHealth(await s.backend.health(), s.style)),
  },
  {
    name: 'maint',
    usage: 'maint <name> [json input]',
    summary: `enqueue ${MAINTENANCE_TASKS.join(' | ')}, e.g. maint cleanup-runs {"maxAgeHours":48}`,
    run: async (s, _args, rest) => {
      const { task, json } = taskAndJson(rest);
      if (!(MAINTENANCE_TASKS as readonly string[]).includes(task)) {
        throw new TroupeError(ErrorCodes.UNKNOWN_TASK, `No maintenance task \`${task}\`: use one of ${MAINTENANCE_TASKS.join(', ')}`);
      }
      // Checked here, as `troupe maint --input` does: attached, the server would refuse it as a malformed body.
      if (json !== undefined && (typeof json !== 'object' || json === null || Array.isArray(json))) {
        throw new TroupeError(ErrorCodes.INVALID_INPUT, `Expected the input of \`maint ${task}\` to be a JSON object, e.g. {"maxAgeHours":48}`);
      }
      const id = await s.backend.maintenance(task, json);
      s.recent.add(id);
      s.write(`${id}  ${s.style.dim(`(\`tail ${id}\` follows it)`)}`);
    },
  },
  {
    name: 'advise',
    usage: 'advise <task> | advise [json traits]',
    summary: 'advice for a task from its measured history, or which pattern fits traits, e.g. advise {"streaming":true}',
    run: async (s, _args, rest) => {
      const text = rest.trim();
      if (text && !text.startsWith('{')) {
        s.write(renderTaskAdvice(await s.backend.advise(text), s.style));
        return;
      }
      const traits = text ? parseJsonInput(text, 'the traits') : {};
      s.write(renderAdvice(adviseFromTraits(traits as TaskTraits), s.style));
    },
  },
  {
    name: 'help',
    aliases: ['?'],
    usage: 'help [command]',
    summary: 'this list, or one command',
    run: async (s, args) => {
      if (args[0]) {
        const c = findCommand(args[0]);
        if (!c) throw unknownCommand(args[0]);
        s.write(`${c.usage}\n  ${c.summary}`);
        return;
      }
      const width = Math.max(...COMMANDS.map((c) => c.usage.length));
      s.write(COMMANDS.map((c) => `${c.usage.padEnd(width)}  ${s.style.dim(c.summary)}`).join('\n'));
      s.write(s.style.dim('Tab completes commands, task names and recent ids; Ctrl-C stops a follow; Ctrl-D or exit leaves.'));
    },
  },
  {
    name: 'exit',
    aliases: ['quit', '.exit'],
    usage: 'exit',
    summary: 'leave the REPL',
    run: async () => 'exit',
  },
];

async function pauseOrResume(s: ReplSession, args: string[], action: 'pause' | 'resume'): Promise<void> {
  if (args[0] === 'schedule') {
    need(args, 2, `${action} schedule <id>`);
    await s.backend.schedule(args[1]!, action);
    s.write(`${action === 'pause' ? 'paused' : 'resumed'} schedule ${args[1]}`);
    return;
  }
  need(args, 1, `${action} <task name> | ${action} schedule <id>`);
  await s.backend.queue(args[0]!, action);
  s.write(`${action === 'pause' ? 'paused' : 'resumed'} ${args[0]}${action === 'pause' ? ' (queued tasks wait; running ones finish)' : ''}`);
}

/** Why: commands are found by name or alias, one table for dispatch, help and completion. */
export function findCommand(word: string): ReplCommand | undefined {
  return COMMANDS.find((c) => c.name === word || c.aliases?.includes(word));
}

function unknownCommand(word: string): TroupeError {
  return new TroupeError(ErrorCodes.INVALID_OPTION, `unknown command \`${word}\` — type help for the list`);
}

/** Why: one line in, its output or a one-line error out; the REPL survives every mistake. */
export async function runLine(session: ReplSession, line: string): Promise<void | 'exit'> {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return;
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text)!;
  const word = m[1]!;
  const rest = m[2] ?? '';
  const command = findCommand(word);
  try {
    if (!command) throw unknownCommand(word);
    return await command.run(session, rest.split(/\s+/).filter(Boolean), rest);
  } catch (error) {
    session.write(session.style.red(formatError(error)));
  }
}
