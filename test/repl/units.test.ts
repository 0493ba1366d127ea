// The REPL's pure parts: completion candidates, the SSE reader, recent-id prefixes, history loading.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createStyle } from '../../src/cli/format.ts';
import { ErrorCodes } from '../../src/errors.ts';
import type { Backend } from '../../src/repl/backend.ts';
import { runLine } from '../../src/repl/commands.ts';
import { createCompleter, type CompletionSource } from '../../src/repl/completer.ts';
import { RecentIds } from '../../src/repl/recent-ids.ts';
import { loadHistory } from '../../src/repl/repl.ts';
import { readSse, type SseEvent } from '../../src/repl/sse.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'troupe-repl-units-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const source: CompletionSource = {
  taskNames: () => ['hash', 'report', 'health-check'],
  ids: () => ['01a2aaaa0000', '01a2bbbb0000', '01a3cccc0000'],
  scheduleIds: () => ['nightly', 'hourly'],
  actors: () => ['orchestrator', 'tracker', 'scheduler', 'executor'],
};
const complete = createCompleter(source);

describe('completer', () => {
  it('completes command names, with a space after a single match', () => {
    assert.deepEqual(complete('ins'), [['inspect '], 'ins']);
    assert.deepEqual(complete('re'), [['retry', 'resume', 'restart'], 're']);
    assert.ok(complete('')[0].includes('tree'));
    assert.deepEqual(complete('zz'), [[], 'zz']);
  });

  it('completes task names after run/enqueue, ids after inspect/tail/cancel/retry', () => {
    assert.deepEqual(complete('run ha'), [['hash '], 'ha']);
    assert.deepEqual(complete('enqueue '), [['hash', 'report', 'health-check'], '']);
    assert.deepEqual(complete('inspect 01a2'), [['01a2aaaa0000', '01a2bbbb0000'], '01a2']);
    assert.deepEqual(complete('tail 01a3'), [['01a3cccc0000 '], '01a3']);
    assert.deepEqual(complete('cancel 01a2b'), [['01a2bbbb0000 '], '01a2b']);
    assert.deepEqual(complete('run hash {'), [[], '{']);
  });

  it('completes states and names after ps, schedules after pause schedule, maintenance and actors', () => {
    assert.deepEqual(complete('ps ru'), [['running '], 'ru']);
    assert.deepEqual(complete('tasks fa'), [['failed '], 'fa']);
    assert.deepEqual(complete('ps h'), [['hash', 'health-check'], 'h']);
    assert.deepEqual(complete('pause sch'), [['schedule '], 'sch']);
    assert.deepEqual(complete('pause schedule n'), [['nightly '], 'n']);
    assert.deepEqual(complete('resume re'), [['report '], 're']);
    assert.deepEqual(complete('maint cleanup'), [['cleanup-runs', 'cleanup-temp-files'], 'cleanup']);
    assert.deepEqual(complete('restart tr'), [['tracker '], 'tr']);
    assert.deepEqual(complete('help ta'), [['tasks', 'tail'], 'ta']);
  });
});

describe('readSse', () => {
  const streamOf = (chunks: string[]) => {
    const bytes = chunks.map((c) => new TextEncoder().encode(c));
    return new ReadableStream<Uint8Array>({
      start(controller) {
        for (const b of bytes) controller.enqueue(b);
        controller.close();
      },
    });
  };
  const collect = async (chunks: string[]) => {
    const out: SseEvent[] = [];
    for await (const e of readSse(streamOf(chunks))) out.push(e);
    return out;
  };

  it('assembles events split anywhere, joins data lines, skips comments, keeps ids', async () => {
    const text = ': hello\n\nevent: output\nid: 3\ndata: {"seq":3,\ndata: "text":"a"}\n\nevent: end\r\ndata: {"state":"succeeded"}\r\n\r\n';
    const whole = await collect([text]);
    assert.deepEqual(whole, [
      { event: 'output', data: '{"seq":3,\n"text":"a"}', id: '3' },
      { event: 'end', data: '{"state":"succeeded"}', id: '3' },
    ]);
    const byteByByte = await collect([...text]);
    assert.deepEqual(byteByByte, whole);
  });

  it('decodes multi-byte characters split across chunks and flushes a last event without a blank line', async () => {
    const bytes = new TextEncoder().encode('data: héllo ✓\n\ndata: last');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const b of bytes) controller.enqueue(Uint8Array.of(b));
        controller.close();
      },
    });
    const out: SseEvent[] = [];
    for await (const e of readSse(stream)) out.push(e);
    assert.deepEqual(out, [
      { event: 'message', data: 'héllo ✓' },
      { event: 'message', data: 'last' },
    ]);
  });
});

describe('RecentIds', () => {
  it('resolves a unique prefix of a recent id and leaves a short or unknown one alone', () => {
    const ids = new RecentIds();
    ids.add('01a2aaaa0000', '01a2bbbb0000');
    ids.add('01a2aaaa0000');
    assert.deepEqual(ids.list(), ['01a2aaaa0000', '01a2bbbb0000']);
    assert.equal(ids.resolve('01a2a'), '01a2aaaa0000');
    assert.equal(ids.resolve('01a'), '01a', 'too short');
    assert.equal(ids.resolve('ffff'), 'ffff');
  });

  it('refuses a prefix several recent ids start with, naming a few of them', () => {
    const ids = new RecentIds();
    ids.add('01a2aaaa0000', '01a2bbbb0000');
    assert.throws(() => ids.resolve('01a2'), {
      code: ErrorCodes.INVALID_OPTION,
      message: '`01a2` is the start of 2 recent task ids (01a2aaaa0000, 01a2bbbb0000) — type more of the id',
    });
    ids.add(...Array.from({ length: 8 }, (_, i) => `01a2cccc000${i}`));
    assert.throws(() => ids.resolve('01a2'), { message: /^`01a2` is the start of 10 recent task ids \((01a2\w+, ){4}01a2\w+, and 5 more\)/ });
  });
});

describe('loadHistory', () => {
  it('reads the lines of earlier sessions and trims the file to the size kept', () => {
    const file = path.join(tmp, 'history');
    writeFileSync(file, 'ps\n\ntree\nhealth\n');
    assert.deepEqual(loadHistory(file, 10), ['ps', 'tree', 'health']);
    assert.deepEqual(loadHistory(file, 2), ['tree', 'health']);
    assert.equal(readFileSync(file, 'utf8'), 'tree\nhealth\n');
    assert.deepEqual(loadHistory(path.join(tmp, 'missing'), 10), []);
  });
});

describe('maint', () => {
  it('refuses an input that is not a JSON object before asking the backend, whichever backend it is', async () => {
    const lines: string[] = [];
    const asked: unknown[] = [];
    const session = {
      backend: { maintenance: async (_name: string, input: unknown) => (asked.push(input), '01a2aaaa00000000000000000000') } as unknown as Backend,
      style: createStyle(false),
      write: (text: string) => void lines.push(text),
      recent: new RecentIds(),
      names: [],
      scheduleIds: [],
      actors: [],
      signal: new AbortController().signal,
    };
    for (const input of ['[1]', '5', '"x"', 'null']) await runLine(session, `maint cleanup-runs ${input}`);
    assert.equal(asked.length, 0);
    assert.equal(lines.length, 4);
    for (const line of lines) assert.match(line, /^error TROUPE_ERR_INVALID_INPUT: Expected the input of `maint cleanup-runs` to be a JSON object/);
    await runLine(session, 'maint cleanup-runs {"maxAgeHours":48}');
    assert.deepEqual(asked, [{ maxAgeHours: 48 }]);
  });
});
