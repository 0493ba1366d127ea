/**
 * output: append captured lines (a seq at or below the newest stored one is ignored) and keep the newest
 * `maxOutputLines` behind a single marker row. The marker takes the seq of the newest dropped line, so it is
 * always the task's lowest row and `seq > after` reads see it exactly once, as the memory store does.
 *
 * Every line stays one row (reads, paging and the drop rule work on rows). How they are written: lines arrive in
 * runs that share a stream and a capture time and have consecutive seqs (one pipe chunk, see `nextOutputSeq`);
 * such a run is ONE statement that binds the run's texts as a single JSON array and inserts a row per element
 * (`json_each`): SQLite parses the array in C, where binding 5 values per row from JavaScript cost more than the
 * row insert itself. Short runs (interleaved streams, single lines) go as multi-row VALUES statements.
 */
import type Database from 'better-sqlite3';
import type { OutputLine } from '../../../task.ts';
import { createDropMarker } from '../../pick.ts';
import { toOutputLine, type OutputRow } from './rows.ts';

interface OutputState {
  output_lines: number;
  output_dropped: number;
  output_last_seq: number | null;
}

export interface OutputQueries {
  /** Appends lines to a task; false when the task does not exist. */
  append(taskId: string, lines: readonly OutputLine[]): boolean;
  read(taskId: string, after?: number, limit?: number): OutputLine[];
}

/** Rows per multi-row VALUES statement (lines that are not part of a long run). */
const CHUNK = 32;
/** A run this long or longer is written as one JSON-array statement. */
const MIN_RUN = 8;
/** Lines per JSON-array statement at most. */
const MAX_RUN = 4096;
/** UTF-16 units of text per JSON-array statement at most (keeps the bound string far below SQLite's length cap). */
const MAX_RUN_CHARS = 1 << 20;

/** Why: bounded per-task output with one drop marker, the same rule as every store. */
export function prepareOutput(db: Database.Database, maxLines: number): OutputQueries {
  const state = db.prepare<[string], OutputState>('SELECT output_lines, output_dropped, output_last_seq FROM tasks WHERE id = ?');
  const insert = db.prepare('INSERT OR IGNORE INTO output (task_id, seq, stream, text, at) VALUES (?, ?, ?, ?, ?)');
  const insertChunk = db.prepare(`INSERT OR IGNORE INTO output (task_id, seq, stream, text, at) VALUES ${Array(CHUNK).fill('(?, ?, ?, ?, ?)').join(', ')}`);
  // row k of the array gets seq = first + k; json_each's key is the 0-based index
  const insertRun = db.prepare<[string, number, string, number, string]>(
    'INSERT OR IGNORE INTO output (task_id, seq, stream, text, at) SELECT ?, ? + key, ?, value, ? FROM json_each(?)',
  );
  const args: unknown[] = new Array(CHUNK * 5);
  const nth = db.prepare<[string, number], { seq: number; at: number }>('SELECT seq, at FROM output WHERE task_id = ? ORDER BY seq LIMIT 1 OFFSET ?');
  const dropThrough = db.prepare('DELETE FROM output WHERE task_id = ? AND seq <= ?');
  const save = db.prepare('UPDATE tasks SET output_lines = ?, output_dropped = ?, output_last_seq = ? WHERE id = ?');
  const read = db.prepare<[string, number, number], OutputRow>(
    'SELECT seq, stream, text, at FROM output WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?',
  );
  let filled = 0;
  /** Queues one row for the multi-row statement. */
  const row = (taskId: string, line: OutputLine): void => {
    const o = filled * 5;
    args[o] = taskId;
    args[o + 1] = line.seq;
    args[o + 2] = line.stream;
    args[o + 3] = line.text;
    args[o + 4] = line.at;
    if (++filled === CHUNK) {
      insertChunk.run(args);
      filled = 0;
    }
  };
  /** Writes `lines[from, to)`, one run: a JSON-array statement when it is long enough, else queued rows. */
  const run = (taskId: string, lines: readonly OutputLine[], from: number, to: number): void => {
    if (to - from < MIN_RUN) {
      for (let i = from; i < to; i++) row(taskId, lines[i]!);
      return;
    }
    const first = lines[from]!;
    const texts = new Array<string>(to - from);
    for (let i = from; i < to; i++) texts[i - from] = lines[i]!.text;
    insertRun.run(taskId, first.seq, first.stream, first.at, JSON.stringify(texts));
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
          if (line.seq !== prev.seq + 1 || line.stream !== prev.stream || line.at !== prev.at || i - start >= MAX_RUN || chars >= MAX_RUN_CHARS) {
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
      for (let i = 0; i < filled; i++) insert.run(args[i * 5], args[i * 5 + 1], args[i * 5 + 2], args[i * 5 + 3], args[i * 5 + 4]);
      filled = 0;
      const excess = count - maxLines;
      if (excess > 0) {
        // the marker, when present, is the lowest row: skip it when counting lines to drop
        const last = nth.get(taskId, excess - 1 + (dropped > 0 ? 1 : 0))!;
        dropThrough.run(taskId, last.seq);
        dropped += excess;
        count = maxLines;
        const marker = createDropMarker(dropped, last.seq, last.at);
        insert.run(taskId, marker.seq, marker.stream, marker.text, marker.at);
      }
      save.run(count, dropped, lastSeq === -Infinity ? null : lastSeq, taskId);
      return true;
    },
    read(taskId, after, limit) {
      return read.all(taskId, after ?? Number.MIN_SAFE_INTEGER, limit ?? -1).map(toOutputLine);
    },
  };
}
