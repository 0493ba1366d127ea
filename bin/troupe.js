#!/usr/bin/env node
// The `troupe` command: registers tsx so the TypeScript sources (and config files) load on Node 20 as they are,
// then runs the CLI and exits with its code.
import { register as registerCommonJs } from 'tsx/cjs/api';
import { register } from 'tsx/esm/api';

register();
// Both hooks, as `tsx` itself does: in a package without "type": "module" (what `npm init` writes) a
// `troupe.config.ts` is CommonJS, and tsx's ESM hook hands it to require(), which only the CommonJS hook can compile.
registerCommonJs();
const { main } = await import('../src/cli/index.ts');
const code = await main(process.argv);
process.exitCode = code;
// Idle keep-alive sockets or a stray timer must not hold the process open after the command is done.
setTimeout(() => process.exit(code), 1000).unref();
