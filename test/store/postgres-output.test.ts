/**
 * PostgreSQL output within bytes (schema version 7): a schema at version 6 upgrades with each task's
 * `output_bytes` measured from the lines it holds (the marker not counted), and the byte cap then applies from
 * there; a NUL, stored as the 3 bytes of U+FFFD, counts as such, so even a line cut to the cap stays within it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PoolClient } from 'pg';
import { createTaskId } from '../../src/ids.ts';
import { utf8Length } from '../../src/output-caps.ts';
import { LATEST_VERSION, MIGRATIONS, migrate } from '../../src/store/postgres/migrations.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createNames } from '../../src/store/postgres/sql.ts';
import { PG_SKIP, suiteStores, trackSchemas, withAdmin } from '../helpers/pg.ts';

const schemas = trackSchemas('outb');
after(() => schemas.dropAll());

describe('postgres store: output within bytes', PG_SKIP ? { skip: PG_SKIP } : {}, () => {
  const opened = suiteStores({ strategy: 'fifo', listen: false, poolSize: 2 });
  const store = (schema: string): PostgresStore => opened({ schema });

  it('upgrades a version 6 schema: each task starts at the bytes it holds, and is kept within its cap from there', async () => {
    const schema = schemas.next();
    const n = createNames(schema);
    const t0 = 1_767_225_600_000;
    const [id, none] = [createTaskId(t0), createTaskId(t0 + 1)];
    await withAdmin(async (client) => {
      await migrate(client as unknown as PoolClient, n, 'fifo', MIGRATIONS.filter((m) => m.version <= 6));
      for (const [task, count, dropped, last, marker] of [[id, 3, 2, 5, 2], [none, 0, 0, null, null]] as const) {
        await client.query(
          `INSERT INTO ${n.tasks} (id, name, state, created_at, run_at, updated_at, max_attempts, attempts, output_count, output_dropped, output_last_seq, output_marker_seq)
           VALUES ($1, 'job', 'running', $2, $2, $2, 1, 1, $3, $4, $5, $6)`,
          [task, t0, count, dropped, last, marker],
        );
      }
      const lines = [[2, 'marker', '[2 earlier lines dropped]'], [3, 'stdout', 'é😀'], [4, 'stderr', 'abc'], [5, 'stdout', 'hello']] as const;
      for (const [seq, stream, text] of lines) {
        await client.query(`INSERT INTO ${n.output} (task_id, seq, stream, text, at) VALUES ($1, $2, $3, $4, $5)`, [id, seq, stream, text, t0]);
      }
    });
    const s = store(schema);
    await s.open();
    const bytes = await withAdmin(async (client) => {
      assert.equal((await client.query<{ v: number }>(`SELECT max(version) AS v FROM ${n.version}`)).rows[0]!.v, LATEST_VERSION);
      return (await client.query<{ id: string; output_bytes: string }>(`SELECT id, output_bytes FROM ${n.tasks} ORDER BY id`)).rows.map((r) => [r.id, Number(r.output_bytes)]);
    });
    assert.deepEqual(bytes, [[id, 6 + 3 + 5], [none, 0]]);
    // 14 + 4 bytes against a cap of 12: the oldest line (6 bytes) goes, the rest fits exactly
    await s.settle([{ type: 'output', id, lines: [{ seq: 6, stream: 'stdout', text: 'next', at: t0 + 1 }], caps: { maxLines: 100, maxBytes: 12 } }]);
    assert.deepEqual(await s.output(id), [
      { seq: 3, stream: 'marker', text: '[3 earlier lines dropped]', at: t0 },
      { seq: 4, stream: 'stderr', text: 'abc', at: t0 },
      { seq: 5, stream: 'stdout', text: 'hello', at: t0 },
      { seq: 6, stream: 'stdout', text: 'next', at: t0 + 1 },
    ]);
  });

  it('counts a NUL as the U+FFFD it is stored as, and cuts a long line with NULs within the cap', async () => {
    const s = store(schemas.next());
    await s.open();
    const t0 = Date.now();
    const id = createTaskId(t0);
    await s.enqueue([{ id, name: 'job', input: null, priority: 0, weight: 1, maxAttempts: 1, createdAt: t0, runAt: t0 }]);
    const caps = { maxLines: 100, maxBytes: 12 };
    await s.settle([{ type: 'output', id, lines: [{ seq: 1, stream: 'stdout', text: 'ab', at: t0 }, { seq: 2, stream: 'stdout', text: '\u0000\u0000\u0000', at: t0 }], caps }]);
    // 2 + 9 bytes as stored: both fit
    assert.deepEqual((await s.output(id)).map((l) => l.text), ['ab', '\uFFFD\uFFFD\uFFFD']);
    await s.settle([{ type: 'output', id, lines: [{ seq: 3, stream: 'stdout', text: 'x\u0000'.repeat(10), at: t0 }], caps }]);
    const out = await s.output(id);
    assert.deepEqual(out.map((l) => l.stream), ['marker', 'stdout']);
    assert.equal(out[1]!.text, 'x\uFFFDx\uFFFDx\uFFFD');
    assert.ok(utf8Length(out[1]!.text) <= 12);
  });
});
