// The list behind the executor's runs and the memory store's running tasks: O(1) add and remove by own index.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IndexedList } from '../src/indexed-list.ts';

test('items leave in any order; the rest keep right indexes; a foreign or removed item is refused', () => {
  const list = new IndexedList<{ name: string; listIndex: number }>();
  const items = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, listIndex: -1 }));
  for (const item of items) list.add(item);
  for (const name of ['a', 'e', 'c']) assert.equal(list.remove(items.find((i) => i.name === name)!), true);
  assert.deepEqual(list.values().map((i) => i.name).sort(), ['b', 'd']);
  for (const [index, item] of list.values().entries()) assert.equal(item.listIndex, index);
  assert.equal(list.remove(items[0]!), false, 'already removed');
  assert.equal(items[0]!.listIndex, -1);
  const other = new IndexedList<{ name: string; listIndex: number }>();
  other.add({ name: 'x', listIndex: -1 });
  assert.equal(other.has(items[1]!), false, 'an item of another list at the same index is not this list\'s');
  assert.equal(other.remove(items[1]!), false);
  assert.equal(list.size, 2);
  const copy = list.slice();
  for (const item of copy) list.remove(item);
  assert.equal(list.size, 0);
});
