/** meta: small persistent settings (paused names and the like), one row per key. */
import type Database from 'better-sqlite3';

/** Why: settings that must survive a restart without a table of their own. */
export function prepareMeta(db: Database.Database): { get(key: string): string | undefined; set(key: string, value: string | undefined): void } {
  const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const set = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const del = db.prepare('DELETE FROM meta WHERE key = ?');
  return {
    get: (key) => get.get(key)?.value,
    set(key, value) {
      if (value === undefined) del.run(key);
      else set.run(key, value);
    },
  };
}
