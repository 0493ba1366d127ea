/**
 * Flows: a parent task that waits for its children. The rules every store applies, written once:
 *
 * - A parent is stored `scheduled` at `FLOW_WAITING_RUN_AT` with `flow.pending` = its number of children; its
 *   children carry `parentId`. Nothing makes it due by time.
 * - When a child reaches a final state (succeeded, failed, timed_out, cancelled), the same transaction applies
 *   `decideFlowStep` to the parent: one fewer pending child; while the parent waits, at zero it becomes
 *   `queued` (due now); with policy `fail`, a child that did not succeed fails the parent at once
 *   (TROUPE_ERR_TASK_FAILED, `details.child`). A parent failed that way is itself a final child of its own parent,
 *   so nested flows cascade in the same transaction.
 * - When the parent is claimed, the claim returns its children's outcomes (`children`), filtered by policy:
 *   `ignore` leaves out the children that did not succeed.
 * - A parent that is no longer waiting (cancelled, failed by policy, retried by hand) is only counted:
 *   `flow.pending` stays the number of its children not final yet. A child retried by hand is pending again
 *   (one more), so a parent still waiting waits for it too.
 * - Cancelling a parent cancels its descendants that are not final, parents first (so no child makes a parent
 *   due or fails it on the way), in the cancel's transaction.
 */
import { ErrorCodes, type SerializedError } from './errors.ts';
import type { TaskId } from './ids.ts';
import type { FlowChild, FlowPolicy, FlowState, TaskState } from './task.ts';

/** Reason written in the history when the last child makes the parent due. */
export const FLOW_RELEASED_REASON = 'children done';
/** Reason written in the history when a child fails a parent under policy `fail`. */
export const FLOW_FAILED_REASON = 'child failed';

/**
 * Reason written in the history and error of a flow's descendant cancelled with it (`rt.cancel` of a parent cancels
 * its descendants that are not final).
 */
export function flowCancelledReason(rootId: TaskId): string {
  return `flow ${rootId} cancelled`;
}

/** What the store does to a flow parent when one of its children becomes final. */
export type FlowStep =
  | { kind: 'none' }
  | { kind: 'count'; pending: number }
  | { kind: 'release' }
  | { kind: 'fail' };

/** Why: the one decision every store makes when a child ends (see the header). */
export function decideFlowStep(parent: { state: TaskState; flow?: FlowState | undefined }, childState: TaskState): FlowStep {
  const flow = parent.flow;
  if (flow === undefined || !(flow.pending > 0)) return { kind: 'none' };
  // A parent no longer waiting only keeps its count true.
  if (parent.state !== 'scheduled') return { kind: 'count', pending: flow.pending - 1 };
  if (childState !== 'succeeded' && flow.policy === 'fail') return { kind: 'fail' };
  if (flow.pending <= 1) return { kind: 'release' };
  return { kind: 'count', pending: flow.pending - 1 };
}

/**
 * Why: the error a parent under policy `fail` ends with; built the same in every store (the PostgreSQL trigger
 * writes the same JSON).
 */
export function createChildFailedError(child: { id: TaskId; name: string; state: TaskState }): SerializedError {
  return {
    name: 'TroupeError',
    message: `Child task \`${child.name}\` (${child.id}) ended ${child.state}`,
    code: ErrorCodes.TASK_FAILED,
    details: { child: child.id, state: child.state },
    hint: 'permanent',
  };
}

/** Why: `ctx.children` under a policy: `ignore` shows only the children that succeeded. */
export function visibleChildren(policy: FlowPolicy, children: readonly FlowChild[]): FlowChild[] {
  return policy === 'ignore' ? children.filter((c) => c.state === 'succeeded') : [...children];
}
