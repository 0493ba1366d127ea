/**
 * The text of a task's history as the SQLite store (`tasks.history`, its schema version 5) and the PostgreSQL store
 * (`tasks.history`, its schema version 4) keep it in the task's row: one line per transition, each ended by a
 * newline so that a transition is appended with `||`:
 *
 *   <from><to><at>,<attempt>[|<JSON [reason, error]>]
 *
 * `from` and `to` are one character each (STATE_CODES; `-` for the first line's missing `from`), `at` and
 * `attempt` decimal integers; the JSON part is there only when the transition has a reason or an error (JSON text
 * never holds a raw newline). `qr1767225600000,1` is a task started at that time, first attempt. Lines are kept
 * short because every claim and success appends one to a row: a JSON array per line made rows a fifth larger.
 *
 * Each store writes lines from its own SQL (src/store/sqlite/queries/history-line.ts,
 * src/store/postgres/history-line.ts); the codes, the JavaScript writer and the reader are here.
 */
import { ErrorCodes, TroupeError, type SerializedError } from '../errors.ts';
import { TASK_STATES, type TaskState, type Transition } from '../task.ts';

/** One character per state; stored in files and databases, so never change one. */
export const STATE_CODES: Readonly<Record<TaskState, string>> = Object.freeze({
  scheduled: 's',
  queued: 'q',
  running: 'r',
  retrying: 'y',
  succeeded: 'd',
  failed: 'f',
  cancelled: 'c',
  timed_out: 't',
});
const NONE = '-';
const STATE_OF = new Map<string, TaskState>(TASK_STATES.map((s) => [STATE_CODES[s], s]));

/** The one-character code of a state, `-` for none (the first line's `from`). */
export const stateCode = (state: TaskState | null): string => (state === null ? NONE : STATE_CODES[state]);

/** What a transition says besides its task. */
export type TransitionFields = [from: TaskState | null, to: TaskState, at: number, attempt: number, reason?: string, error?: SerializedError];

/** One line, as `record` appends it. */
export function historyLine(...[from, to, at, attempt, reason, error]: TransitionFields): string {
  const extra = reason === undefined && error === undefined ? '' : `|${JSON.stringify([reason ?? null, error ?? null])}`;
  return `${stateCode(from)}${stateCode(to)}${at},${attempt}${extra}\n`;
}

/** SQL (SQLite and PostgreSQL alike): the code of the state in `expr` (a column or parameter holding a state name; NULL gives `-`). */
export function stateCodeSql(expr: string): string {
  return `CASE ${expr} ${TASK_STATES.map((s) => `WHEN '${s}' THEN '${STATE_CODES[s]}'`).join(' ')} ELSE '${NONE}' END`;
}

/** Why: the history column back as transitions, oldest first; a line that is not one is a corrupt file. */
export function parseHistory(taskId: string, history: string): Transition[] {
  const out: Transition[] = [];
  let start = 0;
  while (start < history.length) {
    let end = history.indexOf('\n', start);
    if (end < 0) end = history.length;
    out.push(parseLine(taskId, history.slice(start, end)));
    start = end + 1;
  }
  return out;
}

function parseLine(taskId: string, line: string): Transition {
  const from = line[0] === NONE ? null : STATE_OF.get(line[0] ?? '');
  const to = STATE_OF.get(line[1] ?? '');
  const bar = line.indexOf('|');
  const head = bar < 0 ? line.slice(2) : line.slice(2, bar);
  const comma = head.indexOf(',');
  const at = Number(head.slice(0, comma));
  const attempt = Number(head.slice(comma + 1));
  const notALine = (): TroupeError =>
    new TroupeError(ErrorCodes.STORE_CORRUPT, `The history of task ${taskId} holds a line that is not a transition: ${JSON.stringify(line.slice(0, 80))}`);
  if (from === undefined || to === undefined || comma < 1 || !Number.isSafeInteger(at) || !Number.isSafeInteger(attempt)) throw notALine();
  const t: Transition = { taskId, from, to, at, attempt };
  if (bar >= 0) {
    let extra: unknown;
    try {
      extra = JSON.parse(line.slice(bar + 1));
    } catch {
      throw notALine();
    }
    if (!Array.isArray(extra) || extra.length !== 2) throw notALine();
    const [reason, error] = extra as [string | null, SerializedError | null];
    if (reason !== null) t.reason = reason;
    if (error !== null) t.error = error;
  }
  return t;
}
