/**
 * Appending captured lines (the `output` ops of settle), kept within each op's caps (src/output-caps.ts: lines and
 * UTF-8 bytes of text) and `maxOutputLines` per task.
 *
 * Each task row keeps `output_last_seq` (a line whose seq is not above it was already stored, so a resent
 * batch is a no-op), `output_count` (lines kept), `output_bytes` (their bytes, schema version 7) and
 * `output_dropped`. When a task holds more than its caps allow, its oldest lines are deleted and one marker line
 * (pick.ts `createDropMarker`) stands in their place, stored at the seq of the newest dropped line, so reading by
 * seq returns it first, as the memory store does. Bytes are the stored text's `octet_length` (the database is
 * UTF-8), so a NUL stored as U+FFFD counts its three bytes; a line that may be longer than the byte cap has its NULs
 * replaced here and is cut to the cap before it is sent, so the newest line always fits.
 *
 * Usual cost: one statement. A task over its caps adds two (delete the oldest, then replace the marker). The delete
 * walks a bounded number of the oldest lines, enough for the lines the batch added; when the byte cap needs more
 * (small old lines behind a long new one), it walks again, further, until the task fits.
 */
import { truncateUtf8, type OutputCaps } from '../../../output-caps.ts';
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
      RETURNING task_id, seq, octet_length(text) AS bytes
    ), added AS (
      SELECT task_id, count(*) AS n, max(seq) AS last_seq, sum(bytes) AS bytes FROM ins GROUP BY task_id
    ), upd AS (
      UPDATE ${n.tasks} AS t SET output_count = t.output_count + a.n, output_bytes = t.output_bytes + a.bytes,
             output_last_seq = greatest(t.output_last_seq, a.last_seq)
      FROM added AS a WHERE t.id = a.task_id AND t.id = ANY(ARRAY(SELECT task_id FROM added))
      RETURNING t.id, t.output_count, t.output_bytes, a.n AS added
    )
    SELECT t.id, upd.output_count, upd.output_bytes, upd.added FROM t LEFT JOIN upd ON upd.id = t.id`;
}

/**
 * Deletes, per task, the oldest lines (not the marker) among its first `scan` that must go for `lines` more lines
 * and `bytes` more bytes to be gone: a line goes while fewer than `lines` lines, or fewer than `bytes` bytes, lie
 * before it. Returns the newest deleted line and what was deleted.
 */
function trimSql(n: PgNames): string {
  return `
    WITH x AS (
      SELECT e->>'id' AS id, (e->>'lines')::int AS lines, (e->>'bytes')::bigint AS bytes, (e->>'scan')::int AS scan
      FROM jsonb_array_elements($1::jsonb) AS e
    ), victims AS (
      SELECT v.task_id, v.seq FROM x JOIN ${n.tasks} AS t ON t.id = x.id
      CROSS JOIN LATERAL (
        SELECT w.task_id, w.seq FROM (
          SELECT o.task_id, o.seq, row_number() OVER (ORDER BY o.seq) AS rn,
                 sum(octet_length(o.text)) OVER (ORDER BY o.seq) - octet_length(o.text) AS before
          FROM (
            SELECT o.task_id, o.seq, o.text FROM ${n.output} AS o
            WHERE o.task_id = x.id AND o.seq IS DISTINCT FROM t.output_marker_seq
            ORDER BY o.seq LIMIT x.scan
          ) AS o
        ) AS w
        WHERE w.rn <= x.lines OR w.before < x.bytes
      ) AS v
    ), del AS (
      DELETE FROM ${n.output} AS o USING victims AS v
      WHERE o.task_id = v.task_id AND o.seq = v.seq
      RETURNING o.task_id, o.seq, o.at, octet_length(o.text) AS bytes
    )
    SELECT DISTINCT ON (d.task_id) d.task_id AS id, d.seq, d.at, count(*) OVER (PARTITION BY d.task_id) AS removed,
           sum(d.bytes) OVER (PARTITION BY d.task_id) AS removed_bytes,
           t.output_dropped AS dropped, t.output_marker_seq AS marker_seq
    FROM del AS d JOIN ${n.tasks} AS t ON t.id = d.task_id
    ORDER BY d.task_id, d.seq DESC`;
}

function markerSql(n: PgNames): string {
  return `
    WITH m AS (
      SELECT e->>'id' AS id, (e->>'oldSeq')::bigint AS old_seq, (e->>'seq')::bigint AS seq, e->>'text' AS text,
             (e->>'at')::bigint AS at, (e->>'dropped')::int AS dropped, (e->>'removed')::int AS removed,
             (e->>'removedBytes')::bigint AS removed_bytes
      FROM jsonb_array_elements($1::jsonb) AS e
    ), gone AS (
      DELETE FROM ${n.output} AS o USING m WHERE o.task_id = m.id AND o.seq = m.old_seq
    ), put AS (
      INSERT INTO ${n.output} (task_id, seq, stream, text, at) SELECT id, seq, 'marker', text, at FROM m
    )
    UPDATE ${n.tasks} AS t SET output_dropped = m.dropped, output_count = t.output_count - m.removed,
           output_bytes = t.output_bytes - m.removed_bytes, output_marker_seq = m.seq
    FROM m WHERE t.id = m.id`;
}

/**
 * A line's text as it is sent: one that may be longer than `maxBytes` (3 bytes per UTF-16 unit at most, a NUL
 * stored as U+FFFD included) gets its NULs replaced first, as storing it would, then is cut to the cap.
 */
function fit(text: string, maxBytes: number): string {
  return text.length * 3 > maxBytes ? truncateUtf8(text.replaceAll('\0', '\uFFFD'), maxBytes) : text;
}

interface Trim {
  id: string;
  /** Lines and bytes still to delete. */
  lines: number;
  bytes: number;
  /** The oldest lines the next pass may walk. */
  scan: number;
}

interface Trimmed {
  seq: number;
  at: number;
  removed: number;
  removedBytes: number;
  dropped: number;
  markerSeq: number | null;
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
  // A task's caps are its latest op's (every op of a task comes from its one definition).
  const caps = new Map<string, OutputCaps | undefined>();
  const lines: { id: string; seq: number; stream: string; text: string; at: number }[] = [];
  for (const op of ops) {
    caps.set(op.id, op.caps);
    const maxBytes = op.caps === undefined ? Infinity : op.caps.maxBytes;
    for (const line of op.lines) {
      const last = lastSeq.get(op.id);
      if (last !== undefined && line.seq <= last) continue;
      lastSeq.set(op.id, line.seq);
      lines.push({ id: op.id, seq: line.seq, stream: line.stream, text: fit(line.text, maxBytes), at: line.at });
    }
  }
  if (lines.length === 0) {
    const ids = [...new Set(ops.map((op) => op.id))];
    const { rows } = await run<{ id: string }>(db, `SELECT id FROM ${n.tasks} WHERE id = ANY($1::text[])`, [ids]);
    return new Set(rows.map((r) => r.id));
  }
  const { rows } = await run<{ id: string; output_count: number | null; output_bytes: number; added: number }>(db, insertSql(n), [toPgJson(lines)]);
  const exists = new Set(rows.map((r) => r.id));
  // A task with no lines in the batch still "applies" if it exists: look those up too.
  const unseen = [...new Set(ops.map((op) => op.id))].filter((id) => !lastSeq.has(id));
  if (unseen.length > 0) {
    const found = await run<{ id: string }>(db, `SELECT id FROM ${n.tasks} WHERE id = ANY($1::text[])`, [unseen]);
    for (const r of found.rows) exists.add(r.id);
  }
  let pending: Trim[] = [];
  for (const r of rows) {
    if (r.output_count === null) continue;
    const c = caps.get(r.id);
    const maxLines = c !== undefined && c.maxLines < maxOutputLines ? c.maxLines : maxOutputLines;
    const lines = r.output_count - maxLines;
    const bytes = c === undefined ? 0 : r.output_bytes - c.maxBytes;
    // enough for the lines the batch added when the old lines are about as long as the new ones
    if (lines > 0 || bytes > 0) pending.push({ id: r.id, lines, bytes, scan: Math.max(lines, 2 * r.added) + 16 });
  }
  if (pending.length === 0) return exists;

  const trimmed = new Map<string, Trimmed>();
  while (pending.length > 0) {
    const { rows: deleted } = await run<{ id: string; seq: number; at: number; removed: number; removed_bytes: number; dropped: number; marker_seq: number | null }>(
      db, trimSql(n), [JSON.stringify(pending)],
    );
    const next: Trim[] = [];
    for (const r of deleted) {
      const { removed, removed_bytes: removedBytes } = r;
      const t = trimmed.get(r.id);
      // a later pass deletes newer lines: the marker takes its newest
      if (t === undefined) trimmed.set(r.id, { seq: r.seq, at: r.at, removed, removedBytes, dropped: r.dropped, markerSeq: r.marker_seq });
      else Object.assign(t, { seq: r.seq, at: r.at, removed: t.removed + removed, removedBytes: t.removedBytes + removedBytes });
      const p = pending.find((x) => x.id === r.id)!;
      const lines = p.lines - removed;
      const bytes = p.bytes - removedBytes;
      // Walked its whole reach and still over: further. (Fewer deleted than walked means the task fits.)
      if ((lines > 0 || bytes > 0) && removed >= p.scan) next.push({ id: r.id, lines, bytes, scan: p.scan * 4 });
    }
    pending = next;
  }
  const markers = [...trimmed].map(([id, t]) => {
    const dropped = t.dropped + t.removed;
    const marker = createDropMarker(dropped, t.seq, t.at);
    return { id, oldSeq: t.markerSeq, seq: marker.seq, text: marker.text, at: marker.at, dropped, removed: t.removed, removedBytes: t.removedBytes };
  });
  if (markers.length > 0) await run(db, markerSql(n), [JSON.stringify(markers)]);
  return exists;
}
