/**
 * Task ids the REPL has seen (from `ps`, `enqueue`, `run`, `maint`…), newest first, for Tab completion and for
 * typing a unique prefix instead of a 28-character id.
 */
import { ErrorCodes, TroupeError } from '../errors.ts';

const MAX = 200;
/** How many of the ids an ambiguous prefix matches are named in the error. */
const SHOWN = 5;

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

  /**
   * Why: `inspect 01a2f` is enough when only one recent id starts that way. A prefix several recent ids start with
   * is refused, naming a few of them (looking it up as an id would only say there is no such task); anything else
   * passes through.
   */
  resolve(arg: string): string {
    if (arg.length < 4 || this.#ids.includes(arg)) return arg;
    const hits = this.#ids.filter((id) => id.startsWith(arg));
    if (hits.length > 1) {
      const more = hits.length > SHOWN ? `, and ${hits.length - SHOWN} more` : '';
      throw new TroupeError(ErrorCodes.INVALID_OPTION, `\`${arg}\` is the start of ${hits.length} recent task ids (${hits.slice(0, SHOWN).join(', ')}${more}) — type more of the id`);
    }
    return hits.length === 1 ? hits[0]! : arg;
  }
}
