/**
 * The line protocol a command speaks on stdout to report progress and a result, in any language, with no library:
 *
 *   ::progress 0.42        a fraction between 0 and 1
 *   ::progress 3/10        done/total (total > 0); the fraction is done/total, capped at 1
 *   ::result {"rows":42}   one JSON value: the task's result (the last valid one wins)
 *
 * Rules:
 * - Only stdout is read for the protocol, and a line must start with `::progress ` or `::result ` exactly (one
 *   space after the keyword; surrounding whitespace of the value is ignored).
 * - A protocol line is consumed: it is not passed on as output and not counted as an output line.
 * - A malformed protocol line (`::progress 1.5`, `::progress 3/0`, `::result {bad`) is NOT an error: it is passed
 *   on as an ordinary output line, so a typo is visible in the output instead of silently lost.
 * - A `::result` line must fit in the capture's `maxBytes`; a longer line is cut, stops being valid JSON and so
 *   shows up as output.
 *
 * @example
 * # Python
 * print(f"::progress {done}/{total}", flush=True)
 * print("::result " + json.dumps({"rows": rows}), flush=True)
 */

/** Progress as a command reports it. */
export interface CommandProgress {
  /** Between 0 and 1. */
  fraction: number;
  done?: number;
  total?: number;
}

/** A recognised protocol line. */
export type ProtocolMessage =
  | { type: 'progress'; progress: CommandProgress }
  | { type: 'result'; value: unknown };

const PROGRESS = '::progress ';
const RESULT = '::result ';
const NUMBER = /^\d+(?:\.\d+)?$/;

/** Reads one stdout line as a protocol message; `undefined` means "an ordinary line" (why: one parser, one set of rules). */
export function parseProtocolLine(text: string): ProtocolMessage | undefined {
  if (text.charCodeAt(0) !== 0x3a || text.charCodeAt(1) !== 0x3a) return undefined;
  if (text.startsWith(PROGRESS)) {
    const progress = parseProgress(text.slice(PROGRESS.length).trim());
    return progress === undefined ? undefined : { type: 'progress', progress };
  }
  if (text.startsWith(RESULT)) {
    try {
      return { type: 'result', value: JSON.parse(text.slice(RESULT.length)) as unknown };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function parseProgress(value: string): CommandProgress | undefined {
  const slash = value.indexOf('/');
  if (slash === -1) {
    if (!NUMBER.test(value)) return undefined;
    const fraction = Number(value);
    return fraction <= 1 ? { fraction } : undefined;
  }
  const doneText = value.slice(0, slash).trim();
  const totalText = value.slice(slash + 1).trim();
  if (!NUMBER.test(doneText) || !NUMBER.test(totalText)) return undefined;
  const done = Number(doneText);
  const total = Number(totalText);
  if (total <= 0) return undefined;
  return { fraction: Math.min(1, done / total), done, total };
}
