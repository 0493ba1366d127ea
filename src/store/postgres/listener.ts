/**
 * One dedicated connection that LISTENs on the store's channels and hands notifications to the store.
 *
 * A LISTEN lives and dies with its session, so it cannot use a pooled client. When the connection drops (server
 * restart, `pg_terminate_backend`, network), the listener reports itself unhealthy, then reconnects with
 * exponential backoff and jitter (as graphile-worker does for its `jobs:insert` listener) and LISTENs again.
 * Notifications sent while it was down are lost, so after a reconnect it calls `onReconnect` and the node polls
 * once instead.
 *
 * States: idle → running (first connect succeeded) → stopping → stopped. While running the connection is either
 * up (`healthy`) or being re-established.
 */
import type { Client } from 'pg';
import type { Clock, TimerHandle } from '../../clock.ts';
import { quoteChannel } from './sql.ts';

export const ListenerStatus = { idle: 'idle', running: 'running', stopping: 'stopping', stopped: 'stopped' } as const;
export type ListenerStatus = (typeof ListenerStatus)[keyof typeof ListenerStatus];

export interface ListenerOptions {
  /** Builds a new, unconnected client (one per connection attempt). */
  createClient: () => Client;
  channels: readonly string[];
  onNotification: (channel: string, payload: string) => void;
  /** Called after the connection came back and LISTEN is active again. */
  onReconnect: () => void;
  clock: Clock;
  /** First reconnect delay. @default 50 */
  minDelayMs?: number;
  /** Longest reconnect delay. @default 5000 */
  maxDelayMs?: number;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
}

export class NotifyListener {
  #options: ListenerOptions;
  #status: ListenerStatus = ListenerStatus.idle;
  #client: Client | undefined;
  #timer: TimerHandle | undefined;
  #failures = 0;
  #healthy = false;
  #lastError: string | undefined;

  constructor(options: ListenerOptions) {
    this.#options = options;
  }

  get status(): ListenerStatus {
    return this.#status;
  }

  /** true while the LISTEN connection is up. */
  get healthy(): boolean {
    return this.#healthy;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Connects and LISTENs; rejects when this first attempt fails (the store cannot promise wake-ups then). */
  async start(): Promise<void> {
    if (this.#status !== ListenerStatus.idle) return;
    this.#status = ListenerStatus.running;
    try {
      await this.#connect();
    } catch (error) {
      this.#status = ListenerStatus.stopped;
      throw error;
    }
  }

  /** Ends the connection and any pending reconnect. Idempotent. */
  async close(): Promise<void> {
    if (this.#status === ListenerStatus.stopped || this.#status === ListenerStatus.stopping) return;
    this.#status = ListenerStatus.stopping;
    this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#healthy = false;
    if (client) await client.end().catch(() => undefined);
    this.#status = ListenerStatus.stopped;
  }

  async #connect(): Promise<void> {
    const client = this.#options.createClient();
    let dropped = false;
    const onDrop = (error?: Error): void => {
      if (dropped) return;
      dropped = true;
      client.removeListener('notification', onNotification);
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#healthy = false;
      this.#lastError = error?.message ?? 'LISTEN connection ended';
      client.end().catch(() => undefined);
      this.#scheduleReconnect();
    };
    const onNotification = (msg: { channel: string; payload?: string }): void => {
      this.#options.onNotification(msg.channel, msg.payload ?? '');
    };
    client.on('error', onDrop);
    client.on('end', () => onDrop());
    client.on('notification', onNotification);
    try {
      await client.connect();
      await client.query(this.#options.channels.map((c) => `LISTEN ${quoteChannel(c)}`).join('; '));
    } catch (error) {
      dropped = true;
      client.removeListener('notification', onNotification);
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#status !== ListenerStatus.running) {
      dropped = true;
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#healthy = true;
    this.#lastError = undefined;
    this.#failures = 0;
  }

  #scheduleReconnect(): void {
    if (this.#status !== ListenerStatus.running) return;
    const { minDelayMs = 50, maxDelayMs = 5000, random = Math.random, clock } = this.#options;
    const base = Math.min(maxDelayMs, minDelayMs * 2 ** this.#failures);
    const delay = Math.ceil(base * (0.5 + random() / 2));
    this.#failures++;
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#status !== ListenerStatus.running) return;
      this.#connect().then(
        () => {
          if (this.#healthy) this.#options.onReconnect();
        },
        (error: unknown) => {
          this.#lastError = error instanceof Error ? error.message : String(error);
          this.#scheduleReconnect();
        },
      );
    }, delay);
    this.#timer.unref?.();
  }
}
