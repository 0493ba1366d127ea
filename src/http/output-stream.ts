/**
 * A task's output as server-sent events: the stored lines first, then live lines and progress, then ONE final
 * `end` event with the outcome — also when the task had already finished (lines, end, close).
 *
 * No line is lost or doubled between "stored" and "live":
 *
 *   1. Subscribe to the task's live facts first, and hold them.
 *   2. Read the task (if it is already final, every line of it is stored: the outcome is committed after them).
 *   3. Send the stored lines (paged), remembering the last `seq` sent.
 *   4. Send the held facts, then live ones; a line whose `seq` was already sent is a duplicate and skipped.
 *
 * One window remains, because the tracker publishes a line live *before* its batch is committed: a line
 * published just before step 1 and committed just after step 3 arrives neither live nor in the stored read.
 * Such "gap" lines have a `seq` between the last stored line and the first live one, so they are fetched by a
 * catch-up read once the tracker has flushed (`rt.flush()`), and at the latest when the outcome arrives (by
 * then everything before it is committed). A gap line can therefore arrive after a later live line; each line
 * carries its `seq` (also as the SSE `id`), which orders them.
 *
 * A reconnecting client sends `Last-Event-ID` (the last `seq` it saw) and gets only what came after.
 *
 * On a shared store the task may run on another node, whose facts are not heard here: while no live line has come
 * and the task is not seen running here, the stored lines after the last sent are read every ELSEWHERE_POLL_MS
 * (the same catch-up read), and the end comes from the store (`Runtime.whenFinal`).
 */
import { ELSEWHERE_POLL_MS, type Runtime, type TaskView } from '../runtime.ts';
import type { TaskId } from '../ids.ts';
import { ErrorCodes, isTroupeError } from '../errors.ts';
import type { OutputLine, TaskState } from '../task.ts';
import type { TaskFact } from '../../actors/task/messages.ts';
import { createCancelledError } from '../store/pick.ts';
import { publicError } from './errors.ts';
import type { SseStream } from './sse.ts';
import type { TimerHandle } from '../clock.ts';

/** Lines read from the store per page. */
const PAGE = 1000;

const FACTS = ['task.output', 'task.progress', 'task.started', 'task.retrying', 'task.queued', 'task.succeeded', 'task.failed', 'task.cancelled', 'task.stopped', 'task.timed_out'] as const;

/** The `data` of the final `end` event. */
export interface EndEvent {
  state: TaskState;
  attempts?: number;
  result?: unknown;
  error?: ReturnType<typeof publicError>;
}

type Phase = 'holding' | 'live' | 'ended';

/** One task's output feed, subscribed before anything is read. */
export class TaskOutputFeed {
  readonly #rt: Runtime;
  readonly #id: TaskId;
  readonly #offs: Array<() => void> = [];
  #held: TaskFact[] = [];
  #phase: Phase = 'holding';
  #sse: SseStream | undefined;
  /** The last seq sent in order (stored pages, then live). */
  #lastSent = -1;
  /** Gap lines are those with gapFrom < seq < firstLive; gapFrom advances as catch-up reads send them. */
  #gapFrom = -1;
  #firstLive: number | undefined;
  #catchUp: Promise<void> | undefined;
  /** Attempts as last seen (the view, then `started`/`retrying` facts): the fallback `end` of a cancel uses it. */
  #attempts = 0;
  /** The `end` of a task cancelled while it ran, sent once its run has stopped (`task.stopped`). */
  #endOnStop: EndEvent | undefined;
  /** `task.stopped` came (it can come before `task.cancelled`). */
  #stopSeen = false;
  /** The task started on this node (heard): its lines come live, its stored lines are not read. */
  #here = false;
  #poll: TimerHandle | undefined;
  /** Ends a cancel's wait for another node's `task.stopped` that does not come. */
  #stopWait: TimerHandle | undefined;
  /** Aborted once the feed is disposed: withdraws its wait for the task's end. */
  readonly #gone = new AbortController();

  private constructor(rt: Runtime, id: TaskId) {
    this.#rt = rt;
    this.#id = id;
    const onFact = (fact: TaskFact) => {
      if (fact.id !== this.#id) return;
      if (this.#phase === 'holding') this.#held.push(fact);
      else if (this.#phase === 'live') {
        // A listener runs inside the publisher (the tracker): whatever goes wrong here must stay here.
        try {
          this.#handle(fact);
        } catch {
          this.#finish(undefined);
        }
      }
    };
    for (const type of FACTS) this.#offs.push(rt.on(type, onFact as never));
    this.#offs.push(
      rt.on('runtime.status', (fact) => {
        if (fact.status === 'stopped' && this.#phase !== 'ended') this.#finish(undefined);
      }),
    );
  }

  /**
   * Subscribes, then reads the task (why this order: a task that ends in between is seen either way).
   * Resolves with the feed and the task's view, or `undefined` (nothing left subscribed) when there is no task.
   */
  static async open(rt: Runtime, id: TaskId): Promise<{ feed: TaskOutputFeed; view: TaskView } | undefined> {
    const feed = new TaskOutputFeed(rt, id);
    let view: TaskView | undefined;
    try {
      view = await rt.get(id);
    } catch (error) {
      feed.dispose();
      throw error;
    }
    if (!view) {
      feed.dispose();
      return undefined;
    }
    return { feed, view };
  }

  /** Streams into `sse`: state, stored lines after `after`, live facts, one `end`. */
  async pipe(sse: SseStream, view: TaskView, after = -1): Promise<void> {
    this.#sse = sse;
    sse.onClose(() => this.dispose());
    this.#lastSent = after;
    this.#attempts = view.attempts;
    sse.send('state', { state: view.state, attempts: view.attempts, ...(view.progress ? { progress: view.progress } : {}) });
    if (view.progress) sse.send('progress', view.progress);
    try {
      await this.#sendStored(after);
    } catch {
      this.#finish(undefined);
      return;
    }
    if (this.#phase === 'ended') return;
    if (isFinal(view.state)) {
      this.#finish(endFromView(view));
      return;
    }
    this.#gapFrom = this.#lastSent;
    this.#phase = 'live';
    const held = this.#held;
    this.#held = [];
    for (const fact of held) {
      if (this.#phase !== 'live') break;
      this.#handle(fact);
    }
    if (this.#phase === 'live') {
      this.#rt.flush().then(
        () => this.#runCatchUp(),
        () => {},
      );
      // Another node may run the task (a shared store): its facts are not heard here, so the end is also taken
      // from the store once the task is final there (lines it stored come with the last catch-up read).
      // (Heard here, the cancel of a run that is stopping waits for `task.stopped` instead.)
      const ended = (): void => {
        if (this.#endOnStop === undefined) this.#endFromStore();
      };
      this.#rt.whenFinal(this.#id, this.#gone.signal).then(ended, (error: unknown) => {
        if (!(isTroupeError(error) && error.code === ErrorCodes.CLOSED)) ended();
      });
      // Its lines, while it runs elsewhere, come from the store (a memory store has no other node). Running and
      // owned here may still mean only held in this node's prefetch buffer, to be given back: until a start or a
      // line is heard here, it is read.
      if (this.#rt.store.kind !== 'memory') this.#armPoll();
    }
  }

  /** Reads the stored lines after the last sent every ELSEWHERE_POLL_MS while the task is not heard here. */
  #armPoll(): void {
    const clock = this.#rt.options.clock;
    const timer = clock.setTimeout(() => {
      this.#poll = undefined;
      if (this.#phase !== 'live') return;
      // Once a line was heard live, the lines before it come by the catch-up reads, and the rest live.
      if (!this.#here && this.#firstLive === undefined) this.#runCatchUp();
      this.#armPoll();
    }, ELSEWHERE_POLL_MS);
    timer.unref?.();
    this.#poll = timer;
  }

  /** Unsubscribes everything. Idempotent. */
  dispose(): void {
    this.#phase = 'ended';
    this.#held = [];
    if (this.#poll !== undefined) this.#rt.options.clock.clearTimeout(this.#poll);
    this.#poll = undefined;
    if (this.#stopWait !== undefined) this.#rt.options.clock.clearTimeout(this.#stopWait);
    this.#stopWait = undefined;
    this.#gone.abort();
    for (const off of this.#offs.splice(0)) off();
  }

  #handle(fact: TaskFact): void {
    const sse = this.#sse!;
    switch (fact.type) {
      case 'task.output': {
        const line = fact.line;
        if (line.seq <= this.#lastSent) return;
        this.#firstLive ??= line.seq;
        this.#lastSent = line.seq;
        sendLine(sse, line);
        return;
      }
      case 'task.progress':
        sse.send('progress', fact.progress);
        return;
      case 'task.started':
        this.#attempts = fact.attempt;
        this.#here = fact.owner === this.#rt.nodeId;
        sse.send('state', { state: 'running', attempts: fact.attempt });
        return;
      case 'task.retrying':
        this.#attempts = fact.attempt;
        this.#here = false;
        sse.send('state', { state: 'retrying', attempts: fact.attempt, runAt: fact.runAt, error: publicError(fact.error) });
        return;
      case 'task.queued':
        this.#here = false;
        sse.send('state', { state: 'queued' });
        return;
      case 'task.succeeded':
        this.#end({ state: 'succeeded', attempts: fact.attempt, result: fact.result });
        return;
      case 'task.failed':
        this.#end({ state: 'failed', attempts: fact.attempt, error: publicError(fact.error) });
        return;
      case 'task.timed_out':
        this.#end({ state: 'timed_out', attempts: fact.attempt, error: publicError(fact.error) });
        return;
      case 'task.cancelled': {
        // The fact carries neither attempts nor the error; the stored task (committed before the fact is
        // published) has both, so the live `end` is read from it: the same data a client connecting later gets.
        const event: EndEvent = { state: 'cancelled', attempts: this.#attempts, error: publicError(createCancelledError(fact.reason)) };
        this.#endAfterStop(event, fact);
        return;
      }
      case 'task.stopped':
        this.#stopSeen = true;
        this.#stopped();
        return;
      default:
        return;
    }
  }

  /**
   * A cancel's `end`: a run that was under way may still print while it stops, so the end waits until it has stopped
   * and its lines are stored (`task.stopped`: this node's, or another's where the store announces it; see
   * stopWaitMs), or at once when no stop will be heard.
   */
  #endAfterStop(event: EndEvent, cancel: { name: string; previous: TaskState; owner?: string | undefined }): void {
    const wait = this.#stopSeen ? undefined : this.#rt.stopWaitMs(cancel);
    if (wait === undefined) {
      this.#end(event, true);
      return;
    }
    this.#endOnStop = event;
    if (wait !== Infinity) {
      this.#stopWait = this.#rt.options.clock.setTimeout(() => this.#stopped(), wait);
      this.#stopWait.unref?.();
    }
  }

  /**
   * The task is final in the store, and no fact here said how (it ended on another node, or the store's word came
   * before this node's fact). A task cancelled while it ran (its last transition `running → cancelled`) waits for its
   * run's stop as a cancel heard here does: the cancel's notification, or a cancel made on a third node, can make the
   * store's answer come first, and the lines the run prints while it stops would be cut off.
   */
  #endFromStore(): void {
    const fallback: EndEvent = { state: 'failed', attempts: this.#attempts };
    this.#rt
      .get(this.#id)
      .catch(() => undefined)
      .then((view) => {
        if (this.#phase !== 'live' || this.#endOnStop !== undefined) return;
        const last = view?.history?.[view.history.length - 1];
        if (view && view.state === 'cancelled' && last?.to === 'cancelled' && last.from === 'running') {
          this.#attempts = view.attempts;
          this.#endAfterStop(endFromView(view), { name: view.name, previous: 'running', owner: view.owner });
          return;
        }
        this.#end(fallback, true, false);
      });
  }

  /** The run has stopped (or was waited for long enough): the cancel's `end`, after a last read of its lines. */
  #stopped(): void {
    if (this.#stopWait !== undefined) this.#rt.options.clock.clearTimeout(this.#stopWait);
    this.#stopWait = undefined;
    const event = this.#endOnStop;
    this.#endOnStop = undefined;
    if (event) this.#end(event, true);
  }

  /**
   * The outcome arrived: every line before it is committed, so one last catch-up read, then `end`. With
   * `fromStore`, the `end` is the stored task's (`endFromView`) and `event` is only the fallback for a read that
   * fails or does not find the task final. Without `known` (the task ended on another node: no fact says how),
   * `event` is no fallback: the stored task's end, or `shutdown` (reconnect) when it cannot be read.
   */
  #end(event: EndEvent, fromStore = false, known = true): void {
    if (this.#phase !== 'live') return;
    this.#phase = 'holding';
    const previous = this.#catchUp ?? Promise.resolve();
    previous
      .then(() => this.#catchUpOnce())
      .catch(() => {})
      .then(() => (fromStore ? this.#rt.get(this.#id).catch(() => undefined) : undefined))
      .then((view) => this.#finish(view && (view.state === event.state || (!known && isFinal(view.state))) ? endFromView(view) : known ? event : undefined));
  }

  #runCatchUp(): void {
    if (this.#phase !== 'live' || this.#catchUp) return;
    this.#catchUp = this.#catchUpOnce()
      .catch(() => {})
      .finally(() => {
        this.#catchUp = undefined;
      });
  }

  /** Sends stored lines with gapFrom < seq < firstLive (lines committed after the first read, never seen live). */
  async #catchUpOnce(): Promise<void> {
    let after = this.#gapFrom;
    for (;;) {
      if (this.#firstLive !== undefined && after >= this.#firstLive) return;
      const lines = await this.#rt.output(this.#id, { ...(after >= 0 ? { after } : {}), limit: PAGE });
      for (const line of lines) {
        // Read per line: a live line may have arrived while the page was read.
        const firstLive = this.#firstLive;
        if (firstLive !== undefined && line.seq >= firstLive) {
          this.#gapFrom = firstLive;
          return;
        }
        sendLine(this.#sse!, line);
        after = line.seq;
        this.#gapFrom = after;
        if (firstLive === undefined) this.#lastSent = Math.max(this.#lastSent, line.seq);
      }
      if (lines.length < PAGE) return;
    }
  }

  async #sendStored(after: number): Promise<void> {
    let cursor = after;
    for (;;) {
      const lines = await this.#rt.output(this.#id, { ...(cursor >= 0 ? { after: cursor } : {}), limit: PAGE });
      for (const line of lines) {
        sendLine(this.#sse!, line);
        cursor = line.seq;
      }
      this.#lastSent = Math.max(this.#lastSent, cursor);
      if (lines.length < PAGE || this.#phase === 'ended') return;
    }
  }

  #finish(event: EndEvent | undefined): void {
    const sse = this.#sse;
    this.dispose();
    if (!sse) return;
    if (event) sse.send('end', event);
    else sse.send('shutdown', { reason: 'the runtime stopped before the task ended; reconnect later' });
    sse.close();
  }
}

/** An output line as event data, written by hand: the same JSON as `JSON.stringify(line)`, a few times faster. */
function sendLine(sse: SseStream, line: OutputLine): void {
  sse.sendJson('output', `{"seq":${line.seq},"stream":"${line.stream}","text":${JSON.stringify(line.text)},"at":${line.at}}`, line.seq);
}

function isFinal(state: TaskState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled' || state === 'timed_out';
}

/** The `end` event of a task that was already final when the client connected. */
export function endFromView(view: TaskView): EndEvent {
  const event: EndEvent = { state: view.state, attempts: view.attempts };
  if (view.state === 'succeeded') event.result = view.result;
  if (view.error !== undefined && view.state !== 'succeeded') event.error = publicError(view.error);
  return event;
}
