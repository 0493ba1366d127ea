/**
 * output: append captured lines (a seq at or below the newest stored one is ignored) and keep the newest
 * `maxOutputLines` behind a single marker line. The marker takes the seq of the newest dropped line, so it is
 * always the task's lowest line and `seq > after` reads see it exactly once, as the memory store does.
 *
 * Lines are stored in runs (schema version 4): lines arrive in runs that share a stream and a capture time and
 * have consecutive seqs (one pipe chunk, see `nextOutputSeq`); such a run is ONE row, `seq` (its first line's),
 * `n` lines, their texts as a JSON array. The key, the B-tree insert and the bytes written to the WAL and
 * checkpointed were paid per line before, and were most of the cost of capturing output. Rows stay small
 * (`MAX_RUN` lines, `MAX_RUN_CHARS` of text), so dropping the oldest lines rewrites at most one short row.
 * Reads expand rows into lines: every API (`after`, `limit`, the marker) sees one line per seq, as before.
 */
import type Database from 'better-sqlite3';
import type { OutputLine, OutputStream } from '../../../task.ts';
import { createDropMarker } from '../../pick.ts';

interface OutputState {
  output_lines: number;
  output_dropped: number;
  output_last_seq: number | null;
}

interface RunRow {
  seq: number;
  n: number;
  stream: string;
  at: number;
  texts: string;
}

export interface OutputQueries {
  /** Appends lines to a task; false when the task does not exist. */
  append(taskId: string, lines: readonly OutputLine[]): boolean;
  read(taskId: string, after?: number, limit?: number): OutputLine[];
}

/** Lines per row at most. */
const MAX_RUN = 256;
/** UTF-16 units of text per row at most (a longer line still gets a row of its own). */
const MAX_RUN_CHARS = 64 * 1024;

/** Why: bounded per-task output with one drop marker, the same rule as every store. */
export function prepareOutput(db: Database.Database, maxLines: number): OutputQueries {
  const state = db.prepare<[string], OutputState>('SELECT output_lines, output_dropped, output_last_seq FROM tasks WHERE id = ?');
  const insert = db.prepare<[string, number, number, string, number, string]>(
    'INSERT OR IGNORE INTO output (task_id, seq, n, stream, at, texts) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const oldest = db.prepare<[string], RunRow>('SELECT seq, n, stream, at, texts FROM output WHERE task_id = ? ORDER BY seq');
  const dropBelow = db.prepare<[string, number]>('DELETE FROM output WHERE task_id = ? AND seq < ?');
  const dropRow = db.prepare<[string, number]>('DELETE FROM output WHERE task_id = ? AND seq = ?');
  const save = db.prepare('UPDATE tasks SET output_lines = ?, output_dropped = ?, output_last_seq = ? WHERE id = ?');
  // from the row holding the line after `after` (the last row starting at or before it), oldest first
  const read = db.prepare<{ id: string; after: number }, RunRow>(
    `SELECT seq, n, stream, at, texts FROM output
     WHERE task_id = @id AND seq >= ifnull((SELECT max(seq) FROM output WHERE task_id = @id AND seq <= @after), @after)
     ORDER BY seq`,
  );

  /** Writes `lines[from, to)`, one run, as one row. */
  const run = (taskId: string, lines: readonly OutputLine[], from: number, to: number): void => {
    const first = lines[from]!;
    const texts = new Array<string>(to - from);
    for (let i = from; i < to; i++) texts[i - from] = lines[i]!.text;
    insert.run(taskId, first.seq, to - from, first.stream, first.at, JSON.stringify(texts));
  };

  /** Drops the `excess` oldest lines (the marker is not one) and puts the marker for `dropped` in their place. */
  const dropOldest = (taskId: string, excess: number, dropped: number): void => {
    let left = excess;
    let lastSeq = 0;
    let lastAt = 0;
    let partial: { row: RunRow; k: number } | undefined;
    for (const row of oldest.iterate(taskId)) {
      if (row.stream === 'marker') continue;
      if (row.n > left) {
        partial = { row, k: left };
        lastSeq = row.seq + left - 1;
        lastAt = row.at;
        break;
      }
      left -= row.n;
      lastSeq = row.seq + row.n - 1;
      lastAt = row.at;
      if (left === 0) break;
    }
    // the old marker and every row that is dropped whole
    dropBelow.run(taskId, partial ? partial.row.seq : lastSeq + 1);
    if (partial) {
      const { row, k } = partial;
      dropRow.run(taskId, row.seq);
      insert.run(taskId, row.seq + k, row.n - k, row.stream, row.at, JSON.stringify((JSON.parse(row.texts) as string[]).slice(k)));
    }
    const marker = createDropMarker(dropped, lastSeq, lastAt);
    insert.run(taskId, marker.seq, 1, marker.stream, marker.at, JSON.stringify([marker.text]));
  };

  return {
    append(taskId, lines) {
      const s = state.get(taskId);
      if (!s) return false;
      let count = s.output_lines;
      let dropped = s.output_dropped;
      let lastSeq = s.output_last_seq ?? -Infinity;
      let start = -1;
      let chars = 0;
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        if (line.seq <= lastSeq) {
          if (start !== -1) run(taskId, lines, start, i);
          start = -1;
          continue;
        }
        if (start !== -1) {
          const prev = lines[i - 1]!;
          if (line.seq !== prev.seq + 1 || line.stream !== prev.stream || line.at !== prev.at || i - start >= MAX_RUN || chars + line.text.length > MAX_RUN_CHARS) {
            run(taskId, lines, start, i);
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
      if (start !== -1) run(taskId, lines, start, lines.length);
      const excess = count - maxLines;
      if (excess > 0) {
        dropped += excess;
        count = maxLines;
        dropOldest(taskId, excess, dropped);
      }
      save.run(count, dropped, lastSeq === -Infinity ? null : lastSeq, taskId);
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
