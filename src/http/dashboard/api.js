// The dashboard's HTTP side: JSON requests with the bearer token, and server-sent events read with fetch (so the
// token travels in a header, never in a URL).

const TOKEN_KEY = 'troupe.token';
let onUnauthorized = () => {};

/** Called when the API answers 401 (the page asks for the token). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Stores the token for this tab only. */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

export async function api(method, path, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (res.status === 401) onUnauthorized();
  if (!res.ok && !(path.startsWith('/api/health') && res.status === 503)) throw new ApiError(res.status, data);
  return data;
}

/**
 * Reads a server-sent-event stream with fetch. Calls onEvent(type, data, id) per event; resolves when the stream
 * ends. `signal` aborts it.
 */
export async function readSse(path, onEvent, signal, lastEventId) {
  const headers = { accept: 'text/event-stream', ...authHeaders() };
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const res = await fetch(path, { headers, signal });
  if (res.status === 401) onUnauthorized();
  if (!res.ok || !res.body) throw new ApiError(res.status, await res.json().catch(() => undefined));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = 'message';
      let id;
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(type, JSON.parse(data.join('\n')), id);
    }
  }
}

