/**
 * The commands that talk to a running server: enqueue, status, list, logs, cancel, retry, types, health, maint.
 * Each one is a call on the HTTP Backend and a rendering: aligned text for people, `--json` for scripts.
 */
import { decimalFromText, MAX_AGE_HOURS_LIMIT } from '../../../actors/maintenance/maintenance-input.ts';
import { checkKey, PRIORITY_LIMIT } from '../../dedup.ts';
import { ErrorCodes, TroupeError } from '../../errors.ts';
import { MAINTENANCE_TASKS, type Backend } from '../../repl/backend.ts';
import { DEFAULT_URL } from '../../repl/client.ts';
import { createHttpBackend } from '../../repl/http-backend.ts';
import { isTaskState, TASK_STATES } from '../../task.ts';
import { parseDuration } from '../../units.ts';
import { ExitCodes, parseJsonInput, readInputOption } from '../errors.ts';
import type { Style } from '../format.ts';
import { renderEnd, renderHealth, renderLine, renderRetry, renderTask, renderTaskList, renderTaskTypes, renderTaskAdvice, notCancelledLine } from '../render.ts';

export interface RemoteGlobals {
  url?: string;
  token?: string;
  json?: boolean;
}

export interface RemoteContext {
  backend: Backend;
  json: boolean;
  style: Style;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Why: `--url` beats TROUPE_URL beats the default; the same for the token. */
export function createRemoteContext(g: RemoteGlobals, style: Style): RemoteContext {
  const url = g.url ?? (process.env.TROUPE_URL || DEFAULT_URL);
  const token = g.token ?? (process.env.TROUPE_TOKEN || undefined);
  return {
    backend: createHttpBackend({ url, ...(token ? { token } : {}) }),
    json: g.json === true,
    style,
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(`${text}\n`),
  };
}

const printJson = (ctx: RemoteContext, value: unknown) => ctx.out(JSON.stringify(value, null, 2));


/** Why: an integer option must fail as a usage error that names it. */
export function parseInteger(value: string, name: string, { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {}): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`${name}\` to be an integer from ${min} to ${max}, got \`${value}\``);
  }
  return n;
}

/** Prints only the id (or `{ id }`), so `id=$(troupe enqueue …)` works. */
export async function enqueueCommand(ctx: RemoteContext, task: string, o: { input?: string; inputFile?: string; priority?: string; delay?: string; key?: string }): Promise<number> {
  const input = await readInputOption(o);
  const id = await ctx.backend.enqueue(task, input, {
    ...(o.priority !== undefined ? { priority: parseInteger(o.priority, '--priority', { min: -PRIORITY_LIMIT, max: PRIORITY_LIMIT }) } : {}),
    // Checked here, so that a bad one is named as typed (`--delay`), not as the API's option.
    ...(o.delay !== undefined ? { delay: parseDuration(/^\d+$/.test(o.delay) ? Number(o.delay) : o.delay, '--delay') } : {}),
    ...(o.key !== undefined ? { key: checkKey(o.key, '--key') } : {}),
  });
  if (ctx.json) printJson(ctx, { id });
  else ctx.out(id);
  return ExitCodes.ok;
}

/** One task with its history, as `inspect` shows it in the REPL. */
export async function statusCommand(ctx: RemoteContext, id: string): Promise<number> {
  const view = await ctx.backend.get(id);
  if (ctx.json) printJson(ctx, view);
  else ctx.out(renderTask(view, ctx.style));
  return ExitCodes.ok;
}

/** Checks `--state` before asking, so a typo is a usage error and not an empty table. */
export async function listCommand(ctx: RemoteContext, o: { state?: string; name?: string; limit?: string; cursor?: string }): Promise<number> {
  if (o.state !== undefined) {
    for (const s of o.state.split(',')) {
      if (!isTaskState(s)) throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`--state\` to be one of ${TASK_STATES.join(', ')}, got \`${s}\``);
    }
  }
  const page = await ctx.backend.list({
    ...(o.state !== undefined ? { state: o.state } : {}),
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.limit !== undefined ? { limit: parseInteger(o.limit, '--limit', { min: 1, max: 1000 }) } : {}),
    ...(o.cursor !== undefined ? { cursor: o.cursor } : {}),
  });
  if (ctx.json) {
    printJson(ctx, page);
    return ExitCodes.ok;
  }
  ctx.out(renderTaskList(page.tasks, ctx.style));
  if (page.nextCursor) ctx.out(ctx.style.dim(`more: --cursor ${page.nextCursor}`));
  return ExitCodes.ok;
}

/** `logs -f` mirrors the outcome in its exit code (0 only when the task succeeded), like `docker wait`. */
export async function logsCommand(ctx: RemoteContext, id: string, o: { follow?: boolean }): Promise<number> {
  const print = (line: Parameters<typeof renderLine>[0]) => ctx.out(ctx.json ? JSON.stringify(line) : renderLine(line, ctx.style));
  if (!o.follow) {
    for (const line of await ctx.backend.output(id)) print(line);
    return ExitCodes.ok;
  }
  const end = await ctx.backend.follow(id, {
    onLine: print,
    onState: (state) => {
      const text = renderRetry(state);
      if (text && !ctx.json) ctx.err(ctx.style.yellow(text));
    },
  });
  if (!end) return ExitCodes.interrupted;
  if (ctx.json) ctx.err(JSON.stringify({ end }));
  else ctx.err(renderEnd(id, end, ctx.style));
  return end.state === 'succeeded' ? ExitCodes.ok : ExitCodes.failure;
}

/** Says whether this call cancelled the task, and if not, what state it had ended in. */
export async function cancelCommand(ctx: RemoteContext, id: string): Promise<number> {
  const cancelled = await ctx.backend.cancel(id);
  if (ctx.json) {
    printJson(ctx, { id, cancelled });
    return ExitCodes.ok;
  }
  if (cancelled) ctx.out(`cancelled ${id}`);
  else ctx.out(notCancelledLine(id, await ctx.backend.get(id)));
  return ExitCodes.ok;
}

/** Puts a dead letter back; a task that is not one is a CONFLICT from the server. */
export async function retryCommand(ctx: RemoteContext, id: string): Promise<number> {
  await ctx.backend.retry(id);
  if (ctx.json) printJson(ctx, { id, retried: true });
  else ctx.out(`retried ${id}: queued again with a fresh attempt budget`);
  return ExitCodes.ok;
}

/** What the server may run: the registry is the security boundary. */
export async function typesCommand(ctx: RemoteContext): Promise<number> {
  const types = await ctx.backend.taskTypes();
  if (ctx.json) printJson(ctx, types);
  else ctx.out(renderTaskTypes(types, ctx.style));
  return ExitCodes.ok;
}

/** `health` exits 1 when the runtime is not live (stalled, stopping…) or a check is at `error`, so it can gate a deploy. */
export async function healthCommand(ctx: RemoteContext): Promise<number> {
  const info = await ctx.backend.health();
  if (ctx.json) printJson(ctx, info);
  else ctx.out(renderHealth(info, ctx.style));
  const report = (info.report as { status?: string } | undefined)?.status;
  return info.status !== 'ok' || report === 'error' ? ExitCodes.failure : ExitCodes.ok;
}

/** Prints the server's recommendations for one task, from its measured history. */
export async function adviseTaskCommand(ctx: RemoteContext, task: string): Promise<number> {
  const advice = await ctx.backend.advise(task);
  if (ctx.json) printJson(ctx, advice);
  else ctx.out(renderTaskAdvice(advice, ctx.style));
  return ExitCodes.ok;
}

/** Enqueues a built-in; `--wait` follows it and prints its result, exiting with its outcome. */
export async function maintCommand(ctx: RemoteContext, name: string, o: { maxAgeHours?: string; input?: string; wait?: boolean }): Promise<number> {
  if (!(MAINTENANCE_TASKS as readonly string[]).includes(name)) {
    throw new TroupeError(ErrorCodes.UNKNOWN_TASK, `No maintenance task \`${name}\`: use one of ${MAINTENANCE_TASKS.join(', ')}`);
  }
  const input = (o.input !== undefined ? parseJsonInput(o.input, '--input') : {}) as Record<string, unknown>;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new TroupeError(ErrorCodes.INVALID_INPUT, 'Expected `--input` to be a JSON object');
  if (o.maxAgeHours !== undefined) {
    if (name !== 'cleanup-runs' && name !== 'cleanup-temp-files') {
      throw new TroupeError(ErrorCodes.INVALID_OPTION, `--max-age-hours is for cleanup-runs and cleanup-temp-files, not ${name}`);
    }
    const hours = decimalFromText(o.maxAgeHours);
    if (hours === undefined || hours <= 0 || hours > MAX_AGE_HOURS_LIMIT) {
      throw new TroupeError(ErrorCodes.INVALID_OPTION, `Expected \`--max-age-hours\` to be a positive decimal number of hours, at most ${MAX_AGE_HOURS_LIMIT}, got \`${o.maxAgeHours}\``);
    }
    if (input.maxAgeHours !== undefined && input.maxAgeHours !== hours) {
      throw new TroupeError(ErrorCodes.INVALID_OPTION, `give the age once: --max-age-hours ${o.maxAgeHours} or \`maxAgeHours\` in --input (${JSON.stringify(input.maxAgeHours)}), not both`);
    }
    input.maxAgeHours = hours;
  }
  const id = await ctx.backend.maintenance(name, input);
  if (!o.wait) {
    if (ctx.json) printJson(ctx, { id });
    else ctx.out(id);
    return ExitCodes.ok;
  }
  const end = await ctx.backend.follow(id, {});
  if (!end) return ExitCodes.interrupted;
  if (ctx.json) printJson(ctx, { id, ...end });
  else if (end.state === 'succeeded') ctx.out(JSON.stringify(end.result ?? null, null, 2));
  else ctx.err(renderEnd(id, end, ctx.style));
  return end.state === 'succeeded' ? ExitCodes.ok : ExitCodes.failure;
}
