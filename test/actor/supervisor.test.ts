import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Actor, ActorContext, ChildSpec, RestartType } from '../../src/actor/actor.ts';
import { Supervisor, type SupervisorOptions } from '../../src/actor/supervisor.ts';
import { Bus } from '../../src/bus/bus.ts';
import { flushMicrotasks, ManualClock } from '../../src/clock.ts';
import { ErrorCodes, isTroupeError, type TroupeError } from '../../src/errors.ts';
import { waitFor } from '../helpers/wait-for.ts';

type Msg =
  | { type: 'work'; n: number }
  | { type: 'boom' }
  | { type: 'boom-async' }
  | { type: 'fail-later' };

const work = (n: number): Msg => ({ type: 'work', n });
const boom: Msg = { type: 'boom' };

/** A world: bus, clock, a log of lifecycle calls, the instances created per address, and supervisor events. */
function createWorld() {
  const clock = new ManualClock();
  const bus = new Bus<Msg>(clock);
  const log: string[] = [];
  const events: string[] = [];
  const errors: Array<{ event: string; address: string; error: unknown }> = [];
  const instances = new Map<string, TestActor[]>();

  class TestActor implements Actor<Msg> {
    readonly id: string;
    readonly received: number[] = [];
    constructor(readonly ctx: ActorContext<Msg>) {
      const list = instances.get(ctx.self) ?? [];
      list.push(this);
      instances.set(ctx.self, list);
      this.id = `${ctx.self}#${list.length}`;
      log.push(`create ${this.id}`);
    }
    start(): void {
      log.push(`start ${this.id}`);
    }
    stop(): void {
      log.push(`stop ${this.id}`);
    }
    describe(): Record<string, unknown> {
      return { received: this.received.length };
    }
    receive(msg: Msg): void | Promise<void> {
      switch (msg.type) {
        case 'work':
          this.received.push(msg.n);
          return;
        case 'boom':
          throw new Error(`boom in ${this.id}`);
        case 'boom-async':
          return Promise.reject(new Error(`async boom in ${this.id}`));
        case 'fail-later':
          setImmediate(() => this.ctx.fail(new Error(`late failure in ${this.id}`)));
          return;
      }
    }
  }

  const spec = (address: string, restart?: RestartType): ChildSpec<Msg> => ({
    address,
    create: (ctx) => new TestActor(ctx),
    ...(restart ? { restart } : {}),
  });

  const watch = (sup: Supervisor<Msg>) =>
    sup.on({
      crashed: (address, error) => {
        events.push(`crashed ${address}`);
        errors.push({ event: 'crashed', address, error });
      },
      restarted: (address, restarts) => events.push(`restarted ${address} ${restarts}`),
      escalated: (address, error) => {
        events.push(`escalated ${address}`);
        errors.push({ event: 'escalated', address, error });
      },
    });

  const supervisor = (options: Partial<SupervisorOptions> = {}) => {
    const sup = new Supervisor<Msg>(bus, clock, { address: 'root', ...options });
    watch(sup);
    return sup;
  };

  const latest = (address: string): TestActor => {
    const list = instances.get(address);
    assert.ok(list && list.length > 0, `no instance at ${address}`);
    return list[list.length - 1]!;
  };
  const count = (address: string): number => instances.get(address)?.length ?? 0;
  const tell = (to: string, msg: Msg) => bus.tell('test', to, msg);

  return { clock, bus, log, events, errors, spec, supervisor, watch, latest, count, tell };
}

describe('Supervisor: one-for-one', () => {
  it('restarts only the crashed child, with a new started instance that gets later messages', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    for (const a of ['a', 'b', 'c']) await sup.startChild(w.spec(a));
    w.log.length = 0;

    w.tell('b', work(1));
    w.tell('b', boom);
    w.tell('b', work(2));
    await waitFor(() => w.events.includes('restarted b 1'));
    await waitFor(() => w.latest('b').received.length === 1);

    assert.deepEqual(w.events, ['crashed b', 'restarted b 1']);
    assert.equal(w.count('a'), 1);
    assert.equal(w.count('c'), 1);
    assert.equal(w.count('b'), 2);
    assert.deepEqual(w.log, ['stop b#1', 'create b#2', 'start b#2'], 'the crashed instance is stopped (cleanup) before its replacement starts');
    assert.deepEqual(w.latest('b').received, [2], 'the message after the crash goes to the new instance');
    assert.deepEqual(w.count('b') === 2 && sup.actorAt('b'), w.latest('b'));
    await sup.stop();
  });

  it('treats a rejected async receive as a crash', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('a'));
    w.tell('a', { type: 'boom-async' });
    await waitFor(() => w.events.includes('restarted a 1'));
    assert.equal(w.count('a'), 2);
    await sup.stop();
  });

  it('restarts after an async crash reported through ctx.fail', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('a'));
    w.tell('a', { type: 'fail-later' });
    await waitFor(() => w.events.includes('restarted a 1'));
    const crash = w.errors.find((e) => e.event === 'crashed')!;
    assert.match(String((crash.error as Error).message), /late failure in a#1/);
    w.tell('a', work(7));
    await waitFor(() => w.latest('a').received.length === 1);
    await sup.stop();
  });

  it('ignores a crash reported by an instance that was already replaced', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('a'));
    const first = w.latest('a');
    w.tell('a', boom);
    await waitFor(() => w.events.includes('restarted a 1'));
    first.ctx.fail(new Error('stale'));
    await flushMicrotasks();
    assert.deepEqual(w.events, ['crashed a', 'restarted a 1']);
    assert.equal(w.count('a'), 2);
    await sup.stop();
  });

  it('counts one crash when the same instance reports it twice', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('a'));
    const first = w.latest('a');
    first.ctx.fail(new Error('one'));
    first.ctx.fail(new Error('two'));
    await waitFor(() => w.events.includes('restarted a 1'));
    await flushMicrotasks();
    assert.deepEqual(w.events, ['crashed a', 'restarted a 1']);
    assert.equal(w.count('a'), 2);
    await sup.stop();
  });

  it('does not restart a temporary child: it is removed and its address freed', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('t', 'temporary'));
    await sup.startChild(w.spec('p'));
    w.tell('t', boom);
    await waitFor(() => !w.bus.has('t'));
    await flushMicrotasks();
    assert.deepEqual(w.events, ['crashed t']);
    assert.equal(w.count('t'), 1);
    assert.deepEqual(sup.snapshot().children?.map((c) => c.address), ['p']);
    assert.ok(w.log.includes('stop t#1'));
    await sup.stop();
  });

  it('restarts a transient child after a crash', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('t', 'transient'));
    w.tell('t', boom);
    await waitFor(() => w.events.includes('restarted t 1'));
    assert.equal(w.count('t'), 2);
    await sup.stop();
  });
});

describe('Supervisor: one-for-all', () => {
  it('stops every child in reverse order and starts them again in start order', async () => {
    const w = createWorld();
    const sup = w.supervisor({ strategy: 'one-for-all' });
    for (const a of ['a', 'b', 'c']) await sup.startChild(w.spec(a));
    w.log.length = 0;
    w.tell('b', boom);
    await waitFor(() => w.events.includes('restarted c 1'));
    assert.deepEqual(w.log, [
      'stop c#1', 'stop b#1', 'stop a#1',
      'create a#2', 'start a#2', 'create b#2', 'start b#2', 'create c#2', 'start c#2',
    ]);
    assert.deepEqual(w.events, ['crashed b', 'restarted a 1', 'restarted b 1', 'restarted c 1']);
    w.tell('a', work(1));
    w.tell('c', work(2));
    await waitFor(() => w.latest('a').received.length === 1 && w.latest('c').received.length === 1);
    await sup.stop();
  });
});

describe('Supervisor: restart intensity and escalation', () => {
  it('escalates when a child crashes more than maxRestarts times in the window', async () => {
    const w = createWorld();
    const escalations: TroupeError[] = [];
    const sup = w.supervisor({ intensity: { maxRestarts: 2, withinMs: 1000 }, onEscalate: (e) => escalations.push(e) });
    await sup.startChild(w.spec('a'));
    await sup.startChild(w.spec('b'));
    for (let i = 1; i <= 2; i++) {
      w.tell('a', boom);
      await waitFor(() => w.events.includes(`restarted a ${i}`));
      await w.clock.advance(100);
    }
    w.log.length = 0;
    w.tell('a', boom);
    await waitFor(() => escalations.length === 1);

    assert.equal(escalations[0]!.code, ErrorCodes.ESCALATED);
    assert.match(String((escalations[0]!.cause as Error).message), /boom in a#3/);
    assert.deepEqual(w.events, ['crashed a', 'restarted a 1', 'crashed a', 'restarted a 2', 'crashed a', 'escalated a']);
    const escalated = w.errors.find((e) => e.event === 'escalated')!;
    assert.ok(isTroupeError(escalated.error) && escalated.error.code === ErrorCodes.ESCALATED);
    assert.deepEqual(w.log, ['stop b#1', 'stop a#3'], 'every child is stopped, last started first');
    assert.equal(sup.status, 'stopped');
    assert.equal(w.bus.has('a'), false);
    assert.equal(w.bus.has('b'), false);
  });

  it('does not escalate when the crashes are spread wider than the window', async () => {
    const w = createWorld();
    const escalations: TroupeError[] = [];
    const sup = w.supervisor({ intensity: { maxRestarts: 2, withinMs: 1000 }, onEscalate: (e) => escalations.push(e) });
    await sup.startChild(w.spec('a'));
    for (let i = 1; i <= 5; i++) {
      w.tell('a', boom);
      await waitFor(() => w.events.includes(`restarted a ${i}`));
      await w.clock.advance(500);
    }
    assert.equal(escalations.length, 0);
    assert.equal(sup.status, 'running');
    assert.equal(w.count('a'), 6);
    await sup.stop();
  });

  it('turns a nested supervisor escalation into a crash of that supervisor, which its parent restarts', async () => {
    const w = createWorld();
    const rootEscalations: TroupeError[] = [];
    const root = w.supervisor({ onEscalate: (e) => rootEscalations.push(e) });
    await root.startChild(w.spec('x'));
    await root.startChild(Supervisor.childSpec<Msg>({ address: 'sub', intensity: { maxRestarts: 1, withinMs: 1000 } }, [w.spec('sub/a'), w.spec('sub/b')]));
    const sub1 = root.actorAt('sub') as Supervisor<Msg>;
    w.watch(sub1);
    assert.equal(w.count('sub/a'), 1);

    w.tell('sub/a', boom);
    await waitFor(() => w.events.includes('restarted sub/a 1'));
    w.tell('sub/a', boom);
    await waitFor(() => w.events.includes('restarted sub 1'));

    assert.deepEqual(w.events, ['crashed sub/a', 'restarted sub/a 1', 'crashed sub/a', 'escalated sub/a', 'crashed sub', 'restarted sub 1']);
    const subCrash = w.errors.find((e) => e.event === 'crashed' && e.address === 'sub')!;
    assert.ok(isTroupeError(subCrash.error) && subCrash.error.code === ErrorCodes.ESCALATED);
    assert.equal(rootEscalations.length, 0);
    const sub2 = root.actorAt('sub') as Supervisor<Msg>;
    assert.notEqual(sub2, sub1, 'a new supervisor instance');
    assert.equal(sub1.status, 'stopped');
    assert.equal(sub2.status, 'running');
    assert.equal(w.count('sub/a'), 3);
    assert.equal(w.count('sub/b'), 2);
    assert.equal(w.count('x'), 1, 'the sibling of the nested supervisor is untouched');
    w.tell('sub/b', work(5));
    await waitFor(() => w.latest('sub/b').received.length === 1);
    await root.stop();
  });

  it('escalates to the root callback when a nested supervisor keeps failing', async () => {
    const w = createWorld();
    const rootEscalations: TroupeError[] = [];
    const root = w.supervisor({ intensity: { maxRestarts: 0, withinMs: 1000 }, onEscalate: (e) => rootEscalations.push(e) });
    await root.startChild(Supervisor.childSpec<Msg>({ address: 'sub', intensity: { maxRestarts: 0, withinMs: 1000 } }, [w.spec('sub/a')]));
    w.tell('sub/a', boom);
    await waitFor(() => rootEscalations.length === 1);
    assert.equal(rootEscalations[0]!.code, ErrorCodes.ESCALATED);
    const inner = rootEscalations[0]!.cause as TroupeError;
    assert.equal(inner.code, ErrorCodes.ESCALATED, 'the cause chain keeps the inner escalation');
    assert.equal(root.status, 'stopped');
    assert.equal(w.bus.has('sub/a'), false);
  });
});

describe('Supervisor: operations', () => {
  it('restartChild replaces the instance by hand without counting against the intensity', async () => {
    const w = createWorld();
    const escalations: TroupeError[] = [];
    const sup = w.supervisor({ intensity: { maxRestarts: 1, withinMs: 1000 }, onEscalate: (e) => escalations.push(e) });
    await sup.startChild(w.spec('a'));
    for (let i = 1; i <= 3; i++) await sup.restartChild('a');
    assert.equal(w.count('a'), 4);
    assert.deepEqual(w.events, ['restarted a 1', 'restarted a 2', 'restarted a 3']);
    assert.ok(w.log.includes('stop a#3') && w.log.includes('start a#4'));
    // One real crash still restarts: the manual restarts were not counted.
    w.tell('a', boom);
    await waitFor(() => w.events.includes('restarted a 4'));
    assert.equal(escalations.length, 0);
    assert.equal(sup.snapshot().children![0]!.restarts, 4);
    await sup.stop();
  });

  it('restartChild reaches a child of a nested supervisor, and refuses an unknown address', async () => {
    const w = createWorld();
    const root = w.supervisor();
    await root.startChild(Supervisor.childSpec<Msg>({ address: 'sub' }, [w.spec('sub/a')]));
    const sub = root.actorAt('sub') as Supervisor<Msg>;
    w.watch(sub);
    await root.restartChild('sub/a');
    assert.equal(w.count('sub/a'), 2);
    assert.equal(root.actorAt('sub/a'), w.latest('sub/a'));
    assert.deepEqual(w.events, ['restarted sub/a 1']);
    await assert.rejects(root.restartChild('nope'), { code: ErrorCodes.UNKNOWN_ACTOR });
    await root.stop();
  });

  it('stopChild stops and removes one child and frees its address', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('a'));
    await sup.startChild(w.spec('b'));
    assert.equal(await sup.stopChild('a'), true);
    assert.ok(w.log.includes('stop a#1'));
    assert.equal(w.bus.has('a'), false);
    assert.equal(sup.actorAt('a'), undefined);
    assert.deepEqual(sup.snapshot().children?.map((c) => c.address), ['b']);
    assert.equal(await sup.stopChild('a'), false);
    w.tell('a', work(1));
    assert.equal(w.bus.stats.deadLetters, 1);
    await sup.stop();
  });

  it('refuses a second child at the same address', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    await sup.startChild(w.spec('a'));
    await assert.rejects(sup.startChild(w.spec('a')), { code: ErrorCodes.CONFLICT });
    assert.equal(w.count('a'), 1);
    await sup.stop();
  });

  it('removes a child whose start() throws and rethrows the error', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    const failing: ChildSpec<Msg> = {
      address: 'f',
      create: () => ({
        receive() {},
        start() {
          throw new Error('cannot start');
        },
      }),
    };
    await assert.rejects(sup.startChild(failing), /cannot start/);
    assert.equal(w.bus.has('f'), false);
    assert.deepEqual(sup.snapshot().children, []);
    await sup.stop();
  });

  it('snapshot describes the subtree: kinds, statuses, restarts, strategy, mailbox, info and actor-owned children', async () => {
    const w = createWorld();
    const root = w.supervisor({ strategy: 'one-for-all' });
    await root.startChild(w.spec('a'));
    await root.startChild({
      address: 'exec',
      create: () => ({
        receive() {},
        describe: () => ({ running: 1 }),
        children: () => [{ address: 'task/1', kind: 'task', status: 'running', restarts: 0 }],
      }),
    });
    await root.startChild(Supervisor.childSpec<Msg>({ address: 'sub' }, [w.spec('sub/a')]));
    await root.restartChild('sub');
    root.actorAt('sub/a');
    // Messages queued for a paused child show as its mailbox size.
    const snap = root.snapshot();
    assert.deepEqual(snap, {
      address: 'root',
      kind: 'supervisor',
      status: 'running',
      restarts: 0,
      strategy: 'one-for-all',
      children: [
        { address: 'a', kind: 'actor', status: 'running', restarts: 0, mailbox: 0, info: { received: 0 } },
        {
          address: 'exec', kind: 'actor', status: 'running', restarts: 0, mailbox: 0, info: { running: 1 },
          children: [{ address: 'task/1', kind: 'task', status: 'running', restarts: 0 }],
        },
        {
          address: 'sub', kind: 'supervisor', status: 'running', restarts: 1, strategy: 'one-for-one',
          children: [{ address: 'sub/a', kind: 'actor', status: 'running', restarts: 0, mailbox: 0, info: { received: 0 } }],
        },
      ],
    });
    assert.deepEqual(root.children(), snap.children);
    await root.stop();
    assert.deepEqual(root.snapshot().children, []);
    assert.equal(root.snapshot().status, 'stopped');
  });

  it('stop is idempotent: concurrent and repeated calls stop each child once and all wait for the end', async () => {
    const w = createWorld();
    const sup = w.supervisor();
    let release!: () => void;
    const slowStop = new Promise<void>((resolve) => (release = resolve));
    await sup.startChild(w.spec('a'));
    await sup.startChild({ address: 'slow', create: () => ({ receive() {}, stop: () => slowStop }) });
    const first = sup.stop();
    const second = sup.stop();
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await flushMicrotasks();
    assert.equal(secondDone, false, 'a second stop() waits for the first to finish');
    assert.equal(sup.status, 'stopping');
    release();
    await Promise.all([first, second]);
    await sup.stop();
    assert.equal(sup.status, 'stopped');
    assert.equal(w.log.filter((l) => l === 'stop a#1').length, 1);
  });

  it('ignores crashes once stopping, and reports stop() errors through onCrash without skipping other children', async () => {
    const w = createWorld();
    const crashes: string[] = [];
    const sup = w.supervisor({ onCrash: (address) => crashes.push(address) });
    await sup.startChild(w.spec('a'));
    await sup.startChild({
      address: 'bad',
      create: () => ({
        receive() {},
        stop() {
          throw new Error('stop failed');
        },
      }),
    });
    await sup.stop();
    assert.deepEqual(crashes, ['bad']);
    assert.ok(w.log.includes('stop a#1'));
    assert.equal(w.events.length, 0);
  });

  it('an unsubscribed listener gets no more events, and unsubscribing twice removes nobody else', async () => {
    const w = createWorld();
    const sup = new Supervisor<Msg>(w.bus, w.clock, { address: 'root' });
    const seen: string[] = [];
    const off = sup.on({ restarted: (a) => seen.push(`first ${a}`) });
    sup.on({ restarted: (a) => seen.push(`second ${a}`) });
    await sup.startChild(w.spec('a'));
    off();
    off();
    await sup.restartChild('a');
    assert.deepEqual(seen, ['second a']);
    await sup.stop();
  });
});
