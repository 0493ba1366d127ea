// Config files as a user writes them, loaded by the real binary from scratch folders: CommonJS and ES module
// packages, mistakes that must name the file, SQLite paths taken from the config's folder, the `http` block's keys,
// and `run` saying that no config was found.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createRuntimeFromConfig, type LoadedConfig, type ScheduleConfig } from '../../src/config.ts';
import { ErrorCodes, isTroupeError } from '../../src/errors.ts';
import { killAll, ROOT, startTroupe, troupe } from './child.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'troupe-config-'));

after(async () => {
  await killAll();
  rmSync(tmp, { recursive: true, force: true });
});

/** A folder with these files (a `package.json` object is written as JSON). */
function folder(name: string, files: Record<string, string | object>): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) writeFileSync(path.join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

/** A config as a user writes it: it imports troupe by its package name, with an inline and a handler task. */
const CONFIG = [
  "import { defineConfig } from 'troupe';",
  "export default defineConfig({ store: 'memory', tasks: { inl: { run: async (i: any) => ({ i }) }, hdl: { handler: './double.ts' } } });",
  '',
].join('\n');
const HANDLER = "import { defineTask } from 'troupe';\nexport default defineTask(async (i: { n: number }) => ({ doubled: i.n * 2 }));\n";

/** A package that has troupe installed (node_modules/troupe is this repository), with the config and handler above. */
function app(name: string, packageJson: object): string {
  const dir = folder(name, { 'package.json': packageJson, 'troupe.config.ts': CONFIG, 'double.ts': HANDLER });
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(ROOT, path.join(dir, 'node_modules', 'troupe'), 'dir');
  return dir;
}

describe('loading troupe.config.ts', () => {
  it('loads in a CommonJS package (no "type": "module", as npm init writes) and in an ES module package, importing troupe', async () => {
    const cjs = app('cjs', { name: 'myapp', version: '1.0.0' });
    const esm = app('esm', { type: 'module' });
    // The CommonJS runs compile troupe's sources as CommonJS: a coverage run must not merge that second compilation
    // of each file with the first (c8 merges by file, and the two disagree on every range), so they report none.
    const env = (cwd: string) => (cwd === cjs ? { NODE_V8_COVERAGE: undefined } : {});
    const runs = await Promise.all([cjs, esm].flatMap((cwd) => [
      troupe(['run', 'inl', '--input', '{"z":1}'], env(cwd), undefined, { cwd }),
      troupe(['run', 'hdl', '--input', '{"n":21}'], env(cwd), undefined, { cwd }),
    ]));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const [cjsInline, cjsHandler, esmInline, esmHandler] = runs.map((r) => JSON.parse(r.stdout));
    assert.deepEqual(cjsInline, { i: { z: 1 } });
    assert.deepEqual(cjsHandler, { doubled: 42 });
    assert.deepEqual(esmInline, { i: { z: 1 } });
    assert.deepEqual(esmHandler, { doubled: 42 });
  });

  it('a config that does not compile, has no default export or exports no object is one line naming the file; exit 2', async () => {
    const dir = folder('mistakes', {
      'package.json': { name: 'myapp' },
      'syntax.ts': 'export default {\n',
      'nodefault.ts': 'export const tasks = {};\n',
      'number.ts': 'export default 42;\n',
      'esm-nodefault.mts': 'export const tasks = {};\n',
    });
    const file = (f: string) => path.join(dir, f);
    const [syntax, noDefault, number, esmNoDefault] = await Promise.all(
      ['syntax.ts', 'nodefault.ts', 'number.ts', 'esm-nodefault.mts'].map((f) => troupe(['run', 'x', '--config', f], {}, undefined, { cwd: dir })),
    );
    for (const r of [syntax, noDefault, number, esmNoDefault]) {
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /cycle/);
    }
    assert.match(syntax.stderr, new RegExp(`^error TROUPE_ERR_INVALID_OPTION: Config file ${file('syntax.ts')} could not be loaded: .*Expected identifier but found end of file`));
    assert.equal(noDefault.stderr, `error TROUPE_ERR_INVALID_OPTION: Config file ${file('nodefault.ts')} has no default export: write \`export default defineConfig({ … })\`\n`);
    assert.equal(esmNoDefault.stderr, `error TROUPE_ERR_INVALID_OPTION: Config file ${file('esm-nodefault.mts')} has no default export: write \`export default defineConfig({ … })\`\n`);
    assert.match(number.stderr, new RegExp(`^error TROUPE_ERR_INVALID_OPTION: Expected \`the default export of ${file('number.ts')}\` to be an object .*got \`42\``));
  });

  it('refuses an unknown key under `http` (a misspelt token must not serve the API without auth)', async () => {
    const dir = folder('http-typo', {
      'package.json': { type: 'module' },
      'troupe.config.ts': "export default { store: 'memory', http: { port: 0, Token: 'secret-token-0123456789abcdef' }, tasks: { a: { run: async () => 1 } } };\n",
    });
    const p = startTroupe(['serve'], {}, { cwd: dir });
    const served = await Promise.race([p.waitFor(/troupe serving/, { from: 0 }).then(() => true, () => false), p.exited.then(() => false)]);
    if (served) p.child.kill('SIGTERM');
    assert.equal(served, false, 'it must not serve');
    const { code } = await p.exited;
    assert.equal(code, 2, p.stdout);
    assert.match(p.stderr, /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.Token` to be one of the known options \(host, port, token, bodyLimit, logger, heartbeatMs, processMetrics, stallMs, admission\)/);
  });

  it('takes the server options in `http` (admission, stallMs, processMetrics…) and hands them to the server', async () => {
    const dir = folder('http-options', {
      'package.json': { type: 'module' },
      'troupe.config.ts': "export default { store: 'memory', http: { port: 0, processMetrics: false, stallMs: 60000, heartbeatMs: 5000, admission: { intervalMs: 500 } }, tasks: { a: { run: async () => 1 } } };\n",
    });
    const p = startTroupe(['serve'], {}, { cwd: dir });
    const [, url] = (await p.waitFor(/troupe serving (\S+)/, { from: 0 })) as RegExpMatchArray;
    const metrics = await (await fetch(`${url}/metrics`)).text();
    p.child.kill('SIGTERM');
    assert.equal((await p.exited).code, 0, p.stderr);
    // prom-client's process metrics are off; troupe's own are there.
    assert.match(metrics, /^troupe_runtime_up 1$/m);
    assert.doesNotMatch(metrics, /process_cpu_seconds_total/);
  });

  it('refuses a bad server option in `http` before the runtime starts: nothing is saved', async () => {
    const bad: [string, RegExp][] = [
      ['stallMs: -5', /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.stallMs` to be/],
      ["admission: { intervalMs: 50 }", /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.admission\.intervalMs` to be/],
      ["admission: { every: 500 }", /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.admission\.every` to be one of the known options/],
      ["processMetrics: 'no'", /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.processMetrics` to be a boolean/],
      ["bodyLimit: 'huge'", /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.bodyLimit` to be/],
      ["token: 'short'", /^error TROUPE_ERR_INVALID_OPTION: Expected `http\.token` to be a string of at least/],
      ["host: '0.0.0.0'", /^error TROUPE_ERR_INVALID_OPTION: Refusing to serve the HTTP API on `0\.0\.0\.0` without a token/],
    ];
    for (const [i, [option, message]] of bad.entries()) {
      const dir = folder(`http-bad-${i}`, {
        'package.json': { type: 'module' },
        'troupe.config.ts': `export default { store: 'sqlite:./q.db', http: { port: 0, ${option} }, tasks: { a: { run: async () => 1 } }, schedules: { hourly: { task: 'a', every: '1h' } } };\n`,
      });
      const p = startTroupe(['serve'], { TROUPE_TOKEN: undefined }, { cwd: dir });
      const served = await Promise.race([p.waitFor(/troupe serving/, { from: 0 }).then(() => true, () => false), p.exited.then(() => false)]);
      if (served) p.child.kill('SIGTERM');
      assert.equal(served, false, `${option}: it must not serve`);
      assert.equal((await p.exited).code, 2, `${option}: ${p.stderr}`);
      assert.match(p.stderr, message, option);
      assert.equal(p.stderr.trim().split('\n').length, 1, p.stderr);
      // The runtime never started: no store file, so no schedule of the config was saved.
      assert.equal(existsSync(path.join(dir, 'q.db')), false, `${option}: the store was opened`);
    }
  });
});

describe('mistakes in the schedules of a config', () => {
  it('`troupe serve` refuses a bad cron with exit 2 and one line naming the schedule', async () => {
    const dir = folder('bad-cron', {
      'package.json': { type: 'module' },
      'troupe.config.ts': "export default { store: 'memory', http: { port: 0 }, tasks: { a: { run: async () => 1 } }, schedules: { hourly: { task: 'a', every: '1h' }, nightly: { task: 'a', cron: '0 25 * * *' } } };\n",
    });
    const p = startTroupe(['serve'], {}, { cwd: dir });
    const served = await Promise.race([p.waitFor(/troupe serving/, { from: 0 }).then(() => true, () => false), p.exited.then(() => false)]);
    if (served) p.child.kill('SIGTERM');
    assert.equal(served, false, 'it must not serve');
    assert.equal((await p.exited).code, 2, p.stderr);
    assert.match(p.stderr, /^error TROUPE_ERR_INVALID_OPTION: Expected `schedules\.nightly\.cron` to be a cron expression/);
    assert.equal(p.stderr.trim().split('\n').length, 1, p.stderr);
  });

  it('a config task named like a built-in one is a usage mistake: exit 2, one line naming it', async () => {
    const dir = folder('builtin-name', {
      'package.json': { type: 'module' },
      'troupe.config.ts': "export default { store: 'memory', tasks: { 'cleanup-runs': { run: async () => 1 } } };\n",
    });
    const p = await troupe(['run', 'cleanup-runs'], {}, undefined, { cwd: dir });
    assert.equal(p.code, 2, p.stderr);
    assert.match(p.stderr, /^error TROUPE_ERR_DUPLICATE_TASK: .*cleanup-runs/);
    assert.equal(p.stderr.trim().split('\n').length, 1, p.stderr);
  });

  it('every mistake names its schedule, and none of the schedules is saved', async () => {
    const db = `sqlite:${path.join(tmp, 'schedule-mistakes.db')}`;
    const tasks = { tick: { run: () => 1 } };
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ task: 'tick', cron: 'not a cron' }, /^Expected `schedules\.b\.cron` to be a cron expression/],
      [{ task: 'tick', every: 'soon' }, /^Expected `schedules\.b\.every` to be a duration/],
      [{ task: 'tick' }, /^Expected `schedules\.b` to be an object with exactly one of `cron` and `every`/],
      [{ task: 'tick', every: '1h', overlap: 'never' }, /^Expected `schedules\.b\.overlap`/],
      [{ task: 'tick', every: '1h', bogus: 1 }, /^Expected `schedules\.b\.bogus` to be one of the known options \(task, input, cron, every, timezone, overlap, id\)/],
      [{ task: 'tock', every: '1h' }, /^schedules\.b: No task named `tock` is registered/],
    ];
    for (const [b, message] of bad) {
      const loaded: LoadedConfig = { config: { store: db, maintenance: false, tasks, schedules: { a: { task: 'tick', every: '1h' }, b: b as unknown as ScheduleConfig } }, baseDir: tmp, file: path.join(tmp, 'troupe.config.ts') };
      await assert.rejects(createRuntimeFromConfig(loaded), (e: unknown) => isTroupeError(e) && e.code === ErrorCodes.INVALID_OPTION && message.test(e.message), JSON.stringify(b));
    }
    const rt = await createRuntimeFromConfig({ config: { store: db, maintenance: false, tasks }, baseDir: tmp, file: path.join(tmp, 'troupe.config.ts') }, {}, { schedules: false });
    assert.deepEqual(await rt.schedules(), [], 'schedule `a`, written before the bad one, was not saved');
    await rt.close();
  });
});

describe('SQLite paths in a config', () => {
  it('resolve against the config file\'s folder, not the folder the command is typed in (bare path and default store)', async () => {
    const bare = folder('store-bare', { 'package.json': { type: 'module' }, 'troupe.config.ts': "export default { store: './bare.db', tasks: { a: { run: async () => 1 } } };\n" });
    const prefixed = folder('store-prefixed', { 'package.json': { type: 'module' }, 'troupe.config.ts': "export default { store: 'sqlite:./pre.db', tasks: { a: { run: async () => 1 } } };\n" });
    const none = folder('store-default', { 'package.json': { type: 'module' }, 'troupe.config.ts': 'export default { tasks: { a: { run: async () => 1 } } };\n' });
    const elsewhere = folder('elsewhere', {});
    const results = await Promise.all(
      [bare, prefixed, none].map((dir) => troupe(['repl', '--config', path.relative(elsewhere, path.join(dir, 'troupe.config.ts'))], { TROUPE_REPL_HISTORY: path.join(tmp, 'history') }, 'exit\n', { cwd: elsewhere })),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(path.join(bare, 'bare.db')), 'bare path next to the config');
    assert.ok(existsSync(path.join(prefixed, 'pre.db')), 'sqlite: path next to the config');
    assert.ok(existsSync(path.join(none, '.troupe', 'troupe.db')), 'default store next to the config');
    assert.ok(!existsSync(path.join(elsewhere, 'bare.db')) && !existsSync(path.join(elsewhere, '.troupe')), 'nothing in the current folder');
  });
});

describe('troupe run without a config', () => {
  it('says that no config file was found when the task is unknown', async () => {
    const empty = folder('no-config', {});
    const r = await troupe(['run', 'hash', '--input', '{"text":"abc"}'], {}, undefined, { cwd: empty });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `error TROUPE_ERR_UNKNOWN_TASK: No task named \`hash\` is registered — no config file was found in ${empty}: pass --config FILE or create ./troupe.config.ts\n`);
  });
});

describe('the schedules a config defines', () => {
  it('a schedule deleted from the config is removed when the config is applied again; others stay', async () => {
    const db = `sqlite:${path.join(tmp, 'schedules.db')}`;
    const tasks = { tick: { run: () => 1 } };
    const apply = async (schedules: Record<string, ScheduleConfig> | undefined, options: { schedules?: boolean } = {}) => {
      const loaded: LoadedConfig = { config: { store: db, maintenance: false, tasks, ...(schedules ? { schedules } : {}) }, baseDir: tmp, file: path.join(tmp, 'troupe.config.ts') };
      const rt = await createRuntimeFromConfig(loaded, {}, options);
      return rt;
    };
    let rt = await apply({ a: { task: 'tick', every: '1h' }, b: { task: 'tick', every: '1h' } });
    // Made at run time (API, REPL): not the config's.
    await rt.schedule('tick', { every: '2h', id: 'by-hand' });
    await rt.close();
    // `troupe run` leaves the config's schedules alone.
    rt = await apply(undefined, { schedules: false });
    assert.deepEqual((await rt.schedules()).map((s) => s.id).sort(), ['a', 'b', 'by-hand']);
    await rt.close();
    rt = await apply({ a: { task: 'tick', every: '1h' } });
    assert.deepEqual((await rt.schedules()).map((s) => s.id).sort(), ['a', 'by-hand']);
    await rt.close();
    // The whole block deleted: the config now defines none.
    rt = await apply(undefined);
    assert.deepEqual((await rt.schedules()).map((s) => s.id), ['by-hand']);
    await rt.close();
  });

  it('nodes whose configs run different tasks on one store keep each other\'s schedules', async () => {
    const db = `sqlite:${path.join(tmp, 'two-configs.db')}`;
    const open = new Set<Awaited<ReturnType<typeof createRuntimeFromConfig>>>();
    const node = async (tasks: Record<string, { run: () => number }>, schedules: Record<string, ScheduleConfig>) => {
      const rt = await createRuntimeFromConfig({ config: { store: db, maintenance: false, tasks, schedules }, baseDir: tmp, file: path.join(tmp, 'troupe.config.ts') });
      open.add(rt);
      return rt;
    };
    const close = async (...rts: Array<Awaited<ReturnType<typeof node>>>) => {
      for (const rt of rts) open.delete(rt);
      await Promise.all(rts.map((rt) => rt.close()));
    };
    const ids = async (rt: Awaited<ReturnType<typeof node>>) => (await rt.schedules()).map((s) => s.id).sort();
    try {
      // A resizer node and a report node, started together.
      let [resizer, reporter] = await Promise.all([
        node({ resize: { run: () => 1 } }, { sweep: { task: 'resize', every: '1h' } }),
        node({ report: { run: () => 2 } }, { daily: { task: 'report', every: '1d' }, weekly: { task: 'report', every: '7d' } }),
      ]);
      assert.deepEqual(await ids(resizer), ['daily', 'sweep', 'weekly']);
      await close(resizer, reporter);
      // Each restarted alone: neither removes the other's (before, each start removed what its own config lacked).
      resizer = await node({ resize: { run: () => 1 } }, { sweep: { task: 'resize', every: '1h' } });
      assert.deepEqual(await ids(resizer), ['daily', 'sweep', 'weekly']);
      await close(resizer);
      // The report node's config drops `weekly`: it removes that one, and only that one.
      reporter = await node({ report: { run: () => 2 } }, { daily: { task: 'report', every: '1d' } });
      assert.deepEqual(await ids(reporter), ['daily', 'sweep']);
      await close(reporter);
      // And its config schedules are still known as such: dropping `sweep` from the resizer's removes it.
      resizer = await node({ resize: { run: () => 1 } }, {});
      assert.deepEqual(await ids(resizer), ['daily']);
    } finally {
      await close(...open);
    }
  });
});
