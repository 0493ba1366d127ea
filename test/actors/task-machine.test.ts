import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, getInitialSnapshot, getNextSnapshot, initialTransition, transition } from 'xstate';
import {
  deriveTransitions,
  initialTaskState,
  nextTaskState,
  taskMachine,
  TRANSITIONS,
  type TaskEvent,
  type TaskEventType,
} from '../../actors/task/task-machine.ts';
import { DEAD_STATES, FINAL_STATES, TASK_STATES, type TaskState } from '../../src/task.ts';

const EVENT_TYPES = ['due', 'start', 'succeed', 'fail', 'time_out', 'cancel', 'release', 'release_before_due', 'lease_expired', 'requeue'] as const satisfies readonly TaskEventType[];
// Compile-time completeness: a new event type in TaskEvent must be added above.
const _allEvents: Exclude<TaskEventType, (typeof EVENT_TYPES)[number]> extends never ? true : never = true;
void _allEvents;

/** Every event in both guard outcomes. `retry` is set on every type: events without the field must ignore it. */
function eventsOf(type: TaskEventType): TaskEvent[] {
  return [true, false].map((retry) => ({ type, retry }) as TaskEvent);
}

function snapshotAt(state: TaskState) {
  return taskMachine.resolveState({ value: state, context: { delayed: false } });
}

describe('task machine: the derived table agrees with XState', () => {
  it('the table covers exactly the machine states (minus the transient `created`) and every event the machine names', () => {
    const machineStates = Object.keys(taskMachine.config.states ?? {}).filter((s) => s !== 'created').sort();
    assert.deepEqual(machineStates, [...TASK_STATES].sort());
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...TASK_STATES].sort());
    const named = new Set<string>();
    for (const node of Object.values(taskMachine.config.states ?? {})) for (const e of Object.keys((node as { on?: object }).on ?? {})) named.add(e);
    assert.deepEqual([...named].sort(), [...EVENT_TYPES].sort());
  });

  for (const state of TASK_STATES) {
    it(`from \`${state}\`: nextTaskState matches getNextSnapshot/transition for every event and retry outcome`, () => {
      const before = snapshotAt(state);
      assert.equal(before.value, state);
      for (const type of EVENT_TYPES) {
        for (const event of eventsOf(type)) {
          const label = `${state} + ${JSON.stringify(event)}`;
          const next = getNextSnapshot(taskMachine, before, event);
          const [viaTransition, actions] = transition(taskMachine, before, event);
          assert.equal(viaTransition.value, next.value, label);
          const ours = nextTaskState(state, event);
          if (next === before) {
            // XState leaves the snapshot untouched: the event is not allowed here.
            assert.equal(ours, undefined, `${label}: XState ignores it, the table allows ${ours}`);
            assert.deepEqual(actions, [], label);
          } else {
            assert.equal(ours, next.value, label);
            assert.ok(actions.some((a) => a.type === 'record'), `${label}: entering ${String(next.value)} runs the record action`);
          }
        }
      }
    });
  }

  it('agrees along multi-step paths too (the table is applied to its own output)', () => {
    const path: TaskEvent[] = [
      { type: 'start' }, { type: 'fail', retry: true }, { type: 'due' }, { type: 'start' },
      { type: 'time_out', retry: false }, { type: 'requeue' }, { type: 'start' }, { type: 'lease_expired', retry: true },
      { type: 'start' }, { type: 'succeed' },
    ];
    let snap = getInitialSnapshot(taskMachine, { delayed: false });
    let ours: TaskState = initialTaskState(false);
    for (const event of path) {
      snap = getNextSnapshot(taskMachine, snap, event);
      ours = nextTaskState(ours, event) ?? ours;
      assert.equal(ours, snap.value, JSON.stringify(event));
    }
    assert.equal(ours, 'succeeded');
  });

  it('deriveTransitions is deterministic and TRANSITIONS is what it derives', () => {
    assert.deepEqual(deriveTransitions(taskMachine), TRANSITIONS);
  });
});

describe('task machine: initial states, tags and finality', () => {
  it('starts in `scheduled` when delayed and in `queued` otherwise, through `created`', () => {
    for (const delayed of [true, false]) {
      const [snap, actions] = initialTransition(taskMachine, { delayed });
      assert.equal(snap.value, initialTaskState(delayed));
      assert.equal(snap.value, delayed ? 'scheduled' : 'queued');
      assert.deepEqual(snap.context, { delayed });
      assert.ok(actions.some((a) => a.type === 'record'));
    }
  });

  it('tags exactly the final states `final` and the dead letters `dead`', () => {
    for (const state of TASK_STATES) {
      const snap = snapshotAt(state);
      assert.equal(snap.hasTag('final'), FINAL_STATES.has(state), `${state} final`);
      assert.equal(snap.hasTag('dead'), DEAD_STATES.has(state), `${state} dead`);
    }
  });

  it('nothing leaves `succeeded`', () => {
    const snap = snapshotAt('succeeded');
    for (const type of EVENT_TYPES) {
      for (const event of eventsOf(type)) {
        assert.equal(getNextSnapshot(taskMachine, snap, event), snap, JSON.stringify(event));
        assert.equal(nextTaskState('succeeded', event), undefined, JSON.stringify(event));
      }
    }
    assert.deepEqual(TRANSITIONS.succeeded, {});
  });

  it('only `requeue` leaves the dead-letter states, and it leads to `queued`', () => {
    for (const state of DEAD_STATES) {
      assert.deepEqual(Object.keys(TRANSITIONS[state]), ['requeue']);
      assert.equal(nextTaskState(state, { type: 'requeue' }), 'queued');
    }
  });

  it('runs the provided `record` action on every state entry of a live actor', () => {
    const entered: string[] = [];
    const machine = taskMachine.provide({ actions: { record: ({ event }) => void entered.push(event.type) } });
    const actor = createActor(machine, { input: { delayed: true } });
    actor.start();
    for (const event of [{ type: 'due' }, { type: 'start' }, { type: 'fail', retry: false }] as TaskEvent[]) actor.send(event);
    assert.equal(actor.getSnapshot().value, 'failed');
    assert.equal(entered.length, 4, 'scheduled, queued, running, failed');
    actor.stop();
  });
});
