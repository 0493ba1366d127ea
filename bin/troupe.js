#!/usr/bin/env node
// The `troupe` command: registers tsx so the TypeScript sources (and config files) load on Node 20 as they are,
// then runs the CLI and exits with its code.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/index.ts');
const code = await main(process.argv);
process.exitCode = code;
// Idle keep-alive sockets or a stray timer must not hold the process open after the command is done.
setTimeout(() => process.exit(code), 1000).unref();
