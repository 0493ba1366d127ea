/**
 * The advisor that learns: recommendations for one task name from its measured history, each with the numbers
 * behind it. The rules live in `advice-rules.ts`, their thresholds in `thresholds.ts`; this file holds the shapes
 * and the entry point.
 *
 * Below `MIN_RUNS_FOR_ADVICE` measured attempts the history says too little, and only advice that follows from
 * the definition itself is given (no timeout, declared streaming, a schedule that lets runs pile up).
 */
import { invalidOption } from '../errors.ts';
import type { RetryPolicy } from '../task.ts';
import { measuredRules, traitRules } from './advice-rules.ts';
import { MIN_RUNS_FOR_ADVICE } from './thresholds.ts';
import { TaskStats, type TaskStatsSummary } from './task-stats.ts';

export type RecommendationTopic = 'executor' | 'timeout' | 'concurrency' | 'retry' | 'streaming' | 'schedule';

export interface Recommendation {
  topic: RecommendationTopic;
  /** One or two sentences a person can act on. */
  advice: string;
  /** The setting to use, in the shape of the task definition where there is one. */
  value?: unknown;
  /** The measured numbers (and settings) the advice rests on. */
  evidence: Record<string, number | string>;
}

/** How the task is defined now (the resolved definition). */
export interface TaskProfile {
  kind: 'handler' | 'command' | 'inline';
  /** 0 = no timeout. */
  timeoutMs: number;
  /** The name's own limit; undefined = only the global one. */
  concurrency?: number;
  retry: RetryPolicy;
  /** Its output or progress is watched while it runs (started with `rt.start`). */
  streaming?: boolean;
  /** The schedules that fire this task, with the time between their slots (for cron: between two next slots). */
  schedules?: ReadonlyArray<{ id: string; intervalMs?: number; overlap?: 'skip' | 'queue' | 'allow' }>;
}

export interface HostProfile {
  /** Cores the runtime may use (`os.availableParallelism()`). */
  cores: number;
}

export interface TaskAdvice {
  name: string;
  basedOn: {
    /** Attempts measured since the record began. */
    runs: number;
    /** Attempts in the rolling window the figures come from. */
    window: number;
    /** The oldest attempt in the window (epoch ms). */
    since?: number;
  };
  /** False when the window holds fewer than `MIN_RUNS_FOR_ADVICE` attempts: the advice is from the definition only. */
  enoughData: boolean;
  /**
   * The window's figures the rules read, those that were measured (see RunObservation for what CPU and memory
   * mean per kind of task). Absent before the first attempt.
   */
  measured?: MeasuredFigures;
  note?: string;
  recommendations: Recommendation[];
}

/** Percentiles of the window (TaskStatsSummary), as `advise` shows them. */
export type MeasuredFigures = Partial<Pick<TaskStatsSummary, 'durationMs' | 'waitMs' | 'cpuMs' | 'cpuPerSecond' | 'peakRssMb' | 'outputLines'>>;

/** The measured figures of a summary, without the ones no attempt carried. */
function measuredFigures(summary: TaskStatsSummary): MeasuredFigures {
  const out: MeasuredFigures = {};
  if (summary.durationMs) out.durationMs = summary.durationMs;
  if (summary.waitMs) out.waitMs = summary.waitMs;
  if (summary.cpuMs) out.cpuMs = summary.cpuMs;
  if (summary.cpuPerSecond !== undefined) out.cpuPerSecond = summary.cpuPerSecond;
  if (summary.peakRssMb) out.peakRssMb = summary.peakRssMb;
  if (summary.outputLines) out.outputLines = summary.outputLines;
  return out;
}

/** Recommends how to run `name`, from its measured statistics, its definition and the host. */
export function recommend(name: string, stats: TaskStats | TaskStatsSummary | undefined, definition: TaskProfile, host: HostProfile): TaskAdvice {
  if (typeof definition !== 'object' || definition === null) throw invalidOption('definition', 'an object', definition);
  if (!['handler', 'command', 'inline'].includes(definition.kind)) throw invalidOption('definition.kind', "'handler', 'command' or 'inline'", definition.kind);
  if (!(definition.timeoutMs >= 0)) throw invalidOption('definition.timeoutMs', 'a non-negative number', definition.timeoutMs);
  if (typeof host !== 'object' || host === null || !(host.cores >= 1)) throw invalidOption('host.cores', 'a number ≥ 1', host?.cores);
  const summary = stats instanceof TaskStats ? stats.summary() : stats;
  const basedOn: TaskAdvice['basedOn'] = { runs: summary?.runs ?? 0, window: summary?.window ?? 0 };
  if (summary?.since !== undefined) basedOn.since = summary.since;
  const measured = summary && summary.window > 0 ? { measured: measuredFigures(summary) } : {};
  if (!summary || summary.window < MIN_RUNS_FOR_ADVICE) {
    return {
      name,
      basedOn,
      enoughData: false,
      note: `Only ${basedOn.window} measured ${basedOn.window === 1 ? 'attempt' : 'attempts'} (fewer than ${MIN_RUNS_FOR_ADVICE}): advice from the definition alone.`,
      ...measured,
      recommendations: traitRules(definition, basedOn.window),
    };
  }
  return { name, basedOn, enoughData: true, ...measured, recommendations: measuredRules(summary, definition, host) };
}
