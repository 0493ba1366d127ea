import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ErrorCodes, isTroupeError, type TroupeError } from '../src/errors.ts';
import { resolveOptions } from '../src/options.ts';
import { assertJson, normalizeProgress, Registry, type ResolvedTask, type TaskDefinition } from '../src/registry.ts';

const BASE = path.resolve('/srv/app');
const defaults = resolveOptions({ store: 'memory', timeout: '1m', killGrace: '2s', retry: { attempts: 2 } });

function registry(): Registry {
  return new Registry(defaults, BASE);
}

function hasCode(code: string) {
  return (error: unknown) => {
    assert.ok(isTroupeError(error), `a TroupeError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

function asCommand(task: ResolvedTask) {
  assert.equal(task.kind, 'command');
  return task as Extract<ResolvedTask, { kind: 'command' }>;
}

describe('Registry: the three kinds', () => {
  it('resolves a handler from a URL, an absolute path, a relative path and a file: string', () => {
    const reg = registry();
    const url = new URL('file:///srv/app/tasks/a.ts');
    assert.deepEqual(
      [
        reg.register('u', { handler: url }),
        reg.register('abs', { handler: '/opt/tasks/b.ts' }),
        reg.register('rel', { handler: './tasks/c.ts' }),
        reg.register('str', { handler: 'file:///x/d.ts' }),
      ].map((t) => (t.kind === 'handler' ? t.handler : t.kind)),
      [url.href, pathToFileURL('/opt/tasks/b.ts').href, pathToFileURL(path.join(BASE, 'tasks/c.ts')).href, 'file:///x/d.ts'],
    );
  });

  it('resolves a relative handler against the per-registration baseDir (a config file’s folder)', () => {
    const reg = registry();
    const task = reg.register('h', { handler: 'tasks/h.ts' }, { baseDir: '/etc/troupe' });
    assert.equal(task.kind === 'handler' && task.handler, pathToFileURL('/etc/troupe/tasks/h.ts').href);
  });

  it('refuses a handler that is not a file', () => {
    const reg = registry();
    assert.throws(() => reg.register('h', { handler: new URL('https://example.com/x.js') }), hasCode(ErrorCodes.INVALID_OPTION));
    assert.throws(() => reg.register('h', { handler: '' }), hasCode(ErrorCodes.INVALID_OPTION));
    assert.throws(() => reg.register('h', { handler: 42 } as never), hasCode(ErrorCodes.INVALID_OPTION));
  });

  it('resolves a command with fixed args, cwd against baseDir and env', () => {
    const reg = registry();
    const task = asCommand(reg.register('report', { command: 'python3', args: ['-m', 'reports.daily'], cwd: 'jobs', env: { PYTHONUNBUFFERED: '1' } }));
    assert.equal(task.command, 'python3');
    assert.deepEqual(task.args(undefined), ['-m', 'reports.daily']);
    assert.equal(task.cwd, path.join(BASE, 'jobs'));
    assert.deepEqual({ ...task.env }, { PYTHONUNBUFFERED: '1' });
    const bare = asCommand(reg.register('bare', { command: 'true' }));
    assert.deepEqual(bare.args(undefined), []);
    assert.equal(bare.cwd, BASE, 'a command runs in baseDir by default');
    assert.equal('env' in bare, false);
  });

  it('builds argv from the input with an args function; a fixed argv cannot be mutated through the result', () => {
    const reg = registry();
    const task = asCommand(reg.register('r', { command: 'echo', args: (input: { date: string }) => ['--date', input.date] }));
    assert.deepEqual(task.args({ date: '2026-11-23' }), ['--date', '2026-11-23']);
    const fixed = asCommand(reg.register('f', { command: 'echo', args: ['a'] }));
    fixed.args(undefined).push('injected');
    assert.deepEqual(fixed.args(undefined), ['a']);
  });

  it('resolves an inline task', () => {
    const reg = registry();
    const run = async () => 1;
    const task = reg.register('inline', { run });
    assert.equal(task.kind, 'inline');
    assert.equal(task.kind === 'inline' && task.run, run);
  });

  it('fills common settings from the runtime defaults and takes overrides', () => {
    const reg = registry();
    const inherited = reg.register('a', { run: () => 1 });
    assert.equal(inherited.timeoutMs, 60_000);
    assert.equal(inherited.killGraceMs, 2000);
    assert.equal(inherited.retry.attempts, 2);
    assert.equal(inherited.priority, 0);
    assert.deepEqual(inherited.output, defaults.output);
    assert.equal(inherited.concurrency, undefined);
    assert.equal(inherited.builtin, false);
    const own = reg.register('b', {
      run: () => 1, timeout: '5s', killGrace: 100, retry: { attempts: 5, backoff: 'fixed' }, priority: -3,
      concurrency: 4, output: { maxLines: 5, maxBytes: '1KB' }, description: 'b does b',
    }, { builtin: true });
    assert.equal(own.timeoutMs, 5000);
    assert.equal(own.killGraceMs, 100);
    assert.equal(own.retry.attempts, 5);
    assert.equal(own.retry.backoff, 'fixed');
    assert.equal(own.priority, -3);
    assert.equal(own.concurrency, 4);
    assert.deepEqual(own.output, { maxLines: 5, maxBytes: 1000 });
    assert.equal(own.description, 'b does b');
    assert.equal(own.builtin, true);
  });

  it("holds a task's output.maxLines to the runtime's (what the store keeps per task at most)", () => {
    const reg = registry();
    const above = reg.register('a', { run: () => 1, output: { maxLines: defaults.output.maxLines + 1, maxBytes: 7 } });
    assert.deepEqual(above.output, { maxLines: defaults.output.maxLines, maxBytes: 7 });
  });
});

describe('Registry: refusals', () => {
  it('wants exactly one of handler, command or run', () => {
    const reg = registry();
    const bad: unknown[] = [{}, { timeout: 5 }, { handler: './a.ts', command: 'x' }, { command: 'x', run: () => 1 }, { handler: './a.ts', command: 'x', run: () => 1 }, null, 'python3'];
    for (const definition of bad) assert.throws(() => reg.register('t', definition as TaskDefinition), hasCode(ErrorCodes.INVALID_OPTION), JSON.stringify(definition));
    assert.deepEqual(reg.names(), []);
  });

  it('refuses bad names', () => {
    const reg = registry();
    for (const name of ['', '-lead', '.hidden', 'a b', 'a/b', '../x', 'x'.repeat(129), 'tab\t', 'ünï', 42, undefined]) {
      assert.throws(() => reg.register(name as string, { run: () => 1 }), hasCode(ErrorCodes.INVALID_OPTION), String(name));
    }
    for (const name of ['a', 'hash', 'reports.daily', 'a_b-c:d', 'x'.repeat(128), '9lives']) reg.register(name, { run: () => 1 });
  });

  it('refuses a duplicate name with TROUPE_ERR_DUPLICATE_TASK and keeps the first', () => {
    const reg = registry();
    const first = reg.register('t', { run: () => 1 });
    assert.throws(() => reg.register('t', { command: 'x' }), hasCode(ErrorCodes.DUPLICATE_TASK));
    assert.equal(reg.get('t'), first);
  });

  it('refuses unknown keys, bad settings and an own __proto__ in a definition', () => {
    const reg = registry();
    const bad: unknown[] = [
      { run: () => 1, retries: 3 },
      { run: () => 1, timeout: 'soon' },
      { run: () => 1, concurrency: 0 },
      { run: () => 1, priority: 1.5 },
      { run: () => 1, description: 5 },
      { run: () => 1, output: { maxBytes: 0 } },
      { run: () => 1, input: { parse: () => 1 } },
      { run: 'not a function' },
      { command: '' },
      { command: 'x', args: 'a b' },
      { command: 'x', args: ['a\0b'] },
      { command: 'x', args: [1] },
      { command: 'x', cwd: 5 },
      { command: 'x', env: { A: 1 } },
      // what exec() cannot take is refused here, not as a failed run of each task (TROUPE_ERR_INVALID_OPTION then)
      { command: 'tr\0ue' },
      { command: 'x', cwd: 'jobs\0' },
      { command: 'x', env: { A: 'a\0b' } },
      { command: 'x', env: { 'A\0': 'a' } },
      { command: 'x', env: { 'A=B': 'c' } },
      { command: 'x', env: { '': 'c' } },
      { handler: './a.ts', cwd: '/tmp' },
      Object.assign(JSON.parse('{"__proto__": {"polluted": 1}}'), { run: () => 1 }),
    ];
    for (const definition of bad) assert.throws(() => reg.register('t', definition as TaskDefinition), hasCode(ErrorCodes.INVALID_OPTION), String(Object.keys(definition as object)));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('require() of an unknown or non-string name is TROUPE_ERR_UNKNOWN_TASK', () => {
    const reg = registry();
    reg.register('known', { run: () => 1 });
    assert.throws(() => reg.require('unknown'), hasCode(ErrorCodes.UNKNOWN_TASK));
    assert.throws(() => reg.require(undefined), hasCode(ErrorCodes.UNKNOWN_TASK));
    assert.throws(() => reg.require({ toString: () => 'known' }), hasCode(ErrorCodes.UNKNOWN_TASK));
    assert.equal(reg.require('known').name, 'known');
  });

  it('unregister removes a name; get/names/list follow', () => {
    const reg = registry();
    reg.register('a', { run: () => 1 });
    reg.register('b', { run: () => 1 });
    assert.deepEqual(reg.names(), ['a', 'b']);
    assert.equal(reg.unregister('a'), true);
    assert.equal(reg.unregister('a'), false);
    assert.equal(reg.get('a'), undefined);
    assert.deepEqual(reg.list().map((t) => t.name), ['b']);
  });

  it('capped() lists the names with a concurrency cap and follows register and unregister', () => {
    const reg = registry();
    reg.register('free', { run: () => 1 });
    assert.deepEqual(reg.capped(), []);
    reg.register('two', { run: () => 1, concurrency: 2 });
    reg.register('adaptive', { run: () => 1, concurrency: { adaptive: true } });
    const capped = reg.capped();
    assert.deepEqual(capped.map((t) => t.name), ['two', 'adaptive']);
    assert.equal(reg.capped(), capped, 'the same array while nothing changes');
    assert.ok(Object.isFrozen(capped));
    reg.unregister('two');
    assert.deepEqual(reg.capped().map((t) => t.name), ['adaptive']);
    reg.register('one', { run: () => 1, concurrency: 1 });
    assert.deepEqual(reg.capped().map((t) => t.name), ['adaptive', 'one']);
  });
});

describe('Registry: input', () => {
  it('turns a throwing args function into TROUPE_ERR_INVALID_INPUT with the cause', () => {
    const reg = registry();
    const boom = new Error('no date');
    const task = asCommand(reg.register('r', { command: 'echo', args: () => { throw boom; } }));
    assert.throws(() => task.args({}), (error: unknown) => {
      hasCode(ErrorCodes.INVALID_INPUT)(error);
      assert.equal((error as TroupeError).cause, boom);
      return true;
    });
  });

  it('refuses an argv with NUL bytes or non-strings built from the input', () => {
    const reg = registry();
    const task = asCommand(reg.register('r', { command: 'echo', args: (input: { v: unknown }) => [input.v as string] }));
    assert.throws(() => task.args({ v: 'a\0rm -rf' }), hasCode(ErrorCodes.INVALID_INPUT));
    assert.throws(() => task.args({ v: 5 }), hasCode(ErrorCodes.INVALID_INPUT));
    const notArray = asCommand(reg.register('n', { command: 'echo', args: (() => '--flag') as never }));
    assert.throws(() => notArray.args({}), hasCode(ErrorCodes.INVALID_INPUT));
  });

  it('validates with a Standard Schema (zod) and returns the parsed value', async () => {
    const reg = registry();
    const schema = z.object({ text: z.string().min(1), times: z.number().int().default(1) });
    const task = reg.register('hash', { run: () => 1, input: schema });
    assert.deepEqual(await reg.validateInput(task, { text: 'abc' }), { text: 'abc', times: 1 });
    await assert.rejects(reg.validateInput(task, { text: '', times: 1.5 }), (error: unknown) => {
      hasCode(ErrorCodes.INVALID_INPUT)(error);
      const issues = (error as TroupeError).details?.issues as Array<{ message: string; path: string }>;
      assert.deepEqual(issues.map((i) => i.path).sort(), ['text', 'times']);
      assert.ok(issues.every((i) => typeof i.message === 'string' && i.message.length > 0));
      return true;
    });
    await assert.rejects(reg.validateInput(task, 'not an object'), hasCode(ErrorCodes.INVALID_INPUT));
  });

  it('refuses input that JSON cannot carry: cycles, BigInt, functions, symbols — also nested', async () => {
    const reg = registry();
    const task = reg.register('t', { run: () => 1 });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: unknown[] = [cyclic, 10n, { n: 10n }, () => 1, Symbol('s'), { f: () => 1 }, [1, () => 2], { deep: { s: Symbol('s') } }];
    for (const input of bad) await assert.rejects(reg.validateInput(task, input), hasCode(ErrorCodes.INVALID_INPUT), String(typeof input));
    for (const input of [undefined, null, 0, 'x', [1, 'a'], { a: { b: [null, true] } }, { d: new Date(0) }]) {
      assert.deepEqual(await reg.validateInput(task, input), input);
    }
  });

  it('assertJson names the task in a coded error', () => {
    assert.throws(() => assertJson(10n, 'hash'), hasCode(ErrorCodes.INVALID_INPUT));
  });
});

describe('normalizeProgress', () => {
  it('accepts fractions (clamped) and done/total, and ignores nonsense', () => {
    assert.deepEqual(normalizeProgress(0.5), { fraction: 0.5 });
    assert.deepEqual(normalizeProgress(2), { fraction: 1 });
    assert.deepEqual(normalizeProgress(-1), { fraction: 0 });
    assert.deepEqual(normalizeProgress({ done: 3, total: 4 }), { fraction: 0.75, done: 3, total: 4 });
    assert.deepEqual(normalizeProgress({ fraction: 0.25 }), { fraction: 0.25 });
    for (const v of [NaN, Infinity, { done: 1, total: 0 }, { done: 'a', total: 2 }, 'half', null, undefined]) assert.equal(normalizeProgress(v), undefined, String(v));
  });
});
