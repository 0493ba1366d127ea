/**
 * `troupe run <task>`: runs one task in-process from the config and exits with its outcome. The result goes to
 * stdout as JSON (and nothing else does, so `troupe run x > out.json` works); output lines and progress go to
 * stderr, as a live bar on a terminal. The store is `memory` unless `--store` says otherwise, so a one-shot run
 * never claims queued work from the config's durable store, and the config's schedules are left out.
 * Ctrl-C cancels the task (exit 130); a second Ctrl-C stops at once.
 */
import { ErrorCodes, isTroupeError, TroupeError } from '../../errors.ts';
import { createLocalBackend } from '../../repl/local-backend.ts';
import { createStderrLogger, openRuntime } from '../config-file.ts';
import { ExitCodes, readInputOption } from '../errors.ts';
import type { Style } from '../format.ts';
import { createProgressView } from '../progress-view.ts';
import { describeError } from '../render.ts';

export interface RunOptions {
  config?: string;
  store?: string;
  input?: string;
  inputFile?: string;
}

const CODE_OF_STATE: Record<string, string> = {
  failed: ErrorCodes.TASK_FAILED,
  timed_out: ErrorCodes.TIMEOUT,
  cancelled: ErrorCodes.CANCELLED,
};

/** Why: one task, start to end, from a terminal or a script, with the outcome as exit code. */
export async function runTask(task: string, o: RunOptions, style: Style, bar: boolean): Promise<number> {
  const input = await readInputOption(o);
  const { rt, loaded } = await openRuntime({ config: o.config, store: o.store ?? 'memory', withoutSchedules: true, logger: createStderrLogger() });
  const backend = createLocalBackend(rt, { closeTimeout: '5s' });
  let interrupted = false;
  let id: string | undefined;
  const onSignal = () => {
    if (interrupted) process.exit(ExitCodes.interrupted);
    interrupted = true;
    process.stderr.write(`\ncancelling ${id ?? task} (Ctrl-C again to stop now)\n`);
    if (id) void backend.cancel(id).catch(() => {});
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    try {
      id = await backend.enqueue(task, input);
    } catch (error) {
      // Without a config only the built-ins are registered: say that the config is what is missing.
      if (loaded === undefined && isTroupeError(error) && error.code === ErrorCodes.UNKNOWN_TASK) {
        throw new TroupeError(ErrorCodes.UNKNOWN_TASK, `${error.message} — no config file was found in ${process.cwd()}: pass --config FILE or create ./troupe.config.ts`, { cause: error });
      }
      throw error;
    }
    if (interrupted) await backend.cancel(id).catch(() => {});
    if (bar) process.stderr.write(style.dim(`running ${task} ${id}\n`));
    const view = createProgressView({ stream: process.stderr, bar, style, label: task });
    let end;
    try {
      end = await backend.follow(id, { onLine: view.line, onProgress: view.progress, onState: view.state });
    } finally {
      view.stop();
    }
    if (end?.state === 'succeeded') {
      process.stdout.write(`${JSON.stringify(end.result ?? null, null, process.stdout.isTTY ? 2 : undefined)}\n`);
      return ExitCodes.ok;
    }
    const state = end?.state ?? 'failed';
    const code = end?.error?.code ?? CODE_OF_STATE[state] ?? ErrorCodes.TASK_FAILED;
    const message = end?.error?.message ?? `the task ended ${state}`;
    process.stderr.write(`error ${code}: ${describeError({ name: 'Error', message })}\n`);
    return interrupted ? ExitCodes.interrupted : ExitCodes.failure;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await backend.close();
  }
}
