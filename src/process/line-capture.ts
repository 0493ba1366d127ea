/**
 * Output capture, line by line, with bounded memory.
 *
 * `LineSplitter` turns the raw byte chunks of one pipe into lines as they arrive:
 * - lines end at `\n`; one `\r` before it is dropped (`\r\n`); a last line without `\n` is emitted by `end()`;
 * - bytes are decoded as UTF-8 with replacement: invalid bytes become U+FFFD, never an error. Splitting happens
 *   on bytes (a `\n` byte is never part of a multi-byte character), and the decoder runs in `stream` mode, so a
 *   character cut by a chunk boundary or by a long-line cut is decoded whole;
 * - a line longer than `maxBytes` is cut into pieces of at most `maxBytes` bytes, each emitted as a line, so one
 *   endless line never grows memory past `maxBytes`;
 * - nothing is kept but the unfinished line;
 * - each line comes with its UTF-8 size when the bytes it was decoded from were all ASCII (checked once per chunk,
 *   natively), so a consumer that counts bytes does not measure every line again; otherwise the size is -1.
 *
 * `LineBuffer` keeps the most recent lines within `maxLines` and `maxBytes`, by the rule every store keeps a task's
 * output by (src/output-caps.ts). When it drops older lines it reports them with ONE marker at its head (the
 * stores' wording, `[N earlier lines dropped]`); the output is trimmed, never the process.
 * `LineWindow` is the same bookkeeping without the text, for code that only needs the counts.
 */

import { isAscii } from 'node:buffer';
import { dropMarkerText, truncateUtf8, utf8Length } from '../output-caps.ts';

/** Which pipe a line came from. */
export type OutputStream = 'stdout' | 'stderr';

/** One line of captured output. */
export interface OutputLine {
  stream: OutputStream;
  text: string;
}

/** The single line a `LineBuffer` puts at its head once it has dropped older lines. */
export interface DropMarker {
  stream: 'marker';
  text: string;
  /** How many lines were dropped. */
  dropped: number;
}

/** The byte measures every cap uses (src/output-caps.ts), where the capture layer's users import them from. */
export { truncateUtf8, utf8Length };

/**
 * Splits one byte stream into decoded lines, incrementally.
 * Why: a pipe delivers arbitrary chunks; lines, characters and `\r\n` pairs straddle them.
 */
export class LineSplitter {
  readonly #maxBytes: number;
  readonly #onLine: (text: string, bytes: number) => void;
  readonly #decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  #partial = '';
  #partialBytes = 0;
  /** The unfinished line's bytes were all ASCII (its UTF-8 size is its length). */
  #partialAscii = true;
  #lines = 0;
  #bytes = 0;
  #ended = false;

  /**
   * @param maxBytes longest line in bytes; longer lines are cut into pieces of this size.
   * @param onLine gets each line and its UTF-8 size in bytes, or -1 when that was not known without measuring.
   */
  constructor(maxBytes: number, onLine: (text: string, bytes: number) => void) {
    this.#maxBytes = Math.max(1, Math.floor(maxBytes));
    this.#onLine = onLine;
  }

  /** Lines emitted so far (cut pieces count one each). */
  get lines(): number {
    return this.#lines;
  }

  /** Raw bytes received so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Feeds one chunk; emits every line it completes. */
  write(chunk: Uint8Array): void {
    if (this.#ended) return;
    this.#bytes += chunk.length;
    let start = 0;
    const length = chunk.length;
    const last = chunk.lastIndexOf(0x0a);
    if (last !== -1 && this.#partialBytes + last <= this.#maxBytes) {
      // No line of this chunk can be longer than the cap: decode all its complete lines at once (one decoder call
      // and one string, not one of each per line) and split the text. Decoding through the last `\n` leaves the
      // decoder without pending bytes, and a `\n` byte is always decoded as `\n` (an unfinished character before
      // it becomes U+FFFD), so the lines are exactly those of the line-by-line path below.
      const bytes = chunk.subarray(0, last + 1);
      // All ASCII: every character is one byte, so a line's size is its length (one native check per chunk
      // instead of a byte count per line).
      const ascii = this.#partialAscii && isAscii(bytes);
      const text = this.#partial + this.#decoder.decode(bytes, { stream: true });
      this.#partial = '';
      this.#partialBytes = 0;
      this.#partialAscii = true;
      let from = 0;
      for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', from)) {
        this.#emit(text.slice(from, newline), ascii);
        from = newline + 1;
      }
      start = last + 1;
      if (start < length) this.#append(chunk, start, length);
      return;
    }
    while (start < length) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        this.#append(chunk, start, length);
        return;
      }
      start = this.#cutWhileOver(chunk, start, newline);
      const text = this.#partial + this.#decoder.decode(chunk.subarray(start, newline));
      this.#partial = '';
      this.#partialBytes = 0;
      this.#partialAscii = true;
      this.#emit(text, false);
      start = newline + 1;
    }
  }

  /** Flushes the last line when the stream ends without `\n`. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#partialBytes === 0) return;
    const text = this.#partial + this.#decoder.decode();
    this.#partial = '';
    this.#partialBytes = 0;
    this.#partialAscii = true;
    this.#emit(text, false);
  }

  #append(chunk: Uint8Array, start: number, end: number): void {
    start = this.#cutWhileOver(chunk, start, end);
    if (start < end) {
      const bytes = chunk.subarray(start, end);
      if (this.#partialAscii && !isAscii(bytes)) this.#partialAscii = false;
      this.#partial += this.#decoder.decode(bytes, { stream: true });
      this.#partialBytes += end - start;
    }
  }

  /** Emits `maxBytes`-sized pieces while the unfinished line plus `[start, end)` is longer than the cap. */
  #cutWhileOver(chunk: Uint8Array, start: number, end: number): number {
    while (this.#partialBytes + (end - start) > this.#maxBytes) {
      const room = this.#maxBytes - this.#partialBytes;
      const text = this.#partial + this.#decoder.decode(chunk.subarray(start, start + room), { stream: true });
      this.#partial = '';
      this.#partialBytes = 0;
      this.#partialAscii = true;
      this.#lines++;
      this.#onLine(text, -1);
      start += room;
    }
    return start;
  }

  #emit(text: string, ascii: boolean): void {
    this.#lines++;
    const line = text.charCodeAt(text.length - 1) === 0x0d ? text.slice(0, -1) : text;
    this.#onLine(line, ascii ? line.length : -1);
  }
}

/** A FIFO of values with O(1) amortised push and shift. */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as T;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  toArray(): T[] {
    return this.#items.slice(this.#head);
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/**
 * A FIFO of line sizes in a typed ring (why: a window of up to `maxLines` sizes is one array per running command;
 * as a JS array it grew by doubling on the heap, and every copy was scanned and promoted by the collector during a
 * flood of output; a typed array's storage lies outside the heap and costs the collector nothing).
 */
class SizeRing {
  #sizes = new Float64Array(64);
  #mask = 63;
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(size: number): void {
    if (this.#size === this.#sizes.length) this.#grow();
    this.#sizes[(this.#head + this.#size) & this.#mask] = size;
    this.#size++;
  }

  /** Removes and returns the oldest size (the ring is not empty). */
  shift(): number {
    const size = this.#sizes[this.#head]!;
    this.#head = (this.#head + 1) & this.#mask;
    this.#size--;
    return size;
  }

  clear(): void {
    this.#sizes = new Float64Array(64);
    this.#mask = 63;
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const old = this.#sizes;
    const sizes = new Float64Array(old.length * 2);
    const tail = old.subarray(this.#head);
    sizes.set(tail);
    sizes.set(old.subarray(0, this.#head), tail.length);
    this.#sizes = sizes;
    this.#mask = sizes.length - 1;
    this.#head = 0;
  }
}

/** Caps of a bounded line window. */
export interface LineWindowOptions {
  /** Most lines kept (the drop marker is not counted). */
  maxLines: number;
  /** Most UTF-8 bytes of line text kept; a longer single line is cut to this size. */
  maxBytes: number;
}

/**
 * The counting half of a `LineBuffer`: which of the last lines fit the caps, by size only.
 * Why: the subprocess layer reports how much a buffer with the same caps drops without holding the text.
 */
export class LineWindow {
  readonly maxLines: number;
  readonly maxBytes: number;
  readonly #sizes = new SizeRing();
  #bytes = 0;
  #dropped = 0;

  constructor({ maxLines, maxBytes }: LineWindowOptions) {
    this.maxLines = Math.max(1, Math.floor(maxLines));
    this.maxBytes = Math.max(1, Math.floor(maxBytes));
  }

  /** Adds a line of `bytes` (clamped to `maxBytes`); returns how many of the oldest lines fell out. */
  push(bytes: number): number {
    const size = bytes > this.maxBytes ? this.maxBytes : bytes;
    this.#sizes.push(size);
    this.#bytes += size;
    let evicted = 0;
    while (this.#sizes.size > 1 && (this.#sizes.size > this.maxLines || this.#bytes > this.maxBytes)) {
      this.#bytes -= this.#sizes.shift()!;
      evicted++;
    }
    this.#dropped += evicted;
    return evicted;
  }

  /** Lines currently inside the window. */
  get size(): number {
    return this.#sizes.size;
  }

  /** Bytes currently inside the window. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Lines that fell out so far. */
  get dropped(): number {
    return this.#dropped;
  }

  clear(): void {
    this.#sizes.clear();
    this.#bytes = 0;
    this.#dropped = 0;
  }
}

/**
 * A bounded ring of the most recent output lines, with one drop marker at its head.
 * Why: a task's output history must stay bounded however much the task prints.
 *
 * @example
 * const buf = new LineBuffer({ maxLines: 1000, maxBytes: 1_000_000 });
 * buf.push({ stream: 'stdout', text: 'hello' });
 * buf.lines();   // [{ stream: 'marker', text: '[3 earlier lines dropped]', dropped: 3 }, …] once lines were dropped
 */
export class LineBuffer<L extends { text: string } = OutputLine> {
  readonly #window: LineWindow;
  readonly #lines = new Fifo<L>();
  #total = 0;

  constructor(options: LineWindowOptions) {
    this.#window = new LineWindow(options);
  }

  /** Adds a line, dropping the oldest ones beyond the caps; a line longer than `maxBytes` is cut to it. */
  push(line: L): void {
    const bytes = utf8Length(line.text);
    const kept = bytes > this.#window.maxBytes ? { ...line, text: truncateUtf8(line.text, this.#window.maxBytes) } : line;
    this.#total++;
    this.#lines.push(kept);
    for (let n = this.#window.push(bytes); n > 0; n--) this.#lines.shift();
  }

  /** A snapshot: the drop marker first (when lines were dropped), then the kept lines, oldest first. */
  lines(): Array<L | DropMarker> {
    const kept: Array<L | DropMarker> = this.#lines.toArray();
    const dropped = this.#window.dropped;
    if (dropped > 0) kept.unshift(createDropMarker(dropped));
    return kept;
  }

  /** How many lines were dropped so far. */
  get dropped(): number {
    return this.#window.dropped;
  }

  /** Lines held now (without the marker). */
  get size(): number {
    return this.#lines.size;
  }

  /** UTF-8 bytes held now. */
  get bytes(): number {
    return this.#window.bytes;
  }

  /** Lines ever pushed. */
  get total(): number {
    return this.#total;
  }

  /** Empties the buffer and forgets the drop count. */
  clear(): void {
    this.#lines.clear();
    this.#window.clear();
    this.#total = 0;
  }
}

/** Builds the marker that stands for `dropped` lines (why: one shape for the buffer, the store and the API). */
export function createDropMarker(dropped: number): DropMarker {
  return { stream: 'marker', text: dropMarkerText(dropped), dropped };
}
