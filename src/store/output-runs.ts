/**
 * One task's captured output in memory, kept in runs: lines that share a stream and a capture time and have
 * consecutive seqs (one pipe chunk, see `nextOutputSeq`) are one run, their texts joined into one string. The
 * SQLite store keeps the same runs as rows (schema version 4).
 *
 * Why: a flood of output is kept for as long as its task is (up to `maxOutputLines` per task). One object per line
 * was two live objects per line (the record and its text) for the collector to copy and mark: a runtime capturing
 * output at several hundred thousand lines per second spent its pauses on them, and a subscriber saw each pause
 * as the lines' delay. A run is one object and one flat string however many lines it holds.
 *
 * Reads expand runs into lines: `after`, `limit` and the drop marker see one line per seq, as in every store.
 */
import type { OutputLine, OutputStream } from '../task.ts';
import { createDropMarker } from './pick.ts';

interface Run {
  /** The first line's seq; line i of the run has seq + i. */
  seq: number;
  n: number;
  stream: OutputStream;
  at: number;
  /** The texts joined by '\n' (no text of the run holds one), or the texts themselves when one does. */
  text: string | string[];
}

/** Lines per run at most (a long run would make dropping its oldest lines copy a long string). */
const MAX_RUN = 256;
/** UTF-16 units of text per run at most (a longer line still gets a run of its own). */
const MAX_RUN_CHARS = 64 * 1024;

export class OutputRuns {
  #runs: Run[] = [];
  /** Index of the first kept run (older ones are dropped lazily). */
  #head = 0;
  /** Lines of the first kept run that were dropped. */
  #skip = 0;
  #lines = 0;
  #dropped = 0;
  #marker: OutputLine | undefined;
  #lastSeq = -Infinity;

  /** Lines kept (the marker is not one). */
  get size(): number {
    return this.#lines;
  }

  /** Appends lines (a seq at or below the newest kept one is ignored), then keeps the newest `max`. */
  append(lines: readonly OutputLine[], max: number): void {
    let i = 0;
    while (i < lines.length) {
      const first = lines[i]!;
      if (first.seq <= this.#lastSeq) {
        i++;
        continue;
      }
      let end = i + 1;
      let chars = first.text.length;
      let newline = first.text.includes('\n');
      while (end < lines.length && end - i < MAX_RUN) {
        const next = lines[end]!;
        if (next.seq !== first.seq + (end - i) || next.stream !== first.stream || next.at !== first.at) break;
        if (chars + next.text.length > MAX_RUN_CHARS) break;
        chars += next.text.length;
        if (!newline && next.text.includes('\n')) newline = true;
        end++;
      }
      const n = end - i;
      let text: string | string[];
      if (n === 1 && !newline) text = first.text;
      else {
        const texts = new Array<string>(n);
        for (let k = 0; k < n; k++) texts[k] = lines[i + k]!.text;
        text = newline ? texts : texts.join('\n');
      }
      this.#runs.push({ seq: first.seq, n, stream: first.stream, at: first.at, text });
      this.#lines += n;
      this.#lastSeq = first.seq + n - 1;
      i = end;
    }
    if (this.#lines > max) this.#drop(this.#lines - max);
  }

  /** Lines with `seq > after`, oldest first, the drop marker first when it is newer than `after`. */
  read(after?: number, limit = Infinity): OutputLine[] {
    const out: OutputLine[] = [];
    if (!(limit > 0)) return out;
    if (this.#marker && (after === undefined || this.#marker.seq > after)) out.push({ ...this.#marker });
    const runs = this.#runs;
    // the first run holding a line after `after`: the last run starting at or before it, or the first kept one
    let lo = this.#head;
    if (after !== undefined) {
      let hi = runs.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (runs[mid]!.seq + runs[mid]!.n - 1 > after) hi = mid;
        else lo = mid + 1;
      }
    }
    for (let r = lo; r < runs.length && out.length < limit; r++) {
      const run = runs[r]!;
      const texts = typeof run.text === 'string' ? (run.n === 1 ? [run.text] : run.text.split('\n')) : run.text;
      const from = Math.max(r === this.#head ? this.#skip : 0, after === undefined ? 0 : after - run.seq + 1);
      for (let k = from; k < run.n && out.length < limit; k++) out.push({ seq: run.seq + k, stream: run.stream, text: texts[k]!, at: run.at });
    }
    return out;
  }

  /** Drops the `excess` oldest lines and puts one marker line, for every line dropped so far, in their place. */
  #drop(excess: number): void {
    this.#lines -= excess;
    this.#dropped += excess;
    let lastSeq = 0;
    let lastAt = 0;
    while (excess > 0) {
      const run = this.#runs[this.#head]!;
      const left = run.n - this.#skip;
      if (excess >= left) {
        lastSeq = run.seq + run.n - 1;
        lastAt = run.at;
        excess -= left;
        this.#runs[this.#head] = undefined as unknown as Run;
        this.#head++;
        this.#skip = 0;
      } else {
        this.#skip += excess;
        lastSeq = run.seq + this.#skip - 1;
        lastAt = run.at;
        excess = 0;
      }
    }
    this.#marker = createDropMarker(this.#dropped, lastSeq, lastAt);
    if (this.#head > 1024 && this.#head * 2 > this.#runs.length) {
      this.#runs = this.#runs.slice(this.#head);
      this.#head = 0;
    }
  }
}
