/**
 * One task's captured output in memory, kept in runs: lines that share a stream and a capture time and have
 * consecutive seqs (one pipe chunk, see `nextOutputSeq`) are one run, their texts joined into one string. The
 * SQLite store keeps the same runs as rows (schema version 4).
 *
 * Why: a flood of output is kept for as long as its task is (within its caps, src/output-caps.ts). One object per
 * line was two live objects per line (the record and its text) for the collector to copy and mark: a runtime
 * capturing output at several hundred thousand lines per second spent its pauses on them, and a subscriber saw
 * each pause as the lines' delay. A run is one object and one flat string however many lines it holds. Each run
 * carries the UTF-8 size of its texts (one measure of the joined string), so the byte cap drops whole runs without
 * measuring their lines again.
 *
 * Reads expand runs into lines: `after`, `limit` and the drop marker see one line per seq, as in every store.
 */
import { truncateUtf8, utf8Length } from '../output-caps.ts';
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
  /** UTF-8 bytes of its texts (the joining '\n's not counted). */
  bytes: number;
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
  /** Where the first kept line of the first kept run starts in its joined text, and the bytes before it. */
  #skipAt = 0;
  #skipBytes = 0;
  #lines = 0;
  #bytes = 0;
  #dropped = 0;
  #marker: OutputLine | undefined;
  #lastSeq = -Infinity;

  /** Lines kept (the marker is not one). */
  get size(): number {
    return this.#lines;
  }

  /** UTF-8 bytes of the lines kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Appends lines (a seq at or below the newest kept one is ignored), then keeps the newest within `maxLines` and
   * `maxBytes` (src/output-caps.ts: a line longer than `maxBytes` is kept cut to it).
   */
  append(lines: readonly OutputLine[], maxLines: number, maxBytes = Infinity): void {
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
      // a text that may be longer than maxBytes (3 bytes per UTF-16 unit at most) is measured, and cut if it is
      let long = chars * 3 > maxBytes;
      while (end < lines.length && end - i < MAX_RUN) {
        const next = lines[end]!;
        if (next.seq !== first.seq + (end - i) || next.stream !== first.stream || next.at !== first.at) break;
        if (chars + next.text.length > MAX_RUN_CHARS) break;
        chars += next.text.length;
        if (!newline && next.text.includes('\n')) newline = true;
        if (!long && next.text.length * 3 > maxBytes) long = true;
        end++;
      }
      const n = end - i;
      let text: string | string[];
      let bytes: number;
      if (n === 1 && !newline) {
        text = long ? truncateUtf8(first.text, maxBytes) : first.text;
        bytes = utf8Length(text);
      } else {
        const texts = new Array<string>(n);
        for (let k = 0; k < n; k++) texts[k] = long ? truncateUtf8(lines[i + k]!.text, maxBytes) : lines[i + k]!.text;
        if (newline) {
          text = texts;
          bytes = 0;
          for (const t of texts) bytes += utf8Length(t);
        } else {
          text = texts.join('\n');
          // one measure of the joined text instead of one per line: the n - 1 joining '\n's are a byte each
          bytes = utf8Length(text) - (n - 1);
        }
      }
      this.#runs.push({ seq: first.seq, n, stream: first.stream, at: first.at, text, bytes });
      this.#lines += n;
      this.#bytes += bytes;
      this.#lastSeq = first.seq + n - 1;
      i = end;
    }
    if (this.#lines > maxLines || this.#bytes > maxBytes) this.#drop(maxLines, maxBytes);
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

  /**
   * Drops the oldest lines until the rest fit both caps, and puts one marker line, for every line dropped so far,
   * in their place. A run that must go whole is dropped by its counts alone; only the run cut in the middle is
   * measured line by line (the newest line always fits, so the walk ends inside the runs).
   */
  #drop(maxLines: number, maxBytes: number): void {
    let lines = this.#lines - maxLines;
    let bytes = this.#bytes - maxBytes;
    let dropped = 0;
    let lastSeq = 0;
    let lastAt = 0;
    while ((lines > 0 || bytes > 0) && this.#head < this.#runs.length) {
      const run = this.#runs[this.#head]!;
      const left = run.n - this.#skip;
      const leftBytes = run.bytes - this.#skipBytes;
      lastAt = run.at;
      if (left <= lines || leftBytes < bytes) {
        lines -= left;
        bytes -= leftBytes;
        dropped += left;
        this.#bytes -= leftBytes;
        lastSeq = run.seq + run.n - 1;
        this.#runs[this.#head] = undefined as unknown as Run;
        this.#head++;
        this.#skip = 0;
        this.#skipAt = 0;
        this.#skipBytes = 0;
        continue;
      }
      // Some of this run's lines go: those the line cap takes measured together (one measure of their joined text),
      // then one at a time while the byte cap wants more.
      let k = this.#skip;
      while ((lines > 0 || bytes > 0) && k < run.n) {
        const take = lines > 1 ? lines : 1;
        let size: number;
        if (typeof run.text !== 'string') {
          size = 0;
          for (let j = k; j < k + take; j++) size += utf8Length(run.text[j]!);
        } else {
          let to = this.#skipAt - 1;
          for (let j = 0; j < take && to < run.text.length; j++) {
            const nl = run.text.indexOf('\n', to + 1);
            to = nl === -1 ? run.text.length : nl;
          }
          size = utf8Length(run.text.slice(this.#skipAt, to)) - (take - 1);
          this.#skipAt = to + 1;
        }
        lines -= take;
        bytes -= size;
        dropped += take;
        this.#bytes -= size;
        this.#skipBytes += size;
        k += take;
      }
      lastSeq = run.seq + k - 1;
      if (k === run.n) {
        this.#runs[this.#head] = undefined as unknown as Run;
        this.#head++;
        this.#skip = 0;
        this.#skipAt = 0;
        this.#skipBytes = 0;
      } else this.#skip = k;
    }
    this.#lines -= dropped;
    this.#dropped += dropped;
    this.#marker = createDropMarker(this.#dropped, lastSeq, lastAt);
    if (this.#head > 1024 && this.#head * 2 > this.#runs.length) {
      this.#runs = this.#runs.slice(this.#head);
      this.#head = 0;
    }
  }
}
