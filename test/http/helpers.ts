/**
 * Helpers of the HTTP tests: a runtime with the HTTP API listening on loopback (port 0), JSON requests over
 * real HTTP, and an SSE client that records events and lets a test wait for one (no sleeps).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';
import { startServer, type StartedServer, type StartServerOptions } from '../../src/http/listen.ts';

export const node = process.execPath;
export const fixture = (p: string) => new URL(`./fixtures/${p}`, import.meta.url).pathname;
export const sharedFixture = (p: string) => new URL(`../fixtures/${p}`, import.meta.url).pathname;

export interface Harness {
  rt: Runtime;
  server: StartedServer;
  url: string;
  /** A temp folder for gate files; removed by close(). */
  dir: string;
  /** Creates the gate file a `print-then-wait` task waits for. */
  openGate(name: string): Promise<void>;
  request(method: string, pathname: string, init?: { body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers; text: string }>;
  close(): Promise<void>;
}

/** The task set most tests use: a gated command, an inline echo, a typed inline task and a failing one. */
export function defaultTasks(dir: string): CreateRuntimeOptions['tasks'] {
  return {
    gated: {
      command: node,
      args: (input: { lines?: number; gate?: string }) => [fixture('print-then-wait.js'), String(input?.lines ?? 3), path.join(dir, String(input?.gate ?? 'gate'))],
      input: {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: (v: unknown) => {
            const o = (v ?? {}) as { lines?: unknown; gate?: unknown };
            if (typeof o !== 'object' || Array.isArray(o)) return { issues: [{ message: 'expected an object' }] };
            if (o.gate !== undefined && (typeof o.gate !== 'string' || !/^[a-z0-9-]{1,40}$/.test(o.gate))) return { issues: [{ message: 'bad gate' }] };
            if (o.lines !== undefined && (typeof o.lines !== 'number' || !Number.isInteger(o.lines) || o.lines < 0 || o.lines > 100_000)) return { issues: [{ message: 'bad lines' }] };
            return { value: o };
          },
        },
      },
      killGrace: '1s',
    },
    lines: { command: node, args: (input: { n?: number }) => [sharedFixture('commands/print-lines.js'), String(input?.n ?? 10)] },
    echo: { run: (input: unknown) => input },
    typed: {
      run: (input: { n: number }) => input.n * 2,
      input: {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: (v: unknown) => (typeof (v as { n?: unknown })?.n === 'number' ? { value: v } : { issues: [{ message: 'n must be a number' }] }),
        },
      },
    },
    boom: { run: () => { throw new Error('boom'); }, retry: { attempts: 1 } },
  } as CreateRuntimeOptions['tasks'];
}

/** Starts a memory-store runtime and its HTTP API on 127.0.0.1:0. */
export async function startHarness(options: { runtime?: CreateRuntimeOptions; server?: StartServerOptions; tasks?: (dir: string) => CreateRuntimeOptions['tasks'] } = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'troupe-http-'));
  const rt = await createRuntime({ store: 'memory', tempDir: path.join(dir, 'tmp'), tasks: (options.tasks ?? defaultTasks)(dir), ...options.runtime });
  let server: StartedServer;
  try {
    server = await startServer(rt, { host: '127.0.0.1', port: 0, env: {}, ...options.server });
  } catch (error) {
    await rt.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const url = server.url;
  return {
    rt,
    server,
    url,
    dir,
    openGate: (name) => writeFile(path.join(dir, name), 'open'),
    async request(method, pathname, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      let body: string | undefined;
      if (init.raw !== undefined) body = init.raw;
      else if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + pathname, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed as any, headers: res.headers, text };
    },
    async close() {
      await server.close();
      await rt.close({ timeout: 2000 });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface SseEvent {
  event: string;
  id?: string;
  data: any;
  comment?: string;
  /** performance.now() when the event was parsed. */
  receivedAt: number;
}

/** A recording SSE client over fetch: `next(pred)` waits for a matching event; `closed` resolves at the end. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly status: Promise<number>;
  readonly closed: Promise<void>;
  #controller = new AbortController();
  #waiters: Array<{ pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void; from: number }> = [];
  #closedWaiters: Array<() => void> = [];
  #isClosed = false;

  constructor(url: string, headers: Record<string, string> = {}) {
    let resolveStatus!: (n: number) => void;
    this.status = new Promise((r) => (resolveStatus = r));
    this.closed = (async () => {
      try {
        const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.#controller.signal });
        resolveStatus(res.status);
        if (!res.body) return;
        const decoder = new TextDecoder();
        let buffer = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            this.#parse(block);
          }
        }
      } catch (error) {
        if ((error as Error).name !== 'AbortError') throw error;
      } finally {
        resolveStatus(0);
        this.#isClosed = true;
        for (const w of this.#closedWaiters.splice(0)) w();
      }
    })();
    this.closed.catch(() => {});
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Events of one type. */
  of(type: string): SseEvent[] {
    return this.events.filter((e) => e.event === type);
  }

  /** Resolves with the first event (already received or coming) matching `pred`. */
  next(pred: (e: SseEvent) => boolean, timeout = 5000): Promise<SseEvent> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`SSE event not received within ${timeout} ms; got ${this.events.map((e) => e.event).join(',')}`)), timeout);
      const waiter = { pred, from: this.events.length, resolve: (e: SseEvent) => { clearTimeout(timer); resolve(e); } };
      this.#waiters.push(waiter);
      this.#closedWaiters.push(() => {
        clearTimeout(timer);
        const late = this.events.find(pred);
        if (late) resolve(late);
        else reject(new Error(`SSE stream closed before the event; got ${this.events.map((e) => e.event).join(',')}`));
      });
    });
  }

  close(): void {
    this.#controller.abort();
  }

  #parse(block: string): void {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    let comment: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comment = line.slice(1).trim();
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length === 0 && comment === undefined) return;
    const e: SseEvent = { event: data.length === 0 ? ':comment' : event, data: data.length ? JSON.parse(data.join('\n')) : undefined, receivedAt: performance.now(), ...(id !== undefined ? { id } : {}), ...(comment !== undefined ? { comment } : {}) };
    this.events.push(e);
    for (const w of [...this.#waiters]) {
      if (w.pred(e)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }
}
