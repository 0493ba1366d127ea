import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TreeNode } from '../../src/actor/actor.ts';
import { Supervisor } from '../../src/actor/supervisor.ts';
import { flattenTree, renderTree } from '../../src/actor/tree.ts';
import { Bus } from '../../src/bus/bus.ts';
import { ManualClock } from '../../src/clock.ts';

const tree: TreeNode = {
  address: 'root',
  kind: 'supervisor',
  status: 'running',
  restarts: 0,
  strategy: 'one-for-one',
  children: [
    { address: 'scheduler', kind: 'actor', status: 'running', restarts: 0, mailbox: 0 },
    {
      address: 'executor', kind: 'actor', status: 'running', restarts: 0, mailbox: 2, info: { running: 1, limit: 16 },
      children: [{ address: 'task/abc', kind: 'task', status: 'running', restarts: 0, info: { name: 'hash' } }],
    },
    {
      address: 'sub', kind: 'supervisor', status: 'running', restarts: 1, strategy: 'one-for-all',
      children: [{ address: 'sub/a', kind: 'actor', status: 'stopped', restarts: 3 }],
    },
    { address: 'tracker', kind: 'actor', status: 'stopping', restarts: 2 },
  ],
};

describe('renderTree', () => {
  it('draws an indented tree with status, restart counts, mailbox and info', () => {
    assert.equal(
      renderTree(tree),
      [
        'root  supervisor one-for-one  running',
        '├─ scheduler  running',
        '├─ executor  running  mailbox=2  running=1  limit=16',
        '│  └─ task/abc  task  running  name=hash',
        '├─ sub  supervisor one-for-all  running  restarts=1',
        '│  └─ sub/a  stopped  restarts=3',
        '└─ tracker  stopping  restarts=2',
      ].join('\n'),
    );
  });

  it('has no escape codes unless color is asked for, and colours the status when it is', () => {
    assert.doesNotMatch(renderTree(tree), /\u001b/);
    const colored = renderTree(tree, { color: true });
    assert.match(colored, /\u001b\[32mrunning\u001b\[39m/, 'running is green');
    assert.match(colored, /\u001b\[31mstopped\u001b\[39m/, 'stopped is red');
    assert.equal(colored.replace(/\u001b\[\d+m/g, ''), renderTree(tree));
  });

  it('strips control characters that came from outside (task names in info)', () => {
    const node: TreeNode = { address: 'x', kind: 'actor', status: 'running', restarts: 0, info: { name: 'evil\u001b[2J\nname' } };
    const text = renderTree(node);
    assert.doesNotMatch(text, /[\u0000-\u001f]/);
    assert.equal(text, 'x  running  name=evil?[2J?name');
  });

  it('renders objects in info compactly and truncates long values', () => {
    const node: TreeNode = { address: 'x', kind: 'actor', status: 'running', restarts: 0, info: { names: ['a', 'b'], long: 'y'.repeat(100), gone: undefined } };
    assert.equal(renderTree(node), `x  running  names=["a","b"]  long=${'y'.repeat(57)}...`);
  });

  it('renders a real supervisor snapshot', async () => {
    const clock = new ManualClock();
    const bus = new Bus<{ type: 'noop' }>(clock);
    const root = new Supervisor(bus, clock, { address: 'root' });
    await root.startChild({ address: 'a', create: () => ({ receive() {} }) });
    await root.startChild(Supervisor.childSpec({ address: 'sub' }, [{ address: 'sub/b', create: () => ({ receive() {} }) }]));
    assert.equal(
      renderTree(root.snapshot()),
      ['root  supervisor one-for-one  running', '├─ a  running', '└─ sub  supervisor one-for-one  running', '   └─ sub/b  running'].join('\n'),
    );
    await root.stop();
  });
});

describe('flattenTree', () => {
  it('lists nodes in pre-order with depth, parent, child count and last-sibling flags', () => {
    const flat = flattenTree(tree);
    assert.deepEqual(
      flat.map((n) => [n.address, n.depth, n.parent, n.childCount, n.last]),
      [
        ['root', 0, undefined, 4, true],
        ['scheduler', 1, 'root', 0, false],
        ['executor', 1, 'root', 1, false],
        ['task/abc', 2, 'executor', 0, true],
        ['sub', 1, 'root', 1, false],
        ['sub/a', 2, 'sub', 0, true],
        ['tracker', 1, 'root', 0, true],
      ],
    );
  });

  it('keeps each node’s facts and drops nothing but the children', () => {
    const flat = flattenTree(tree);
    assert.deepEqual(flat[2], {
      address: 'executor', depth: 1, parent: 'root', kind: 'actor', status: 'running', restarts: 0,
      mailbox: 2, info: { running: 1, limit: 16 }, childCount: 1, last: false,
    });
    assert.deepEqual(flat[0], {
      address: 'root', depth: 0, parent: undefined, kind: 'supervisor', status: 'running', restarts: 0,
      strategy: 'one-for-one', childCount: 4, last: true,
    });
  });
});
