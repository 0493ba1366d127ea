/**
 * troupe's public API: named exports only. Anything not listed here is internal.
 */
export { createRuntime, Runtime, RuntimeStatus, toView } from './runtime.ts';
export type { CreateRuntimeOptions, EnqueueOptions, TaskView, Settled, ScheduleOptions, CloseOptions } from './runtime.ts';
export type { TaskHandle, TaskHandleEvents } from './task-handle.ts';
export type { RuntimeOptions, PoolOptions, RetryOptions, OutputOptions, Logger } from './options.ts';
export type { TaskDefinition, HandlerDefinition, CommandDefinition, InlineDefinition, TaskContext, StandardSchema } from './registry.ts';
export {
  TroupeError,
  PermanentError,
  RetryableError,
  DelayError,
  ErrorCodes,
  isTroupeError,
  serializeError,
  deserializeError,
} from './errors.ts';
export type { ErrorCode, SerializedError } from './errors.ts';
export { defineTask } from './define-task.ts';
export { defineConfig } from './config.ts';
export type { TroupeConfig } from './config.ts';
export { createResourcePool } from './pool/resource-pool.ts';
export type { ResourcePool, ResourcePoolOptions } from './pool/resource-pool.ts';
export { adviseFromTraits } from './advisor.ts';
export type { TaskAdvice, Recommendation, MeasuredFigures } from './advice/recommend.ts';
export { createServer } from './http/server.ts';
export { startServer } from './http/listen.ts';
export type { Advice, Pattern, TaskTraits } from './advisor.ts';
export { systemClock, ManualClock } from './clock.ts';
export type { Clock } from './clock.ts';
export type { Store, Strategy, ScheduleRecord, ListFilter, LiveCounts, LiveState, QueueCounts, StoreChange, RateLimit } from './store/store.ts';
export type { TaskState, TaskRecord, OutputLine, Progress, Transition, Timings, FlowChild, FlowPolicy, FlowState } from './task.ts';
export type { FlowSpec, FlowNode } from './flow-spec.ts';
export type { DedupOptions } from './dedup.ts';
export type { RateLimitOptions } from './rate-limit.ts';
export type { TaskFact, TaskFactType } from '../actors/task/messages.ts';
export type { TroupeMessage } from '../actors/messages.ts';
export type { TreeNode } from './actor/actor.ts';
export type { Duration, Size } from './units.ts';
