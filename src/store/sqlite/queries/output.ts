/**
 * output: append captured lines (a seq at or below the newest stored one is ignored) and keep the newest within the
 * op's caps (src/output-caps.ts: lines and UTF-8 bytes of text; a line longer than `maxBytes` is stored cut to it)
 * and `maxOutputLines`, behind a single marker line. The marker takes the seq of the newest dropped line, so it is
 * always the task's lowest line and `seq > after` reads see it exactly once, as the memory store does.
 *
 * Lines are stored in runs (schema version 4): lines arrive in runs that share a stream and a capture time and
 * have consecutive seqs (one pipe chunk, see `nextOutputSeq`); such a run is ONE row, `seq` (its first line's),
 * `n` lines, their texts as a JSON array. The key, the B-tree insert and the bytes written to the WAL and
 * checkpointed were paid per line before, and were most of the cost of capturing output. Rows stay small
 * (`MAX_RUN` lines, `MAX_RUN_CHARS` of text), so dropping the oldest lines rewrites at most one short row.
 * Reads expand rows into lines: every API (`after`, `limit`, the marker) sees one line per seq, as before.
 *
 * Bytes (schema version 7): each row holds the UTF-8 size of its texts (`bytes`), and the task row the total it
 * keeps (`output_bytes`), so the byte cap drops whole rows by their sizes alone; only the row cut in the middle is
 * read and measured.
 */
import type Database from 'better-sqlite3';
import { truncateUtf8, utf8Length, type OutputCaps } from '../../../output-caps.ts';
import type { OutputLine, OutputStream } from '../../../task.ts';
import { createDropMarker } from '../../pick.ts';

interface OutputState {
  output_lines: number;
  output_dropped: number;
  output_bytes: number;
  output_last_seq: number | null;
}

interface RunRow {
  seq: number;
  n: number;
  stream: string;
  at: number;
  texts: string;
}

/** A row as the trim walks it: its size without its texts. */
interface SizeRow {
  seq: number;
  n: number;
  stream: string;
  at: number;
  bytes: number;
}

export interface OutputQueries {
  /** Appends lines to a task, kept within `caps` and `maxOutputLines`; false when the task does not exist. */
  append(taskId: string, lines: readonly OutputLine[], caps?: OutputCaps): boolean;
  read(taskId: string, after?: number, limit?: number): OutputLine[];
}

/** Lines per row at most. */
const MAX_RUN = 256;
/** UTF-16 units of text per row at most (a longer line still gets a row of its own). */
const MAX_RUN_CHARS = 64 * 1024;

/** Why: bounded per-task output with one drop marker, the same rule as every store. */
export function prepareOutput(db: Database.Database, maxOutputLines: number): OutputQueries {
  const state = db.prepare<[string], OutputState>('SELECT output_lines, output_dropped, output_bytes, output_last_seq FROM tasks WHERE id = ?');
  const insert = db.prepare<[string, number, number, string, number, string, number]>(
    'INSERT OR IGNORE INTO output (task_id, seq, n, stream, at, texts, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const oldest = db.prepare<[string], SizeRow>('SELECT seq, n, stream, at, bytes FROM output WHERE task_id = ? ORDER BY seq');
  const texts = db.prepare<[string, number], { texts: string }>('SELECT texts FROM output WHERE task_id = ? AND seq = ?');
  const dropBelow = db.prepare<[string, number]>('DELETE FROM output WHERE task_id = ? AND seq < ?');
  const dropRow = db.prepare<[string, number]>('DELETE FROM output WHERE task_id = ? AND seq = ?');
  const save = db.prepare('UPDATE tasks SET output_lines = ?, output_dropped = ?, output_bytes = ?, output_last_seq = ? WHERE id = ?');
  // from the row holding the line after `after` (the last row starting at or before it), oldest first
  const read = db.prepare<{ id: string; after: number }, RunRow>(
    `SELECT seq, n, stream, at, texts FROM output
     WHERE task_id = @id AND seq >= ifnull((SELECT max(seq) FROM output WHERE task_id = @id AND seq <= @after), @after)
     ORDER BY seq`,
  );

  /** Writes `lines[from, to)`, one run, as one row (each text cut to `maxBytes`); returns its bytes. */
  const run = (taskId: string, lines: readonly OutputLine[], from: number, to: number, maxBytes: number): number => {
    const first = lines[from]!;
    const texts = new Array<string>(to - from);
    let bytes = 0;
    for (let i = from; i < to; i++) {
      const text = lines[i]!.text;
      // at most 3 bytes per UTF-16 unit: only a text that may be too long is measured for the cut
      const kept = text.length * 3 > maxBytes ? truncateUtf8(text, maxBytes) : text;
      texts[i - from] = kept;
      bytes += utf8Length(kept);
    }
    insert.run(taskId, first.seq, to - from, first.stream, first.at, JSON.stringify(texts), bytes);
    return bytes;
  };

  /**
   * Drops the oldest lines (the marker is not one) until `lines` and `bytes` more are gone, and puts the marker for
   * `dropped` in their place. Whole rows go by their counts; the row cut in the middle is read and measured.
   * Returns the lines and bytes dropped.
   */
  const dropOldest = (taskId: string, lines: number, bytes: number, dropped: number): { lines: number; bytes: number } => {
    let gone = 0;
    let goneBytes = 0;
    let lastSeq = 0;
    let lastAt = 0;
    let partial: SizeRow | undefined;
    for (const row of oldest.iterate(taskId)) {
      if (row.stream === 'marker') continue;
      lastAt = row.at;
      if (row.n <= lines || row.bytes < bytes) {
        lines -= row.n;
        bytes -= row.bytes;
        gone += row.n;
        goneBytes += row.bytes;
        lastSeq = row.seq + row.n - 1;
        if (lines <= 0 && bytes <= 0) break;
        continue;
      }
      partial = row;
      break;
    }
    // the old marker and every row that is dropped whole
    dropBelow.run(taskId, partial ? partial.seq : lastSeq + 1);
    if (partial) {
      const row = partial;
      const all = JSON.parse(texts.get(taskId, row.seq)!.texts) as string[];
      let k = 0;
      let cut = 0;
      while ((lines > 0 || bytes > 0) && k < row.n) {
        const size = utf8Length(all[k]!);
        lines--;
        bytes -= size;
        cut += size;
        k++;
      }
      gone += k;
      goneBytes += cut;
      lastSeq = row.seq + k - 1;
      dropRow.run(taskId, row.seq);
      if (k < row.n) insert.run(taskId, row.seq + k, row.n - k, row.stream, row.at, JSON.stringify(all.slice(k)), row.bytes - cut);
    }
    const marker = createDropMarker(dropped + gone, lastSeq, lastAt);
    insert.run(taskId, marker.seq, 1, marker.stream, marker.at, JSON.stringify([marker.text]), 0);
    return { lines: gone, bytes: goneBytes };
  };

  return {
    append(taskId, lines, caps) {
      const s = state.get(taskId);
      if (!s) return false;
      const maxLines = caps !== undefined && caps.maxLines < maxOutputLines ? caps.maxLines : maxOutputLines;
      const maxBytes = caps === undefined ? Infinity : caps.maxBytes;
      let count = s.output_lines;
      let dropped = s.output_dropped;
      let bytes = s.output_bytes;
      let lastSeq = s.output_last_seq ?? -Infinity;
      let start = -1;
      let chars = 0;
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        if (line.seq <= lastSeq) {
          if (start !== -1) bytes += run(taskId, lines, start, i, maxBytes);
          start = -1;
          continue;
        }
        if (start !== -1) {
          const prev = lines[i - 1]!;
          if (line.seq !== prev.seq + 1 || line.stream !== prev.stream || line.at !== prev.at || i - start >= MAX_RUN || chars + line.text.length > MAX_RUN_CHARS) {
            bytes += run(taskId, lines, start, i, maxBytes);
            start = -1;
          }
        }
        if (start === -1) {
          start = i;
          chars = 0;
        }
        chars += line.text.length;
        lastSeq = line.seq;
        count++;
      }
      if (start !== -1) bytes += run(taskId, lines, start, lines.length, maxBytes);
      if (count > maxLines || bytes > maxBytes) {
        const gone = dropOldest(taskId, count - maxLines, bytes - maxBytes, dropped);
        count -= gone.lines;
        bytes -= gone.bytes;
        dropped += gone.lines;
      }
      save.run(count, dropped, bytes, lastSeq === -Infinity ? null : lastSeq, taskId);
      return true;
    },
    read(taskId, after, limit) {
      const from = after ?? Number.MIN_SAFE_INTEGER;
      // no limit, or a negative one (as SQLite's LIMIT -1): every line
      const max = limit === undefined || limit < 0 ? Infinity : limit;
      const out: OutputLine[] = [];
      if (max <= 0) return out;
      for (const row of read.iterate({ id: taskId, after: from })) {
        const texts = JSON.parse(row.texts) as string[];
        for (let k = from < row.seq ? 0 : from - row.seq + 1; k < row.n; k++) {
          out.push({ seq: row.seq + k, stream: row.stream as OutputStream, text: texts[k]!, at: row.at });
          if (out.length >= max) return out;
        }
      }
      return out;
    },
  };
}
