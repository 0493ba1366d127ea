/**
 * The supervisor REPL on node:readline. Lines are run one at a time in the order typed (also when a pipe delivers
 * many at once); each command gets an AbortSignal that Ctrl-C aborts, so Ctrl-C ends a `tail`/`run` follow and
 * not the console. At an empty prompt Ctrl-C asks for a second one (or `exit`, or Ctrl-D) to leave.
 * History is one line per command in ~/.troupe_repl_history (or $TROUPE_REPL_HISTORY), kept across sessions.
 * A closed output (`| head`) ends the console like Ctrl-D.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { formatError } from '../cli/errors.ts';
import { createStyle, wantsColor } from '../cli/format.ts';
import type { Backend } from './backend.ts';
import { runLine, type ReplSession } from './commands.ts';
import { createCompleter } from './completer.ts';
import { RecentIds } from './recent-ids.ts';

export interface ReplOptions {
  backend: Backend;
  /** @default process.stdin */
  input?: NodeJS.ReadableStream;
  /** @default process.stdout */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Line editing, completion and a prompt. @default input and output are both terminals */
  terminal?: boolean;
  /** @default a terminal without NO_COLOR */
  color?: boolean;
  /** @default $TROUPE_REPL_HISTORY, else ~/.troupe_repl_history */
  historyFile?: string;
  /** Lines kept. @default 1000 */
  historySize?: number;
  /** Also treat the process's SIGINT as Ctrl-C (when stdin is not a terminal). @default true */
  handleSignals?: boolean;
}

/** Why: the file that keeps history across sessions, overridable for tests and shared machines. */
export function resolveHistoryFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.TROUPE_REPL_HISTORY || path.join(os.homedir(), '.troupe_repl_history');
}

/** Why: previous sessions' lines, oldest first, trimmed to the size kept. */
export function loadHistory(file: string, size: number): string[] {
  let lines: string[];
  try {
    lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
  if (lines.length > size) {
    lines = lines.slice(-size);
    try {
      writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    } catch {
      // A read-only history still works for this session.
    }
  }
  return lines;
}

/** Starts the console; resolves when it ends (`exit`, Ctrl-D, Ctrl-C twice, or the end of piped input). */
export async function startRepl(o: ReplOptions): Promise<void> {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const terminal = o.terminal ?? (Boolean((input as { isTTY?: boolean }).isTTY) && Boolean(output.isTTY));
  const style = createStyle(o.color ?? wantsColor(output));
  const historyFile = o.historyFile ?? resolveHistoryFile();
  const historySize = o.historySize ?? 1000;
  const history = loadHistory(historyFile, historySize);
  let historyBroken = false;

  const write = (text: string) => void output.write(`${text}\n`);
  const recent = new RecentIds();
  const session: ReplSession = {
    backend: o.backend,
    style,
    write,
    recent,
    names: [],
    scheduleIds: [],
    actors: [],
    signal: new AbortController().signal,
  };
  const completer = createCompleter({
    taskNames: () => session.names,
    ids: () => recent.list(),
    scheduleIds: () => session.scheduleIds,
    actors: () => session.actors,
  });

  write(style.dim(`troupe repl — ${o.backend.target} — type help; Tab completes; Ctrl-D leaves`));
  try {
    session.names = (await o.backend.taskTypes()).map((t) => t.name);
    session.scheduleIds = (await o.backend.schedules()).map((s) => s.id);
  } catch (error) {
    write(style.red(formatError(error)));
  }

  const rl = readline.createInterface({
    input,
    output,
    terminal,
    completer,
    history: [...history].reverse(),
    historySize,
    removeHistoryDuplicates: true,
    prompt: style.bold('troupe> '),
  });

  return new Promise<void>((resolve) => {
    const queue: string[] = [];
    let busy = false;
    let inputEnded = false;
    let finished = false;
    let askedToLeave = false;
    let current: AbortController | undefined;

    const prompt = () => {
      if (terminal && !finished) rl.prompt();
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      if (o.handleSignals !== false) process.off('SIGINT', onInterrupt);
      rl.close();
      resolve();
    };
    const remember = (line: string) => {
      const text = line.trim();
      if (text === '' || historyBroken || history[history.length - 1] === text) return;
      history.push(text);
      try {
        appendFileSync(historyFile, `${text}\n`, { mode: 0o600 });
      } catch (error) {
        historyBroken = true;
        write(style.dim(`(history is not kept: cannot write ${historyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`));
      }
    };
    const pump = async () => {
      if (busy) return;
      busy = true;
      while (queue.length > 0 && !finished) {
        const line = queue.shift()!;
        remember(line);
        current = new AbortController();
        session.signal = current.signal;
        const outcome = await runLine(session, line);
        current = undefined;
        if (outcome === 'exit') {
          finish();
          return;
        }
      }
      busy = false;
      if (inputEnded) finish();
      else prompt();
    };
    function onInterrupt(): void {
      if (current) {
        current.abort();
        return;
      }
      if (terminal && rl.line.length > 0) {
        // Drop the half-typed line, as a shell does: end of line, then delete to its start.
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
        return;
      }
      if (askedToLeave) {
        finish();
        return;
      }
      askedToLeave = true;
      write(`${terminal ? '\n' : ''}(press Ctrl-C again, type exit or press Ctrl-D to leave)`);
      prompt();
    }

    rl.on('line', (line) => {
      askedToLeave = false;
      queue.push(line);
      void pump();
    });
    rl.on('close', () => {
      inputEnded = true;
      if (!busy) finish();
    });
    rl.on('SIGINT', onInterrupt);
    if (o.handleSignals !== false) process.on('SIGINT', onInterrupt);
    // Output gone (`troupe repl | head` and head has exited): nobody can read what follows, so leave as on
    // Ctrl-D — stop the running command and end, so an embedded runtime is closed properly. The listener stays,
    // so writes already under way fail quietly.
    output.on('error', () => {
      current?.abort();
      finish();
    });
    prompt();
  });
}
