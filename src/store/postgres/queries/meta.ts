/** meta: small persistent settings (paused names and the like). */
import { CONTROL_VERSION_KEY } from '../../store.ts';
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

/**
 * The statement part that moves the control version on (Store.controlVersion): a data-modifying CTE for the
 * statement of each control change, so the change and the version move in one commit.
 */
export function bumpControlVersion(n: PgNames, from = ''): string {
  return `INSERT INTO ${n.meta} AS m (key, value) SELECT '${CONTROL_VERSION_KEY}', '1' ${from}
     ON CONFLICT (key) DO UPDATE SET value = (m.value::bigint + 1)::text`;
}

/**
 * Why: paused names and groups are edited by several nodes at once. One statement: a concurrent edit of the same
 * key waits for this row lock and then edits the committed set (ON CONFLICT DO UPDATE reads the latest row
 * version), so neither edit is lost. The control version moves and every node is told (NOTIFY on the flow
 * channel, delivered at commit).
 */
export async function editMetaSet(db: Queryable, n: PgNames, key: string, member: string, present: boolean): Promise<string[]> {
  const { rows } = await run<{ value: string }>(
    db,
    `WITH edited AS (
       INSERT INTO ${n.meta} AS m (key, value) VALUES ($1, CASE WHEN $3::boolean THEN json_build_array($2::text)::text ELSE '[]' END)
       ON CONFLICT (key) DO UPDATE SET value = (
         SELECT coalesce(json_agg(e.member ORDER BY e.member), '[]'::json)::text
         FROM (SELECT x AS member FROM json_array_elements_text(m.value::json) AS x WHERE x <> $2::text
               UNION SELECT $2::text WHERE $3::boolean) AS e)
       RETURNING value
     ), bumped AS (${bumpControlVersion(n)})
     SELECT value, pg_notify($4, $5) FROM edited`,
    [key, member, present, n.flowChannel, JSON.stringify({ type: 'meta.changed', key })],
  );
  return JSON.parse(rows[0]!.value) as string[];
}

/** Why: one small read per control check tells a node whether any control state changed since its last one. */
export async function controlVersion(db: Queryable, n: PgNames): Promise<number> {
  const { rows } = await run<{ value: string }>(db, `SELECT value FROM ${n.meta} WHERE key = '${CONTROL_VERSION_KEY}'`);
  return Number(rows[0]?.value ?? 0);
}
