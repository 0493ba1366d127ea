/**
 * The whole protocol: every message any actor sends or publishes. The bus is typed with this union, so a
 * misspelled `type` does not compile.
 */
import type { ExecutorMessage } from './executor/messages.ts';
import type { SchedulerMessage } from './scheduler/messages.ts';
import type { TaskFact } from './task/messages.ts';
import type { Reply, TrackerMessage } from './tracker/messages.ts';
import type { SystemFact } from './system-messages.ts';

export type TroupeMessage = TaskFact | SchedulerMessage | ExecutorMessage | TrackerMessage | Reply | SystemFact;
