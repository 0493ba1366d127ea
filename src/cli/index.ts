/**
 * The `troupe` command: argument parsing (commander) and the exit-code rule — 0 done, 1 failed, 2 usage mistake,
 * 130 interrupted. Each command's module is imported only when that command runs, so `troupe status` does not
 * load the runtime, the thread pool or the HTTP server.
 *
 *   serve     run the runtime and the HTTP API from a config
 *   run       run one task in-process and exit with its outcome
 *   enqueue | status | list | logs | cancel | retry | types | health | maint   against a running server
 *   advise    which pattern fits a task's traits
 *   repl      the supervisor console (attached, or embedded with --config)
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { RemoteGlobals } from './commands/remote.ts';
import { exitCodeOf, ExitCodes, formatError, onClosedOutput } from './errors.ts';
import { createStyle, wantsColor, type Style } from './format.ts';

interface Globals extends RemoteGlobals {
  color?: boolean;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function styleFor(g: Globals, stream: NodeJS.WriteStream): Style {
  return createStyle(g.color !== false && wantsColor(stream));
}

/** Why: one place builds the command tree, so help, tests and the binary agree. */
export function createProgram(setExit: (code: number) => void): Command {
  const program = new Command('troupe');
  program
    .description('troupe — a background-task runtime: serve it, run tasks, and supervise it from a terminal')
    .version(packageVersion(), '-v, --version')
    .option('--url <url>', 'server to talk to (default: $TROUPE_URL or http://127.0.0.1:7420)')
    .option('--token <token>', 'bearer token (default: $TROUPE_TOKEN)')
    .option('--json', 'print JSON for scripts instead of tables')
    .option('--no-color', 'never print colours (also: NO_COLOR=1)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`${usageError(str)}\n`) })
    .showSuggestionAfterError(true);

  const globals = (cmd: Command) => cmd.optsWithGlobals<Globals>();
  const remote = async (cmd: Command) => {
    const { createRemoteContext } = await import('./commands/remote.ts');
    const g = globals(cmd);
    return { ctx: createRemoteContext(g, styleFor(g, process.stdout)), mod: await import('./commands/remote.ts') };
  };
  const inputOptions = (cmd: Command) =>
    cmd.option('-i, --input <json>', 'task input as JSON, e.g. \'{"text":"abc"}\'').option('--input-file <file>', 'read the input JSON from a file (- for stdin)');

  program
    .command('serve')
    .description('start the runtime and the HTTP API from a config; Ctrl-C stops gracefully')
    .option('-c, --config <file>', 'config module (default: ./troupe.config.ts)')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', (v) => portOf(v))
    .option('--host <host>', 'address to bind (default: 127.0.0.1)')
    .option('--store <store>', 'memory | sqlite:PATH | postgres:URL (overrides the config)')
    .option('--grace <duration>', 'how long running tasks may finish on stop', '10s')
    .action(async (o, cmd: Command) => {
      const { serve } = await import('./commands/serve.ts');
      setExit(await serve(o, styleFor(globals(cmd), process.stdout)));
    });

  inputOptions(
    program
      .command('run')
      .description('run one task in-process and exit with its outcome (result JSON on stdout)')
      .argument('<task>', 'registered task name')
      .option('-c, --config <file>', 'config module (default: ./troupe.config.ts)')
      .option('--store <store>', 'memory | sqlite:PATH | postgres:URL (default: memory)'),
  ).action(async (task: string, o, cmd: Command) => {
    const { runTask } = await import('./commands/run.ts');
    const g = globals(cmd);
    setExit(await runTask(task, o, styleFor(g, process.stderr), process.stderr.isTTY === true && g.json !== true));
  });

  inputOptions(
    program
      .command('enqueue')
      .description('enqueue a task on the server and print its id')
      .argument('<task>', 'registered task name')
      .option('--priority <n>', 'higher runs first under the priority strategy')
      .option('--delay <duration>', "wait before it may run, e.g. '5m'")
      .option('--key <key>', 'idempotency key: a second enqueue with it returns the first task'),
  ).action(async (task: string, o, cmd: Command) => {
    const { ctx, mod } = await remote(cmd);
    setExit(await mod.enqueueCommand(ctx, task, o));
  });

  program
    .command('status')
    .description('one task: state, attempts, timings, result or error, history')
    .argument('<id>', 'task id')
    .action(async (id: string, _o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.statusCommand(ctx, id));
    });

  program
    .command('list')
    .alias('ls')
    .description('tasks, newest first')
    .option('--state <state>', 'scheduled | queued | running | retrying | succeeded | failed | cancelled | timed_out (comma-separated)')
    .option('--name <name>', 'task name')
    .option('--limit <n>', 'at most n tasks (1–1000)', '50')
    .option('--cursor <cursor>', 'the next page, as printed by the previous one')
    .action(async (o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.listCommand(ctx, o));
    });

  program
    .command('logs')
    .description("a task's captured output; -f follows it until the task ends (exit 0 only if it succeeded)")
    .argument('<id>', 'task id')
    .option('-f, --follow', 'follow live output until the task ends')
    .action(async (id: string, o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.logsCommand(ctx, id, o));
    });

  program
    .command('cancel')
    .description('cancel a queued or running task')
    .argument('<id>', 'task id')
    .action(async (id: string, _o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.cancelCommand(ctx, id));
    });

  program
    .command('retry')
    .description('put a failed, timed-out or cancelled task back in the queue')
    .argument('<id>', 'task id')
    .action(async (id: string, _o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.retryCommand(ctx, id));
    });

  program
    .command('types')
    .description('registered task names')
    .action(async (_o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.typesCommand(ctx));
    });

  program
    .command('health')
    .description('health checks against their thresholds (exit 1 unless the runtime is ok and no check is at error)')
    .action(async (_o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.healthCommand(ctx));
    });

  program
    .command('maint')
    .description('enqueue a maintenance task: cleanup-runs | cleanup-temp-files | health-check | log-statistics')
    .argument('<name>', 'maintenance task')
    .option('--max-age-hours <hours>', 'age threshold of the cleanup tasks (default 24)')
    .option('-i, --input <json>', 'other input fields as JSON')
    .option('-w, --wait', 'wait for the result and print it')
    .action(async (name: string, o, cmd: Command) => {
      const { ctx, mod } = await remote(cmd);
      setExit(await mod.maintCommand(ctx, name, o));
    });

  program
    .command('advise [task]')
    .description('advice for a task from its measured history (from the server), or which pattern fits the traits given as flags')
    .option('--recurring', 'it runs on a timetable')
    .option('--streaming', 'its output is watched while it runs')
    .option('--duration <duration>', "expected duration, e.g. '2m'")
    .option('--count <n>', 'how many are started together')
    .option('--no-result', 'nobody waits for the result')
    .option('--high-frequency', 'started many times a minute')
    .action(async (task: string | undefined, o, cmd: Command) => {
      if (task !== undefined) {
        // Trait flags describe a task not written yet; with a name the advice comes from its history instead.
        const flags = ['recurring', 'streaming', 'duration', 'count', 'highFrequency'].filter((k) => o[k] !== undefined);
        if (o.result === false) flags.push('no-result');
        if (flags.length > 0) {
          throw new TroupeError(ErrorCodes.INVALID_OPTION, `give either a task name (advice from its measured history) or trait flags, not both: ${task} with --${flags.map(kebab).join(', --')}`);
        }
        const { ctx, mod } = await remote(cmd);
        setExit(await mod.adviseTaskCommand(ctx, task));
        return;
      }
      const { adviseCommand } = await import('./commands/advise.ts');
      const g = globals(cmd);
      setExit(adviseCommand({ ...o, json: g.json }, styleFor(g, process.stdout)));
    });

  program
    .command('repl')
    .description('the supervisor console: attached to --url, or embedded with --config')
    .option('-c, --config <file>', 'start an embedded runtime from this config instead of attaching')
    .option('--store <store>', 'with --config: memory | sqlite:PATH | postgres:URL')
    .action(async (o, cmd: Command) => {
      const { replCommand } = await import('./commands/repl.ts');
      const g = globals(cmd);
      setExit(await replCommand({ ...o, ...(g.url ? { url: g.url } : {}), ...(g.token ? { token: g.token } : {}), color: g.color !== false }));
    });

  program.addOption(new Option('--debug', 'print stack traces of unexpected errors').hideHelp());
  // A closed stdout/stderr (`| head`) ends a command quietly with 141. `serve` and `repl` decide themselves: a
  // server keeps serving without its log reader, and the REPL leaves as on Ctrl-D, closing an embedded runtime.
  program.hook('preAction', (_program, action) => {
    if (action.name() === 'serve' || action.name() === 'repl') return;
    onClosedOutput([process.stdout, process.stderr], () => process.exit(ExitCodes.closedOutput));
  });
  return program;
}

/**
 * Why: commander's own refusals (an unknown command or option, a missing argument, a value its parser refuses)
 * are usage mistakes like the others, so they read the same: one line, `error TROUPE_ERR_INVALID_OPTION: …`.
 */
function usageError(text: string): string {
  const message = text.trim().replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ');
  return `error ${ErrorCodes.INVALID_OPTION}: ${message} (see troupe --help)`;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function portOf(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535) {
    throw new InvalidArgumentError(`a port is an integer from 0 to 65535, got ${value}`);
  }
  return n;
}

/** Runs the command line and resolves with the exit code (it never calls process.exit itself). */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  let code: number = ExitCodes.ok;
  const program = createProgram((c) => (code = c));
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCodes.ok : ExitCodes.usage;
    process.stderr.write(`${formatError(error)}\n`);
    if (program.opts().debug && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return exitCodeOf(error);
  }
}
