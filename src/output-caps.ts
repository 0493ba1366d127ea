/**
 * What bounds a task's kept output, written once for the capture layer, the task handle and every store.
 *
 * A task keeps its newest lines within both caps of its definition's `output` (the runtime's `output` option when
 * the definition has none): at most `maxLines` lines and at most `maxBytes` UTF-8 bytes of line text. A line longer
 * than `maxBytes` is cut to its first `maxBytes` bytes (on a character boundary), so the newest line always fits
 * and is always kept. Older lines are dropped, and ONE marker line (`dropMarkerText`) stands in their place,
 * counting every line dropped so far; the marker is not counted against either cap.
 */

/** The caps a task's output is kept within (a resolved definition's `output`). */
export interface OutputCaps {
  /** Most lines kept (the drop marker is not one). */
  readonly maxLines: number;
  /** Most UTF-8 bytes of line text kept (the drop marker's text is not counted). */
  readonly maxBytes: number;
}

/** The UTF-8 size of a line's text, as every cap counts it. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes on a character boundary (why: caps count bytes, not chars). */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // a surrogate pair is one 4-byte character; an unpaired surrogate is written as U+FFFD, 3 bytes
    const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
    const high = c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : high ? 4 : 3;
    if (bytes + size > maxBytes) return text.slice(0, i);
    bytes += size;
    if (high) i++;
  }
  return text;
}

/**
 * The text of the line that stands for `dropped` older lines.
 * Why one function: the capture buffer, the task handle and the stores showed three wordings of one fact; this is
 * the stores' wording, which stored markers already carry.
 */
export function dropMarkerText(dropped: number): string {
  return `[${dropped} earlier line${dropped === 1 ? '' : 's'} dropped]`;
}
