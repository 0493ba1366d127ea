/**
 * `rt.flow(spec)`: a tree of tasks where each parent waits for its children (src/flow.ts has the store rules).
 * This file validates the spec and turns it into one batch of `NewTask`s, parents before their children, so the
 * store writes the whole flow in one transaction.
 *
 * Limits, checked at the door: only the root may carry an idempotency `key` (a second flow with the same key
 * creates nothing and answers with the first root); no `dedup` anywhere; a task with children cannot be delayed
 * (`delay`, `runAt`): it runs when its children are done.
 */
import { invalidOption } from './errors.ts';
import { plainObject } from './options.ts';
import type { EnqueueOptions } from './runtime.ts';
import { FLOW_POLICIES, FLOW_WAITING_RUN_AT, type FlowPolicy, type NewTask } from './task.ts';

/** One task of a flow: a leaf, or a parent of further children. */
export interface FlowNode {
  name: string;
  input?: unknown;
  options?: EnqueueOptions;
  /** Tasks this one waits for; they run first (at once, in parallel within the runtime's limits). */
  children?: FlowNode[];
  /** What a child that fails, times out or is cancelled does to this task. @default 'fail' */
  onChildFailure?: FlowPolicy;
}

/** `rt.flow()`: the root has at least one child. */
export interface FlowSpec extends FlowNode {
  children: FlowNode[];
}

const NODE_KEYS = new Set(['name', 'input', 'options', 'children', 'onChildFailure']);

/** Builds one stored task from a node (the runtime's validation of name, input and options). */
export type BuildTask = (name: string, input: unknown, options: EnqueueOptions, path: string) => Promise<NewTask>;

/** Why: a flow is stored in one batch, parents first, so one transaction holds it all. */
export async function buildFlowTasks(spec: FlowSpec, build: BuildTask): Promise<NewTask[]> {
  const out: NewTask[] = [];
  await addNode(spec, 'flow', undefined, true, build, out);
  return out;
}

async function addNode(raw: unknown, path: string, parentId: string | undefined, root: boolean, build: BuildTask, out: NewTask[]): Promise<void> {
  const node = plainObject(raw, path, NODE_KEYS) as unknown as FlowNode;
  const children = node.children;
  if (children !== undefined && (!Array.isArray(children) || children.length === 0)) {
    throw invalidOption(`${path}.children`, 'a non-empty array of { name, input, options, children }', children);
  }
  if (root && children === undefined) throw invalidOption(`${path}.children`, 'a non-empty array of { name, input, options, children }', children);
  const policy = node.onChildFailure ?? 'fail';
  if (!FLOW_POLICIES.includes(policy)) throw invalidOption(`${path}.onChildFailure`, "'fail', 'continue' or 'ignore'", node.onChildFailure);
  if (children === undefined && node.onChildFailure !== undefined) throw invalidOption(`${path}.onChildFailure`, 'absent on a task without children', node.onChildFailure);
  const options = (node.options ?? {}) as EnqueueOptions;
  const o = plainObject(options, `${path}.options`);
  if (o.dedup !== undefined) throw invalidOption(`${path}.options.dedup`, 'absent (dedup does not apply to flows)', o.dedup);
  if (!root && o.key !== undefined) throw invalidOption(`${path}.options.key`, 'absent (only the root of a flow may have a key)', o.key);
  if (children !== undefined) {
    for (const k of ['delay', 'runAt'] as const) {
      if (o[k] !== undefined) throw invalidOption(`${path}.options.${k}`, 'absent (a task with children runs when they are done)', o[k]);
    }
  }
  const task = await build(node.name, node.input, options, `${path}.options`);
  if (parentId !== undefined) task.parentId = parentId;
  out.push(task);
  if (children === undefined) return;
  task.flow = { pending: children.length, policy };
  task.runAt = FLOW_WAITING_RUN_AT;
  for (let i = 0; i < children.length; i++) await addNode(children[i], `${path}.children[${i}]`, task.id, false, build, out);
}
