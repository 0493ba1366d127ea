/**
 * Request/reply over `tell`: a one-shot reply address, a correlation id, a timeout on the injected clock and an
 * optional AbortSignal. The request message carries `replyTo`; the actor answers with `bus.tell(self, replyTo, reply)`.
 */
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { ActorAddress } from '../ids.ts';
import type { Bus } from './bus.ts';
import type { Message } from './message.ts';

let nextAsk = 0;

export interface AskOptions {
  /** @default 5000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Sends `build(replyTo)` to `to` and resolves with the first message delivered to `replyTo`. */
export function ask<M extends Message, R extends M = M>(
  bus: Bus<M>,
  from: ActorAddress,
  to: ActorAddress,
  build: (replyTo: ActorAddress) => M,
  { timeoutMs = 5000, signal }: AskOptions = {},
): Promise<R> {
  const replyTo = `${from}/ask#${++nextAsk}`;
  return new Promise<R>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new TroupeError(ErrorCodes.CANCELLED, `ask to \`${to}\` was aborted`, { cause: signal.reason }));
      return;
    }
    const clock = bus.clock;
    let unregister: () => void = () => {};
    const finish = () => {
      unregister();
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      finish();
      reject(new TroupeError(ErrorCodes.CANCELLED, `ask to \`${to}\` was aborted`, { cause: signal?.reason }));
    };
    const timer = clock.setTimeout(() => {
      finish();
      reject(new TroupeError(ErrorCodes.ASK_TIMEOUT, `\`${to}\` did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref?.();
    unregister = bus.register(replyTo, {
      deliver: (msg) => {
        finish();
        resolve(msg as R);
      },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (!bus.has(to)) {
      finish();
      reject(new TroupeError(ErrorCodes.UNKNOWN_ACTOR, `No actor at \`${to}\``));
      return;
    }
    let request: M;
    try {
      request = build(replyTo);
    } catch (error) {
      finish();
      reject(error);
      return;
    }
    bus.tell(from, to, request);
  });
}
