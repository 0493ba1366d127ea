/**
 * `troupe repl`: the supervisor console, attached to a running server (`--url`, TROUPE_URL) or, with `--config`,
 * to an embedded runtime started from that config (closed when the console ends).
 */
import type { Backend } from '../../repl/backend.ts';
import { DEFAULT_URL } from '../../repl/client.ts';
import { createHttpBackend } from '../../repl/http-backend.ts';
import { createLocalBackend } from '../../repl/local-backend.ts';
import { startRepl } from '../../repl/repl.ts';
import { createStderrLogger, openRuntime } from '../config-file.ts';
import { ErrorCodes, TroupeError } from '../../errors.ts';
import { ExitCodes, onClosedOutput } from '../errors.ts';

export interface ReplCommandOptions {
  url?: string;
  token?: string;
  config?: string;
  store?: string;
  color?: boolean;
}

/** Why: one console, two ways to reach a runtime, chosen by the flags. */
export async function replCommand(o: ReplCommandOptions): Promise<number> {
  if (o.store !== undefined && o.config === undefined) {
    // Attached, the server's store is used: a --store here would be ignored without a word.
    throw new TroupeError(ErrorCodes.INVALID_OPTION, '--store needs --config (it is the store of an embedded runtime); attached to a server, the server\'s store is used');
  }
  // startRepl ends on a closed stdout itself; this only notes it for the exit code. A closed stderr (the embedded
  // runtime's warnings) is no reason to leave.
  let outputClosed = false;
  onClosedOutput([process.stdout], () => (outputClosed = true));
  onClosedOutput([process.stderr], () => {});
  let backend: Backend;
  if (o.config !== undefined) {
    const { rt, loaded } = await openRuntime({ config: o.config, store: o.store, requireConfig: true, logger: createStderrLogger() });
    backend = createLocalBackend(rt, { target: `embedded runtime (${loaded?.file}, store ${rt.liveness().store})` });
  } else {
    const token = o.token ?? (process.env.TROUPE_TOKEN || undefined);
    backend = createHttpBackend({ url: o.url ?? (process.env.TROUPE_URL || DEFAULT_URL), ...(token ? { token } : {}) });
  }
  try {
    await startRepl({ backend, ...(o.color === false ? { color: false } : {}) });
  } finally {
    await backend.close();
  }
  return outputClosed ? ExitCodes.closedOutput : ExitCodes.ok;
}
