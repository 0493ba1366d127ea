/**
 * Server-sent events on a raw Node response: the one writer the output stream and the event stream share.
 *
 * - Events are `event: <name>\nid: <id>\ndata: <one JSON line>\n\n` (JSON never holds a raw newline, so one
 *   `data:` line is enough). Events queued in the same turn of the event loop go out in one `write` on
 *   `setImmediate`, which is what keeps 100k lines/s cheap, and costs under a millisecond of delay.
 * - A comment (`: ping`) every `heartbeatMs` keeps proxies from closing an idle stream; the timer runs on the
 *   injected clock and is re-armed only while the stream is open.
 * - A client that stops reading is cut off once `maxBufferBytes` are waiting, instead of letting the server's
 *   memory grow; it can reconnect with `Last-Event-ID` to resume.
 * - `close()` is idempotent and runs the `onClose` callbacks once, whether the server or the client ended it.
 * - When the server closes, every open stream gets a last `shutdown` event (`SseHub.closeAll`) before it ends.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../clock.ts';

export interface SseOptions {
  clock: Clock;
  /** Interval of `: ping` comments. @default 15000 */
  heartbeatMs?: number;
  /** Bytes waiting in the socket before a slow client is cut off. @default 16 MiB */
  maxBufferBytes?: number;
  /** The reconnection delay the browser is told to use (`retry:`). @default 2000 */
  retryMs?: number;
}

export const SseStatus = { open: 'open', closed: 'closed' } as const;
export type SseStatus = (typeof SseStatus)[keyof typeof SseStatus];

/** One server-sent-events response. */
export class SseStream {
  readonly #res: ServerResponse;
  readonly #clock: Clock;
  readonly #heartbeatMs: number;
  readonly #maxBuffer: number;
  #status: SseStatus = SseStatus.open;
  /** Text queued for the next write (string concatenation: V8 ropes make appends cheap). */
  #pending = '';
  #scheduled: ReturnType<typeof setImmediate> | undefined;
  #heartbeat: TimerHandle | undefined;
  #onClose: Array<() => void> = [];
  #events = 0;

  constructor(req: IncomingMessage, res: ServerResponse, options: SseOptions) {
    this.#res = res;
    this.#clock = options.clock;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBuffer = options.maxBufferBytes ?? 16 * 1024 * 1024;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    this.#pending = `retry: ${options.retryMs ?? 2000}\n\n`;
    this.#schedule();
    const ended = () => this.close();
    res.once('close', ended);
    req.once('close', ended);
    res.once('error', ended);
    this.#armHeartbeat();
  }

  get status(): SseStatus {
    return this.#status;
  }

  /** Events written so far (tests and the benchmark read it). */
  get events(): number {
    return this.#events;
  }

  /** Queues one event; false once the stream is closed. */
  send(event: string, data: unknown, id?: string | number): boolean {
    let json: string;
    try {
      json = JSON.stringify(data) ?? 'null';
    } catch {
      // A value JSON cannot hold (a BigInt, a cycle) must not end the stream or reach the publisher.
      json = '{"error":{"code":"TROUPE_ERR_INTERNAL","message":"This event could not be serialised as JSON"}}';
    }
    return this.sendJson(event, json, id);
  }

  /** Queues one event whose data is already JSON text (one line); the hot path of output lines. */
  sendJson(event: string, json: string, id?: string | number): boolean {
    if (this.#status !== SseStatus.open) return false;
    this.#pending += id !== undefined ? `event: ${event}\nid: ${id}\ndata: ${json}\n\n` : `event: ${event}\ndata: ${json}\n\n`;
    this.#events++;
    this.#schedule();
    return true;
  }

  /** Queues a comment line (ignored by clients; keeps the connection warm). */
  comment(text: string): void {
    if (this.#status !== SseStatus.open) return;
    this.#pending += `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
    this.#schedule();
  }

  /** Runs `fn` once when the stream closes (client gone, server closing, or `close()`). */
  onClose(fn: () => void): void {
    if (this.#status === SseStatus.closed) fn();
    else this.#onClose.push(fn);
  }

  /** Writes what is queued and ends the response. Idempotent. */
  close(): void {
    if (this.#status === SseStatus.closed) return;
    this.#flush();
    this.#status = SseStatus.closed;
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#clock.clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
    if (!this.#res.writableEnded) this.#res.end();
    const callbacks = this.#onClose;
    this.#onClose = [];
    for (const fn of callbacks) {
      try {
        fn();
      } catch {
        // A cleanup callback must not stop the others.
      }
    }
  }

  #schedule(): void {
    if (this.#scheduled !== undefined) return;
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#pending.length === 0 || this.#status !== SseStatus.open) return;
    const text = this.#pending;
    this.#pending = '';
    if (this.#res.destroyed || this.#res.writableEnded) return;
    this.#res.write(text);
    // A client this far behind is cut off; its 'close' ends the stream and runs the cleanups.
    if (this.#res.writableLength > this.#maxBuffer) this.#res.destroy();
  }

  #armHeartbeat(): void {
    if (this.#status !== SseStatus.open || !(this.#heartbeatMs > 0)) return;
    this.#heartbeat = this.#clock.setTimeout(() => {
      this.comment('ping');
      this.#armHeartbeat();
    }, this.#heartbeatMs);
    this.#heartbeat.unref?.();
  }
}

/** The open streams of one server, so closing the server ends them (an open stream would hold `close()`). */
export class SseHub {
  readonly #streams = new Set<SseStream>();

  /** Opens a stream on a hijacked response and tracks it until it closes. */
  open(req: IncomingMessage, res: ServerResponse, options: SseOptions): SseStream {
    const stream = new SseStream(req, res, options);
    this.#streams.add(stream);
    stream.onClose(() => this.#streams.delete(stream));
    return stream;
  }

  get size(): number {
    return this.#streams.size;
  }

  /**
   * Ends every open stream (server shutdown). With a `reason`, each stream first gets a `shutdown { reason }`
   * event (why: a client must be able to tell "the server went away, reconnect later" from a network cut; the
   * task it follows may still be running, and its `end` will never come on this connection).
   */
  closeAll(reason?: string): void {
    for (const stream of [...this.#streams]) {
      if (reason !== undefined) stream.send('shutdown', { reason });
      stream.close();
    }
  }
}

/** True when the client asked for an event stream (why: one URL serves JSON and SSE by content negotiation). */
export function wantsEventStream(accept: string | undefined): boolean {
  return typeof accept === 'string' && accept.toLowerCase().includes('text/event-stream');
}
