/**
 * Compile-time tests of the protocol: `tsc --noEmit -p .` fails if any `@ts-expect-error` below stops being an
 * error, i.e. if the bus starts accepting a misspelled message type, a wrong payload or an unknown topic.
 * Nothing here runs: the functions are only type-checked (test/types/types.test.ts imports the file so that it
 * is part of the suite, and checks it with the compiler).
 */
import type { Supervisor } from '../../src/actor/supervisor.ts';
import { ask } from '../../src/bus/ask.ts';
import type { Bus } from '../../src/bus/bus.ts';
import type { MessageOf } from '../../src/bus/message.ts';
import { createExecutorAbort, createExecutorLeases } from '../../actors/executor/messages.ts';
import type { TroupeMessage } from '../../actors/messages.ts';
import { createSchedulerDemand, createSchedulerWake } from '../../actors/scheduler/messages.ts';
import { createTaskQueued } from '../../actors/task/messages.ts';
import { createReply, createTrackerLeases, type Reply } from '../../actors/tracker/messages.ts';
import type { BusProbe } from '../helpers/bus-probe.ts';

/** Things that must compile. */
export function accepted(bus: Bus<TroupeMessage>, probe: BusProbe<TroupeMessage>): void {
  bus.tell('scheduler', 'executor', { type: 'executor.poke' });
  bus.tell('test', 'scheduler', { type: 'scheduler.wake', reason: 'enqueue' });
  bus.tell('test', 'scheduler', createSchedulerDemand(2, { hash: 1 }, []));
  bus.tell('test', 'executor', createExecutorAbort('0190000000000000aabbccddeeff', 'cancel'));
  bus.tell('tracker', 'executor', createExecutorLeases());
  bus.tell('executor', 'tracker', createTrackerLeases(['0190000000000000aabbccddeeff']));
  bus.publish('tracker', createTaskQueued('0190000000000000aabbccddeeff', 'hash', 0, 0));
  bus.subscribe('task.succeeded', (m) => {
    const result: unknown = m.result;
    const ms: number = m.durationMs;
    void result;
    void ms;
  });
  bus.subscribe('actor.crashed', (m) => void m.error.message);
  void bus.hasSubscribers('task.progress');
  void probe.next('task.failed').then((record) => void record.msg.error.message);
  void ask<TroupeMessage, Reply>(bus, 'test', 'tracker', (replyTo) => ({ type: 'tracker.flush', replyTo })).then((reply) => {
    if (reply.ok) void reply.value;
    else void reply.error.code;
  });
  const narrowed: MessageOf<TroupeMessage, 'scheduler.trigger'> = { type: 'scheduler.trigger', id: 's1', replyTo: 'me' };
  void narrowed;
  void createReply(1);
}

/** Things that must not compile. */
export function refused(bus: Bus<TroupeMessage>, probe: BusProbe<TroupeMessage>, sup: Supervisor<TroupeMessage>): void {
  // @ts-expect-error a misspelled message type
  bus.tell('test', 'scheduler', { type: 'scheduler.wak', reason: 'x' });
  // @ts-expect-error a bare string is not a message
  bus.tell('test', 'scheduler', 'scheduler.wake');
  // @ts-expect-error a wrong payload type
  bus.tell('test', 'scheduler', { type: 'scheduler.wake', reason: 42 });
  // @ts-expect-error a missing payload field (perName, exclude)
  bus.tell('test', 'scheduler', { type: 'scheduler.demand', slots: 1 });
  // @ts-expect-error a field of another message
  bus.tell('test', 'executor', { type: 'executor.poke', reason: 'x' });
  // @ts-expect-error the executor's answer names the tasks it holds
  bus.tell('executor', 'tracker', { type: 'tracker.leases' });
  // @ts-expect-error a wrong literal in a payload union
  bus.tell('test', 'executor', { type: 'executor.abort', id: 'x', reason: 'because' });
  // @ts-expect-error publishing a misspelled fact
  bus.publish('tracker', { type: 'task.succeded', id: 'x', name: 'n', at: 0, attempt: 1, result: 1, durationMs: 1 });
  // @ts-expect-error subscribing to a topic that does not exist
  bus.subscribe('task.exploded', () => {});
  // @ts-expect-error the listener gets the narrowed message: task.succeeded has no `error`
  bus.subscribe('task.succeeded', (m) => m.error);
  // @ts-expect-error a listener for another message type
  bus.subscribe('task.failed', (m: MessageOf<TroupeMessage, 'task.succeeded'>) => void m);
  // @ts-expect-error hasSubscribers takes known types only
  void bus.hasSubscribers('task.nothing');
  // @ts-expect-error a probe waits for known types only
  void probe.next('task.nothing');
  // @ts-expect-error constructors type their arguments
  void createSchedulerWake(42);
  // @ts-expect-error an ask must build a real message
  void ask<TroupeMessage, Reply>(bus, 'test', 'tracker', (replyTo) => ({ type: 'tracker.flsh', replyTo }));
  // @ts-expect-error the reply type must be one of the bus's messages
  void ask<TroupeMessage, { type: 'made.up' }>(bus, 'test', 'tracker', (replyTo) => ({ type: 'tracker.flush', replyTo }));
  // @ts-expect-error a supervisor event that does not exist
  sup.on({ exploded: () => {} });
}
