/** meta: small persistent settings (paused names and the like), one row per key, and the control version. */
import type Database from 'better-sqlite3';
import { CONTROL_VERSION_KEY } from '../../store.ts';

export interface MetaQueries {
  get(key: string): string | undefined;
  set(key: string, value: string | undefined): void;
  /** Adds or removes one member of the JSON array under `key`; the set after it. Run inside a write transaction. */
  editSet(key: string, member: string, present: boolean): string[];
  /** Moves the control version on (Store.controlVersion). Run inside the transaction of the control change. */
  bump(): void;
  /** The control version, 0 before the first control change. */
  version(): number;
}

/** Why: settings that must survive a restart without a table of their own. */
export function prepareMeta(db: Database.Database): MetaQueries {
  const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const set = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const del = db.prepare('DELETE FROM meta WHERE key = ?');
  const bump = db.prepare(
    `INSERT INTO meta (key, value) VALUES ('${CONTROL_VERSION_KEY}', '1')
     ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)`,
  );
  const read = (key: string): string | undefined => get.get(key)?.value;
  return {
    get: read,
    set(key, value) {
      if (value === undefined) del.run(key);
      else set.run(key, value);
    },
    editSet(key, member, present) {
      const text = read(key);
      const members = new Set(text === undefined ? [] : (JSON.parse(text) as string[]));
      if (present) members.add(member);
      else members.delete(member);
      const sorted = [...members].sort();
      set.run(key, JSON.stringify(sorted));
      return sorted;
    },
    bump() {
      bump.run();
    },
    version: () => Number(read(CONTROL_VERSION_KEY) ?? 0),
  };
}
