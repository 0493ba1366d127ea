/**
 * An unordered list whose items know their own index, so that adding and removing are O(1) with no allocation: an
 * item leaves by taking the last one into its place. Why not a `Set` or a `Map` by id: on an idle node each task
 * goes in and out once per run, and V8 rebuilds a `Set`'s table every time it empties (a new table per run), while
 * a map by id kept ≈350 bytes per run alive into the old generation (see actors/task/run-table.ts).
 */
export interface Indexed {
  /** The item's index in the list that holds it, or −1 when none does. */
  listIndex: number;
}

export class IndexedList<T extends Indexed> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  add(item: T): void {
    item.listIndex = this.#items.push(item) - 1;
  }

  /** Whether `item` is in this list. */
  has(item: T): boolean {
    return item.listIndex >= 0 && this.#items[item.listIndex] === item;
  }

  /** Removes `item`; false when it was not in this list. */
  remove(item: T): boolean {
    if (!this.has(item)) return false;
    const index = item.listIndex;
    const last = this.#items.pop()!;
    if (last !== item) {
      this.#items[index] = last;
      last.listIndex = index;
    }
    item.listIndex = -1;
    return true;
  }

  /** The items, live: do not add or remove while iterating (copy with `slice` for that). */
  values(): readonly T[] {
    return this.#items;
  }

  slice(): T[] {
    return this.#items.slice();
  }
}
