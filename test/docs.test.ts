/**
 * The reference docs name what the code has: every HTTP route is in docs/http.md's route table (and every row of
 * that table is a route), every `troupe` subcommand and option is in docs/cli.md, and so is every REPL command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRuntime } from '../src/runtime.ts';
import { createServer } from '../src/http/server.ts';
import { createProgram } from '../src/cli/index.ts';
import { COMMANDS } from '../src/repl/commands.ts';

const doc = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');

/** `METHOD /path` of every route, read from fastify's route tree (HEAD left out: every GET answers it). */
function routesOf(tree: string): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([\s│├└─]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack[depth] = m[2]!;
    stack.length = depth + 1;
    const path = stack.slice(1).join('');
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') out.add(`${method} ${path}`);
  }
  return out;
}

test('docs/http.md lists every route, and every route it lists exists', async () => {
  const rt = await createRuntime({ store: 'memory' });
  const app = createServer(rt, {});
  try {
    await app.ready();
    const served = routesOf(app.printRoutes({ commonPrefix: false }));
    assert.ok(served.has('POST /api/tasks') && served.has('GET /api/tasks/:id/output'), `route tree not read: ${[...served].join(', ')}`);
    const documented = new Set([...doc('http.md').matchAll(/^\| `(GET|POST|DELETE|PUT|PATCH)` \| `([^`]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`));
    assert.deepEqual([...served].filter((r) => !documented.has(r)), [], 'routes missing from the table in docs/http.md');
    assert.deepEqual([...documented].filter((r) => !served.has(r)), [], 'rows of docs/http.md that are no route');
  } finally {
    await app.close();
    await rt.close();
  }
});

test('docs/cli.md names every troupe subcommand and option', () => {
  const cli = doc('cli.md');
  const program = createProgram(() => {});
  const missing: string[] = [];
  const optionNamed = (o: { long?: string | undefined; short?: string | undefined }) =>
    (o.long !== undefined && cli.includes(o.long)) || (o.short !== undefined && new RegExp(`${o.short}[\\s\`\\]]`).test(cli));
  for (const o of program.options) if (!optionNamed(o)) missing.push(`troupe ${o.flags}`);
  for (const cmd of program.commands) {
    const name = cmd.name();
    if (name === 'help') continue;
    if (!cli.includes(`troupe ${name}`)) missing.push(`troupe ${name}`);
    for (const o of cmd.options) if (o.long !== '--help' && !optionNamed(o)) missing.push(`troupe ${name} ${o.flags}`);
  }
  assert.deepEqual(missing, []);
});

test('docs/cli.md names every REPL command', () => {
  const cli = doc('cli.md');
  const missing = COMMANDS.map((c) => c.name).filter((name) => !new RegExp(`\`${name.replace(/[.?]/g, '\\$&')}[\\s\`]`).test(cli));
  assert.deepEqual(missing, []);
});
