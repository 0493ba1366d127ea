/** The history line format both stores keep (src/store/history-line.ts), and the SQLite store's SQL for it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ErrorCodes } from '../../src/errors.ts';
import { historyLine, parseHistory, stateCodeSql, STATE_CODES } from '../../src/store/history-line.ts';
import { historySql } from '../../src/store/sqlite/queries/history-line.ts';
import { TASK_STATES, type Transition } from '../../src/task.ts';

const AT = Date.UTC(2026, 11, 6, 12);

describe('SQLite history lines', () => {
  it('every state has its own code, and every transition reads back as written', () => {
    assert.equal(new Set(Object.values(STATE_CODES)).size, TASK_STATES.length);
    const written: Transition[] = [];
    for (const from of [null, ...TASK_STATES]) for (const to of TASK_STATES) written.push({ taskId: 't', from, to, at: AT + written.length, attempt: written.length % 4 });
    written.push({ taskId: 't', from: 'running', to: 'retrying', at: AT, attempt: 2, reason: 'retry in 5 ms | "quoted"\nnext', error: { name: 'Error', message: 'a|b\nc 😀', code: 'E_X' } });
    written.push({ taskId: 't', from: 'running', to: 'failed', at: AT, attempt: 3, error: { name: 'TypeError', message: '' } });
    written.push({ taskId: 't', from: 'queued', to: 'cancelled', at: AT, attempt: 0, reason: '' });
    const text = written.map((t) => historyLine(t.from, t.to, t.at, t.attempt, t.reason, t.error)).join('');
    assert.deepEqual(parseHistory('t', text), written);
    assert.deepEqual(parseHistory('t', ''), []);
    assert.equal(historyLine('queued', 'running', AT, 1), `qr${AT},1\n`);
  });

  it('a statement writes the same text as historyLine, with numbers bound from JavaScript', () => {
    const db = new Database(':memory:');
    try {
      const line = (sql: string, ...params: unknown[]) => db.prepare(`SELECT ${sql} AS line`).pluck().get(...params) as string;
      assert.equal(line(historySql('queued', 'running', '?', '?'), AT, 1), historyLine('queued', 'running', AT, 1));
      for (const state of TASK_STATES) {
        assert.equal(line(historySql({ sql: '?' }, 'queued', '?', '?', 'due'), state, AT, 2), historyLine(state, 'queued', AT, 2, 'due'));
      }
      assert.equal(line(stateCodeSql('?'), null), '-');
    } finally {
      db.close();
    }
  });

  it('a line that is not a transition is a corrupt store, said with its code', () => {
    for (const bad of ['xq1,0\n', 'q', 'qr,1', 'qrabc,1', `qr${AT}`, `qr${AT},1|{`, `qr${AT},1|{}`]) {
      assert.throws(() => parseHistory('t1', bad), { code: ErrorCodes.STORE_CORRUPT }, bad);
    }
    assert.throws(() => parseHistory('t1', 'zz1,0\n'), { code: ErrorCodes.STORE_CORRUPT, message: /task t1/ });
  });
});
