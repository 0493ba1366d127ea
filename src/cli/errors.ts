/**
 * How the command line fails: one line `error CODE: message` on stderr, exit 1 for a failure and 2 for a usage
 * mistake (an unknown command, option or task, bad JSON, an input the task refuses). Input given as JSON text is
 * parsed here so every caller reports a bad one the same way.
 */
import { readFile } from 'node:fs/promises';
import { ErrorCodes, isTroupeError, TroupeError } from '../errors.ts';

export const ExitCodes = { ok: 0, failure: 1, usage: 2, interrupted: 130, closedOutput: 141 } as const;
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

/**
 * Codes that mean "what was typed is wrong", refused before anything ran. A duplicate task can only come from the
 * config file here (a task named like a built-in one): a mistake in what was written, as a bad option is.
 */
const USAGE_CODES = new Set<string>([ErrorCodes.INVALID_OPTION, ErrorCodes.INVALID_INPUT, ErrorCodes.UNKNOWN_TASK, ErrorCodes.DUPLICATE_TASK]);

/** Why: scripts tell a usage mistake (2) from a failure (1). */
export function exitCodeOf(error: unknown): ExitCode {
  return isTroupeError(error) && USAGE_CODES.has(error.code) ? ExitCodes.usage : ExitCodes.failure;
}

/** Why: every failure is one line, code first, so it can be grepped and read. */
export function formatError(error: unknown): string {
  if (isTroupeError(error)) return `error ${error.code}: ${oneLine(error.message)}`;
  if (error instanceof Error) return `error: ${oneLine(error.message)}`;
  return `error: ${oneLine(String(error))}`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Why: `troupe logs -f … | head` or `troupe repl | head` close the pipe while the command still writes; the next
 * write fails with EPIPE, an 'error' event that would otherwise crash with a Node stack trace. `then` runs once,
 * on the first such error of any of the streams (exit 141 = 128 + SIGPIPE is what a shell shows for `yes | head`);
 * later errors of the dead streams are swallowed, as there is nowhere left to report them.
 */
export function onClosedOutput(streams: readonly NodeJS.WritableStream[], then: () => void): void {
  let closed = false;
  for (const stream of streams) {
    stream.on('error', () => {
      if (closed) return;
      closed = true;
      then();
    });
  }
}

/** Why: JSON typed on a command line is often mis-quoted; say where and how to write it. */
export function parseJsonInput(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TroupeError(
      ErrorCodes.INVALID_INPUT,
      `bad JSON in ${where}: ${(error as Error).message} — write it as JSON, e.g. '{"text":"abc"}' (quote it for the shell)`,
    );
  }
}

/** Why: `--input JSON` and `--input-file F` are one option with two spellings. */
export async function readInputOption(o: { input?: string; inputFile?: string }): Promise<unknown> {
  if (o.input !== undefined && o.inputFile !== undefined) {
    throw new TroupeError(ErrorCodes.INVALID_OPTION, 'give either --input or --input-file, not both');
  }
  if (o.input !== undefined) return parseJsonInput(o.input, '--input');
  if (o.inputFile !== undefined) {
    let text: string;
    try {
      text = o.inputFile === '-' ? await readStdin() : await readFile(o.inputFile, 'utf8');
    } catch (error) {
      throw new TroupeError(ErrorCodes.INVALID_OPTION, `cannot read --input-file ${o.inputFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    return parseJsonInput(text, `--input-file ${o.inputFile}`);
  }
  return undefined;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
