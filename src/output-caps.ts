/**
 * The measures and the marker every bound on kept output uses, written once for the capture layer, the task handle
 * and the stores: caps count the UTF-8 bytes of line texts, and dropped lines are stood for by ONE marker line.
 */

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
