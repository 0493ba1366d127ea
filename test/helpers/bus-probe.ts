/**
 * Records every message the bus carries (through `bus.inspect`) so a test can wait for the next one of a type
 * instead of sleeping. Records already seen count: `next()` first looks at what arrived since the mark (or since
 * the record it returned last time for that type), then waits for a new one.
 */
import type { Bus } from '../../src/bus/bus.ts';
import type { Inspection, Message, MessageOf } from '../../src/bus/message.ts';

export interface NextOptions<R> {
  /** Safety net in real milliseconds (the bus may run on a ManualClock). @default 2000 */
  timeout?: number;
  /** Only records that satisfy this count. */
  where?: (record: R) => boolean;
}

interface Waiter<M extends Message> {
  type: string;
  where: ((record: Inspection<M>) => boolean) | undefined;
  resolve(record: Inspection<M>): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class BusProbe<M extends Message> {
  readonly #records: Inspection<M>[] = [];
  readonly #consumed = new Map<string, number>();
  readonly #waiters = new Set<Waiter<M>>();
  #mark = 0;
  #unsubscribe: (() => void) | undefined;

  constructor(bus: Bus<M>) {
    this.#unsubscribe = bus.inspect((record) => this.#record(record));
  }

  /** Every record so far, in bus order. */
  get records(): readonly Inspection<M>[] {
    return this.#records;
  }

  /** The messages of one type seen so far. */
  messages<T extends M['type']>(type: T): MessageOf<M, T>[] {
    return this.#records.filter((r) => r.msg.type === type).map((r) => r.msg as MessageOf<M, T>);
  }

  /** How many messages of `type` went through the bus (told, published or dead). */
  count(type: M['type']): number {
    let n = 0;
    for (const r of this.#records) if (r.msg.type === type) n++;
    return n;
  }

  /** From now on, `next()` ignores what was recorded before; returns the position. */
  mark(): number {
    this.#mark = this.#records.length;
    return this.#mark;
  }

  /** The next record of `type` not yet returned (after the mark), waiting for it if needed. */
  next<T extends M['type']>(type: T, options: NextOptions<Inspection<MessageOf<M, T>>> = {}): Promise<Inspection<MessageOf<M, T>>> {
    const where = options.where as ((record: Inspection<M>) => boolean) | undefined;
    const start = Math.max(this.#mark, (this.#consumed.get(type) ?? -1) + 1);
    for (let i = start; i < this.#records.length; i++) {
      const r = this.#records[i]!;
      if (r.msg.type === type && (!where || where(r))) {
        this.#consumed.set(type, i);
        return Promise.resolve(r as Inspection<MessageOf<M, T>>);
      }
    }
    if (this.#unsubscribe === undefined) return Promise.reject(new Error('BusProbe is disposed'));
    const timeout = options.timeout ?? 2000;
    return new Promise((resolve, reject) => {
      const waiter: Waiter<M> = {
        type,
        where,
        resolve: resolve as (record: Inspection<M>) => void,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const seen = [...new Set(this.#records.map((r) => r.msg.type))].join(', ') || 'nothing';
          reject(new Error(`BusProbe: no \`${type}\` within ${timeout} ms (seen: ${seen})`));
        }, timeout),
      };
      waiter.timer.unref?.();
      this.#waiters.add(waiter);
    });
  }

  /** Stops recording and rejects pending waits. Safe to call twice. */
  dispose(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`BusProbe disposed while waiting for \`${waiter.type}\``));
    }
    this.#waiters.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #record(record: Inspection<M>): void {
    const index = this.#records.push(record) - 1;
    for (const waiter of this.#waiters) {
      if (waiter.type !== record.msg.type || (waiter.where && !waiter.where(record))) continue;
      if ((this.#consumed.get(waiter.type) ?? -1) >= index) continue;
      this.#waiters.delete(waiter);
      clearTimeout(waiter.timer);
      this.#consumed.set(waiter.type, index);
      waiter.resolve(record);
      break;
    }
  }
}
