/**
 * output: append captured lines (a seq at or below the newest stored one is ignored) and keep the newest
 * `maxOutputLines` behind a single marker row. The marker takes the seq of the newest dropped line, so it is
 * always the task's lowest row and `seq > after` reads see it exactly once, as the memory store does.
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

/** Why: bounded per-task output with one drop marker, the same rule as every store. */
export function prepareOutput(db: Database.Database, maxLines: number): OutputQueries {
  const state = db.prepare<[string], OutputState>('SELECT output_lines, output_dropped, output_last_seq FROM tasks WHERE id = ?');
  const insert = db.prepare('INSERT OR IGNORE INTO output (task_id, seq, stream, text, at) VALUES (?, ?, ?, ?, ?)');
  // Lines arrive in bursts: one statement for CHUNK rows costs far less than CHUNK statements.
  const CHUNK = 32;
  const insertChunk = db.prepare(`INSERT OR IGNORE INTO output (task_id, seq, stream, text, at) VALUES ${Array(CHUNK).fill('(?, ?, ?, ?, ?)').join(', ')}`);
  const args: unknown[] = new Array(CHUNK * 5);
  const nth = db.prepare<[string, number], { seq: number; at: number }>('SELECT seq, at FROM output WHERE task_id = ? ORDER BY seq LIMIT 1 OFFSET ?');
  const dropThrough = db.prepare('DELETE FROM output WHERE task_id = ? AND seq <= ?');
  const save = db.prepare('UPDATE tasks SET output_lines = ?, output_dropped = ?, output_last_seq = ? WHERE id = ?');
  const read = db.prepare<[string, number, number], OutputRow>(
    'SELECT seq, stream, text, at FROM output WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?',
  );
  return {
    append(taskId, lines) {
      const s = state.get(taskId);
      if (!s) return false;
      let count = s.output_lines;
      let dropped = s.output_dropped;
      let lastSeq = s.output_last_seq ?? -Infinity;
      let filled = 0;
      for (const line of lines) {
        if (line.seq <= lastSeq) continue;
        const o = filled * 5;
        args[o] = taskId;
        args[o + 1] = line.seq;
        args[o + 2] = line.stream;
        args[o + 3] = line.text;
        args[o + 4] = line.at;
        if (++filled === CHUNK) {
          insertChunk.run(...args);
          filled = 0;
        }
        lastSeq = line.seq;
        count++;
      }
      for (let i = 0; i < filled; i++) insert.run(args[i * 5], args[i * 5 + 1], args[i * 5 + 2], args[i * 5 + 3], args[i * 5 + 4]);
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
