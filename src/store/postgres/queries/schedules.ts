/**
 * Periodic schedules. `markScheduleSlot` is a compare-and-set on `last_slot`, so when several nodes see the same
 * cron slot come due, exactly one of them wins it; saving a definition again never moves the slot back.
 */
import type { ScheduleRecord } from '../../store.ts';
import { SCHEDULE_COLUMNS, rowToSchedule, type ScheduleRow } from '../rows.ts';
import { run, toJson, type PgNames, type Queryable } from '../sql.ts';
import { bumpControlVersion } from './meta.ts';

/**
 * Why: schedules survive restarts and are shared by every node. A control change: the same statement moves the
 * control version on and tells every node (`schedule.changed` on the flow channel, delivered at commit).
 */
export async function saveSchedule(db: Queryable, n: PgNames, s: ScheduleRecord): Promise<void> {
  await run(
    db,
    `WITH saved AS (
       INSERT INTO ${n.schedules} AS s (id, task, cron, every_ms, timezone, input, overlap, paused, last_slot, created_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)
       ON CONFLICT (id) DO UPDATE SET task = EXCLUDED.task, cron = EXCLUDED.cron, every_ms = EXCLUDED.every_ms,
         timezone = EXCLUDED.timezone, input = EXCLUDED.input, overlap = EXCLUDED.overlap, paused = EXCLUDED.paused,
         last_slot = greatest(s.last_slot, EXCLUDED.last_slot)
       RETURNING id
     ), bumped AS (${bumpControlVersion(n)})
     SELECT pg_notify($11, $12) FROM saved`,
    [s.id, s.task, s.cron ?? null, s.everyMs ?? null, s.timezone ?? null, toJson(s.input), s.overlap, s.paused,
      s.lastSlot ?? null, s.createdAt, n.flowChannel, changed(s.id)],
  );
}

/** The notification payload of a schedule's change (a `StoreChange`). */
function changed(id: string): string {
  return JSON.stringify({ type: 'schedule.changed', id });
}

/** Why: read one schedule definition and its last slot. */
export async function getSchedule(db: Queryable, n: PgNames, id: string): Promise<ScheduleRecord | undefined> {
  const { rows } = await run<ScheduleRow>(db, `SELECT ${SCHEDULE_COLUMNS} FROM ${n.schedules} WHERE id = $1`, [id]);
  return rows[0] ? rowToSchedule(rows[0]) : undefined;
}

/** Why: every schedule, by id, for the scheduler and the API. */
export async function listSchedules(db: Queryable, n: PgNames): Promise<ScheduleRecord[]> {
  const { rows } = await run<ScheduleRow>(db, `SELECT ${SCHEDULE_COLUMNS} FROM ${n.schedules} ORDER BY id`);
  return rows.map(rowToSchedule);
}

/** Why: removes a schedule; its past tasks stay. A control change when it existed (see saveSchedule). */
export async function deleteSchedule(db: Queryable, n: PgNames, id: string): Promise<boolean> {
  const res = await run(
    db,
    `WITH gone AS (DELETE FROM ${n.schedules} WHERE id = $1 RETURNING id), bumped AS (${bumpControlVersion(n, 'FROM gone')})
     SELECT pg_notify($2, $3) FROM gone`,
    [id, n.flowChannel, changed(id)],
  );
  return (res.rowCount ?? 0) > 0;
}

/** Why: one node per slot across the cluster: only the first to move `last_slot` forward fires it. */
export async function markScheduleSlot(db: Queryable, n: PgNames, id: string, slot: number): Promise<boolean> {
  const res = await run(
    db,
    `UPDATE ${n.schedules} SET last_slot = $2 WHERE id = $1 AND (last_slot IS NULL OR last_slot < $2)`,
    [id, slot],
  );
  return (res.rowCount ?? 0) > 0;
}
