import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonProblem, postgresTextProblem, replaceBadText, replaceBadTextDeep } from '../../src/store/json-value.ts';

/** Whether PostgreSQL's text rule refuses some string or key of a value. */
const hasTextPostgresRefuses = (value: unknown): boolean => /PostgreSQL/.test(jsonProblem(value, postgresTextProblem) ?? '');
import { toPgJson } from '../../src/store/postgres/sql.ts';

describe('json-value', () => {
  it('jsonProblem names what JSON cannot carry, and passes what it can', () => {
    for (const ok of [undefined, null, 0, 'text', true, { a: [1, 'x', null] }, [], new Date(0)]) assert.equal(jsonProblem(ok), undefined);
    assert.match(jsonProblem(10n)!, /BigInt/);
    assert.match(jsonProblem({ n: 1n })!, /BigInt/);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.match(jsonProblem(cycle)!, /as JSON/);
    assert.match(jsonProblem({ f: () => 1 })!, /a function cannot be stored as JSON/);
    assert.match(jsonProblem([Symbol('s')])!, /a symbol cannot be stored as JSON/);
    const shared = { x: 1 };
    assert.equal(jsonProblem({ a: shared, b: [shared, shared] }), undefined, 'a value met twice is not a cycle');
    const loop: unknown[] = [];
    loop.push({ back: loop });
    assert.match(jsonProblem({ deep: loop })!, /cycle/);
    assert.match(jsonProblem({ v: { toJSON: () => 2n } })!, /BigInt/, 'what toJSON returns is what is stored');
    assert.equal(jsonProblem({ v: { toJSON: () => 'fine', bad: 1n } }), undefined);
    const throwing = Object.defineProperty({}, 'boom', { enumerable: true, get: () => { throw new Error('no access'); } });
    assert.match(jsonProblem(throwing)!, /no access/);
    assert.equal(jsonProblem({ f: undefined, n: NaN, m: new Map([[1, 2]]) }), undefined, 'what JSON turns into null or {} is not refused');
    // Inputs (`exact`): what JSON would change is refused; undefined members are dropped as JSON drops them.
    assert.match(jsonProblem({ m: new Map([[1, 2]]) }, undefined, true)!, /a Map cannot be stored as JSON \(it would come back as \{\}\)/);
    assert.match(jsonProblem([[new Set()]], undefined, true)!, /a Set cannot/);
    assert.match(jsonProblem({ n: NaN }, undefined, true)!, /NaN/);
    assert.match(jsonProblem(Infinity, undefined, true)!, /Infinity/);
    assert.equal(jsonProblem({ f: undefined, d: new Date(0), n: 1.5 }, undefined, true), undefined);
  });

  it('finds NUL and unpaired surrogates in strings and keys, not in paired ones', () => {
    assert.equal(hasTextPostgresRefuses('a\u0000b'), true);
    assert.equal(hasTextPostgresRefuses('\ud800'), true);
    assert.equal(hasTextPostgresRefuses('x\udc00'), true);
    assert.equal(hasTextPostgresRefuses('😀 é \\u0000'), false);
    assert.equal(hasTextPostgresRefuses({ a: ['ok', { b: 'n\u0000' }] }), true);
    assert.equal(hasTextPostgresRefuses({ ['k\u0000']: 1 }), true);
    assert.equal(hasTextPostgresRefuses({ a: ['ok', 1, null, { b: '😀' }] }), false);
    const cycle: Record<string, unknown> = { s: 'fine' };
    cycle.self = cycle;
    assert.equal(hasTextPostgresRefuses(cycle), false);
  });

  it('replaces NUL and unpaired surrogates with U+FFFD and keeps the rest', () => {
    assert.equal(replaceBadText('a\u0000b\ud800c😀'), 'a\ufffdb\ufffdc😀');
    assert.equal(replaceBadText('plain'), 'plain');
    assert.deepEqual(replaceBadTextDeep({ ['k\u0000']: ['x\u0000', 1, null, { d: new Date(0) }] }), { 'k\ufffd': ['x\ufffd', 1, null, { d: '1970-01-01T00:00:00.000Z' }] });
  });

  it('toPgJson is JSON.stringify unless PostgreSQL would refuse the text', () => {
    const clean = { a: 'x', b: [1, 2], c: 'literal \\u0000 text' };
    assert.equal(toPgJson(clean), JSON.stringify(clean));
    assert.equal(toPgJson({ t: 'a\u0000b', e: '\udfff' }), JSON.stringify({ t: 'a\ufffdb', e: '\ufffd' }));
  });
});
