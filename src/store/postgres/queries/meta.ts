/** meta: small persistent settings (paused names and the like). */
import { run, type PgNames, type Queryable } from '../sql.ts';

/** Why: settings that must survive a restart and be shared by every node. */
export async function getMeta(db: Queryable, n: PgNames, key: string): Promise<string | undefined> {
  const { rows } = await run<{ value: string }>(db, `SELECT value FROM ${n.meta} WHERE key = $1`, [key]);
  return rows[0]?.value;
}

/** Why: writes (or, given `undefined`, deletes) one setting. */
export async function setMeta(db: Queryable, n: PgNames, key: string, value: string | undefined): Promise<void> {
  if (value === undefined) {
    await run(db, `DELETE FROM ${n.meta} WHERE key = $1`, [key]);
    return;
  }
  await run(
    db,
    `INSERT INTO ${n.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    [key, value],
  );
}
