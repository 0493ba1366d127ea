import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRestart, DEFAULT_INTENSITY } from '../../src/actor/restart-policy.ts';

const intensity = { maxRestarts: 3, withinMs: 1000 };

describe('decideRestart', () => {
  it('restarts up to maxRestarts times in the window, then escalates', () => {
    const history: number[] = [];
    assert.equal(decideRestart(history, 0, intensity), 'restart');
    assert.equal(decideRestart(history, 10, intensity), 'restart');
    assert.equal(decideRestart(history, 20, intensity), 'restart');
    assert.deepEqual(history, [0, 10, 20]);
    assert.equal(decideRestart(history, 30, intensity), 'escalate');
    assert.deepEqual(history, [0, 10, 20], 'an escalation is not recorded as a restart');
  });

  it('forgets a restart exactly when it is withinMs old (the window is half-open)', () => {
    const history = [0, 10, 20];
    // At 999 the restart at 0 is still inside the window.
    assert.equal(decideRestart([...history], 999, intensity), 'escalate');
    // At 1000 it has left it: now - withinMs = 0 and restarts at or before that are pruned.
    const pruned = [...history];
    assert.equal(decideRestart(pruned, 1000, intensity), 'restart');
    assert.deepEqual(pruned, [10, 20, 1000]);
  });

  it('prunes every restart that has left the window', () => {
    const history = [0, 10, 20];
    assert.equal(decideRestart(history, 5000, intensity), 'restart');
    assert.deepEqual(history, [5000]);
  });

  it('escalates on the first crash when maxRestarts is 0', () => {
    const history: number[] = [];
    assert.equal(decideRestart(history, 0, { maxRestarts: 0, withinMs: 1000 }), 'escalate');
    assert.deepEqual(history, []);
  });

  it('has the OTP-like default of 3 restarts in 5 s, frozen', () => {
    assert.deepEqual({ ...DEFAULT_INTENSITY }, { maxRestarts: 3, withinMs: 5000 });
    assert.equal(Object.isFrozen(DEFAULT_INTENSITY), true);
  });
});
