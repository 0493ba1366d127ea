/**
 * Read-only views of a supervision-tree snapshot (`Supervisor.snapshot()`): an indented text tree for the REPL's
 * `tree` command, and a flat pre-order list for tables and the HTTP actor view.
 *
 *   root  supervisor one-for-one  running
 *   ├─ scheduler  running
 *   ├─ executor  running  mailbox=2  running=1
 *   │  └─ task/0190…  task  running
 *   └─ tracker  running  restarts=2
 *
 * Text that came from outside (task names in `info`) is stripped of control characters, so a snapshot cannot
 * drive the operator's terminal.
 */
import pc from 'picocolors';
import type { ActorAddress } from '../ids.ts';
import type { TreeNode } from './actor.ts';

export interface RenderTreeOptions {
  /** Colour the status and dim the details (ANSI escapes). @default false */
  color?: boolean;
}

/** One node of a flattened tree, in pre-order. */
export interface FlatTreeNode {
  address: ActorAddress;
  /** 0 for the node given to `flattenTree`. */
  depth: number;
  /** The parent's address; undefined at the top. */
  parent: ActorAddress | undefined;
  kind: TreeNode['kind'];
  status: string;
  restarts: number;
  strategy?: string;
  mailbox?: number;
  info?: Record<string, unknown>;
  /** Number of direct children. */
  childCount: number;
  /** true when this is the last child of its parent (true at the top). */
  last: boolean;
}

/** Lists a snapshot in pre-order with depths, for tables and JSON views that do not nest. */
export function flattenTree(node: TreeNode): FlatTreeNode[] {
  const out: FlatTreeNode[] = [];
  const visit = (n: TreeNode, depth: number, parent: ActorAddress | undefined, last: boolean): void => {
    const children = n.children ?? [];
    const flat: FlatTreeNode = {
      address: n.address,
      depth,
      parent,
      kind: n.kind,
      status: String(n.status),
      restarts: n.restarts,
      childCount: children.length,
      last,
    };
    if (n.strategy !== undefined) flat.strategy = n.strategy;
    if (n.mailbox !== undefined) flat.mailbox = n.mailbox;
    if (n.info !== undefined) flat.info = n.info;
    out.push(flat);
    children.forEach((child, i) => visit(child, depth + 1, n.address, i === children.length - 1));
  };
  visit(node, 0, undefined, true);
  return out;
}

/** Renders a snapshot as an indented text tree with each actor's status and restart count (the REPL `tree`). */
export function renderTree(node: TreeNode, { color = false }: RenderTreeOptions = {}): string {
  const c = pc.createColors(color);
  const lines: string[] = [];
  const visit = (n: TreeNode, prefix: string, branch: string): void => {
    lines.push(prefix + branch + describeNode(n, c));
    const children = n.children ?? [];
    const childPrefix = prefix + (branch === '' ? '' : branch === BRANCH_LAST ? '   ' : '│  ');
    children.forEach((child, i) => visit(child, childPrefix, i === children.length - 1 ? BRANCH_LAST : BRANCH));
  };
  visit(node, '', '');
  return lines.join('\n');
}

const BRANCH = '├─ ';
const BRANCH_LAST = '└─ ';

type Colors = ReturnType<typeof pc.createColors>;

function describeNode(n: TreeNode, c: Colors): string {
  const parts = [c.bold(clean(n.address))];
  if (n.kind !== 'actor') parts.push(c.dim(n.strategy ? `${n.kind} ${clean(n.strategy)}` : n.kind));
  parts.push(paintStatus(clean(String(n.status)), c));
  if (n.restarts > 0) parts.push(c.yellow(`restarts=${n.restarts}`));
  if (n.mailbox !== undefined && n.mailbox > 0) parts.push(c.dim(`mailbox=${n.mailbox}`));
  for (const [key, value] of Object.entries(n.info ?? {})) {
    if (value === undefined) continue;
    parts.push(c.dim(`${clean(key)}=${formatValue(value)}`));
  }
  return parts.join('  ');
}

const GOOD = new Set(['running', 'succeeded']);
const WAITING = new Set(['idle', 'stopping', 'queued', 'scheduled', 'retrying']);

function paintStatus(status: string, c: Colors): string {
  if (GOOD.has(status)) return c.green(status);
  if (WAITING.has(status)) return c.yellow(status);
  return c.red(status);
}

function formatValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === null) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  text = clean(text);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// Control characters (C0, DEL, C1) would let a task name move the cursor or recolour the terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

function clean(text: string): string {
  return text.replace(CONTROL, '?');
}
