/**
 * Appending captured lines (the `output` ops of settle), bounded to `maxOutputLines` per task.
 *
 * Each task row keeps `output_last_seq` (a line whose seq is not above it was already stored, so a resent
 * batch is a no-op), `output_count` (lines kept) and `output_dropped`. When a task holds more than the bound,
 * its oldest lines are deleted and one marker line (pick.ts `createDropMarker`) stands in their place, stored
 * at the seq of the newest dropped line, so reading by seq returns it first, as the memory store does.
 *
 * Usual cost: one statement. A task over its bound adds two (delete the oldest, then replace the marker).
 */
import type { SettleOp } from '../../store.ts';
import { createDropMarker } from '../../pick.ts';
import { run, toPgJson, type PgNames, type Queryable } from '../sql.ts';

export type OutputOp = Extract<SettleOp, { type: 'output' }>;

function insertSql(n: PgNames): string {
  return `
    WITH l AS (
      SELECT e->>'id' AS id, (e->>'seq')::bigint AS seq, e->>'stream' AS stream, e->>'text' AS text,
             (e->>'at')::bigint AS at
      FROM jsonb_array_elements($1::jsonb) AS e
    ), t AS (
      SELECT id, output_last_seq FROM ${n.tasks} WHERE id = ANY(ARRAY(SELECT DISTINCT id FROM l)) FOR UPDATE
    ), ins AS (
      INSERT INTO ${n.output} (task_id, seq, stream, text, at)
      SELECT l.id, l.seq, l.stream, l.text, l.at FROM l JOIN t ON t.id = l.id
      WHERE t.output_last_seq IS NULL OR l.seq > t.output_last_seq
      ON CONFLICT DO NOTHING
      RETURNING task_id, seq
    ), added AS (
      SELECT task_id, count(*) AS n, max(seq) AS last_seq FROM ins GROUP BY task_id
    ), upd AS (
      UPDATE ${n.tasks} AS t SET output_count = t.output_count + a.n,
             output_last_seq = greatest(t.output_last_seq, a.last_seq)
      FROM added AS a WHERE t.id = a.task_id AND t.id = ANY(ARRAY(SELECT task_id FROM added))
      RETURNING t.id, t.output_count
    )
    SELECT t.id, upd.output_count FROM t LEFT JOIN upd ON upd.id = t.id`;
}

function trimSql(n: PgNames): string {
  return `
    WITH x AS (
      SELECT e->>'id' AS id, (e->>'excess')::int AS excess FROM jsonb_array_elements($1::jsonb) AS e
    ), victims AS (
      SELECT v.task_id, v.seq FROM x JOIN ${n.tasks} AS t ON t.id = x.id
      CROSS JOIN LATERAL (
        SELECT o.task_id, o.seq FROM ${n.output} AS o
        WHERE o.task_id = x.id AND o.seq IS DISTINCT FROM t.output_marker_seq
        ORDER BY o.seq LIMIT x.excess
      ) AS v
    ), del AS (
      DELETE FROM ${n.output} AS o USING victims AS v
      WHERE o.task_id = v.task_id AND o.seq = v.seq
      RETURNING o.task_id, o.seq, o.at
    )
    SELECT DISTINCT ON (d.task_id) d.task_id AS id, d.seq, d.at, count(*) OVER (PARTITION BY d.task_id) AS removed,
           t.output_dropped AS dropped, t.output_marker_seq AS marker_seq
    FROM del AS d JOIN ${n.tasks} AS t ON t.id = d.task_id
    ORDER BY d.task_id, d.seq DESC`;
}

function markerSql(n: PgNames): string {
  return `
    WITH m AS (
      SELECT e->>'id' AS id, (e->>'oldSeq')::bigint AS old_seq, (e->>'seq')::bigint AS seq, e->>'text' AS text,
             (e->>'at')::bigint AS at, (e->>'dropped')::int AS dropped, (e->>'removed')::int AS removed
      FROM jsonb_array_elements($1::jsonb) AS e
    ), gone AS (
      DELETE FROM ${n.output} AS o USING m WHERE o.task_id = m.id AND o.seq = m.old_seq
    ), put AS (
      INSERT INTO ${n.output} (task_id, seq, stream, text, at) SELECT id, seq, 'marker', text, at FROM m
    )
    UPDATE ${n.tasks} AS t SET output_dropped = m.dropped, output_count = t.output_count - m.removed,
           output_marker_seq = m.seq
    FROM m WHERE t.id = m.id`;
}

/** Why: bounded output capture in the database; returns the ids of the tasks that exist (their ops apply). */
export async function appendOutput(
  db: Queryable,
  n: PgNames,
  maxOutputLines: number,
  ops: readonly OutputOp[],
): Promise<Set<string>> {
  // Within the batch a line counts only if its seq is above every earlier line of its task (as applied in order).
  const lastSeq = new Map<string, number>();
  const lines: { id: string; seq: number; stream: string; text: string; at: number }[] = [];
  for (const op of ops) {
    for (const line of op.lines) {
      const last = lastSeq.get(op.id);
      if (last !== undefined && line.seq <= last) continue;
      lastSeq.set(op.id, line.seq);
      lines.push({ id: op.id, seq: line.seq, stream: line.stream, text: line.text, at: line.at });
    }
  }
  if (lines.length === 0) {
    const ids = [...new Set(ops.map((op) => op.id))];
    const { rows } = await run<{ id: string }>(db, `SELECT id FROM ${n.tasks} WHERE id = ANY($1::text[])`, [ids]);
    return new Set(rows.map((r) => r.id));
  }
  const { rows } = await run<{ id: string; output_count: number | null }>(db, insertSql(n), [toPgJson(lines)]);
  const exists = new Set(rows.map((r) => r.id));
  // A task with no lines in the batch still "applies" if it exists: look those up too.
  const unseen = [...new Set(ops.map((op) => op.id))].filter((id) => !lastSeq.has(id));
  if (unseen.length > 0) {
    const found = await run<{ id: string }>(db, `SELECT id FROM ${n.tasks} WHERE id = ANY($1::text[])`, [unseen]);
    for (const r of found.rows) exists.add(r.id);
  }
  const over = rows.filter((r) => r.output_count !== null && r.output_count > maxOutputLines);
  if (over.length === 0) return exists;

  const excess = over.map((r) => ({ id: r.id, excess: r.output_count! - maxOutputLines }));
  const trimmed = await run<{ id: string; seq: number; at: number; removed: number; dropped: number; marker_seq: number | null }>(
    db, trimSql(n), [JSON.stringify(excess)],
  );
  const markers = trimmed.rows.map((r) => {
    const dropped = r.dropped + r.removed;
    const marker = createDropMarker(dropped, r.seq, r.at);
    return { id: r.id, oldSeq: r.marker_seq, seq: marker.seq, text: marker.text, at: marker.at, dropped, removed: r.removed };
  });
  if (markers.length > 0) await run(db, markerSql(n), [JSON.stringify(markers)]);
  return exists;
}
