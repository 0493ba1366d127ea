/**
 * Task ids the REPL has seen (from `ps`, `enqueue`, `run`, `maint`…), newest first, for Tab completion and for
 * typing a unique prefix instead of a 28-character id.
 */

const MAX = 200;

export class RecentIds {
  #ids: string[] = [];

  /** Why: the ids a person just looked at are the ones they type next. */
  add(...ids: string[]): void {
    for (const id of ids.reverse()) {
      const at = this.#ids.indexOf(id);
      if (at !== -1) this.#ids.splice(at, 1);
      this.#ids.unshift(id);
    }
    if (this.#ids.length > MAX) this.#ids.length = MAX;
  }

  list(): readonly string[] {
    return this.#ids;
  }

  /** Why: `inspect 01a2f` is enough when only one recent id starts that way; anything else passes through. */
  resolve(arg: string): string {
    if (arg.length < 4 || this.#ids.includes(arg)) return arg;
    const hits = this.#ids.filter((id) => id.startsWith(arg));
    return hits.length === 1 ? hits[0]! : arg;
  }
}
