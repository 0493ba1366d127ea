/**
 * Contract: control state shared by the nodes of one store. Schedule saves and deletes and pause-set edits move
 * the control version and are reported as changes; slot marks are not control changes; `editMetaSet` edits one
 * member atomically, so edits made at the same time are all kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleRecord, StoreChange } from '../../../src/store/store.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { withStore, type MakeStore } from './context.ts';

const tick: ScheduleRecord = { id: 'tick', task: 'ping', everyMs: 1000, input: null, overlap: 'skip', paused: false, createdAt: 1000 };

export function controlContract(makeStore: MakeStore): void {
  describe('control state', () => {
    it('schedule saves and deletes and pause-set edits move the control version and are reported; slot marks are not', () =>
      withStore(makeStore, {}, async ({ store }) => {
        const changes: StoreChange[] = [];
        const off = store.onChange?.((c) => changes.push(c));
        const version = () => store.controlVersion!();
        const v0 = await version();
        await store.saveSchedule(tick);
        const v1 = await version();
        assert.ok(v1 > v0, 'a save moves it');
        assert.equal(await store.markScheduleSlot('tick', 2000), true);
        assert.equal(await version(), v1, 'a slot mark does not');
        assert.equal(await store.deleteSchedule('tick'), true);
        const v2 = await version();
        assert.ok(v2 > v1, 'a delete moves it');
        assert.equal(await store.deleteSchedule('tick'), false);
        assert.equal(await version(), v2, 'a delete of nothing does not');
        assert.deepEqual(await store.editMetaSet!('paused-names', 'x', true), ['x']);
        assert.ok((await version()) > v2, 'a pause-set edit moves it');
        await waitFor(() => changes.length >= 3, { label: 'three changes reported', timeout: 5000 });
        off?.();
        assert.deepEqual(changes, [
          { type: 'schedule.changed', id: 'tick' },
          { type: 'schedule.changed', id: 'tick' },
          { type: 'meta.changed', key: 'paused-names' },
        ]);
      }));

    it('editMetaSet adds and removes one member, keeps the others, and loses no edit made at the same time', () =>
      withStore(makeStore, {}, async ({ store }) => {
        const edit = (member: string, present: boolean) => store.editMetaSet!('paused-names', member, present);
        assert.deepEqual(await edit('b', true), ['b']);
        assert.deepEqual(await edit('a', true), ['a', 'b']);
        assert.deepEqual(await edit('a', true), ['a', 'b'], 'adding twice keeps one');
        assert.deepEqual(await edit('c', false), ['a', 'b'], 'removing an absent member changes nothing');
        await Promise.all(['d', 'e', 'f', 'g'].map((m) => edit(m, true)));
        assert.deepEqual(JSON.parse((await store.getMeta('paused-names'))!), ['a', 'b', 'd', 'e', 'f', 'g']);
        await Promise.all(['a', 'd', 'f'].map((m) => edit(m, false)));
        assert.deepEqual(await edit('b', false), ['e', 'g']);
        assert.equal(await store.getMeta('paused-groups'), undefined, 'another key is left alone');
      }));
  });
}
