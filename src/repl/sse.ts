/**
 * A reader for server-sent events over `fetch`: the body arrives as byte chunks that split lines and events
 * anywhere, so bytes are decoded as a stream, cut into lines, and lines are gathered into events at each blank
 * line (the WHATWG rules: `event:`, `data:` (joined by newlines), `id:`, comments starting with `:` ignored).
 */

/** One event as the server sent it; `data` is raw text (JSON for troupe's streams). */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Why: turns a fetch body into events one at a time, however the network chunked it. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  const take = (line: string): SseEvent | undefined => {
    if (line === '') {
      if (data.length === 0) {
        event = '';
        return undefined;
      }
      const out: SseEvent = { event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) };
      event = '';
      data = [];
      return out;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
    return undefined;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        const out = take(line);
        if (out) yield out;
      }
    }
    buffer += decoder.decode();
    if (buffer.length > 0) {
      const out = take(buffer.replace(/\r$/, ''));
      if (out) yield out;
    }
    const last = take('');
    if (last) yield last;
  } finally {
    await reader.cancel().catch(() => {});
  }
}
