/**
 * schedules: CRUD, and the slot compare-and-set that makes a periodic slot fire once. Saving a schedule again
 * keeps its creation time and never moves `last_slot` backwards (a restart re-reading its config must not
 * re-fire a slot).
 */
import type Database from 'better-sqlite3';
import type { ScheduleRecord } from '../../store.ts';
import { toJson, toScheduleRecord, type ScheduleRow } from './rows.ts';

export interface ScheduleQueries {
  save(schedule: ScheduleRecord): void;
  get(id: string): ScheduleRecord | undefined;
  list(): ScheduleRecord[];
  delete(id: string): boolean;
  markSlot(id: string, slot: number): boolean;
}

/** Why: schedules live next to the tasks they produce, in the same file and transactions. */
export function prepareSchedules(db: Database.Database): ScheduleQueries {
  const save = db.prepare(
    `INSERT INTO schedules (id, task, cron, every_ms, timezone, input, overlap, paused, last_slot, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET task = excluded.task, cron = excluded.cron, every_ms = excluded.every_ms,
       timezone = excluded.timezone, input = excluded.input, overlap = excluded.overlap, paused = excluded.paused,
       last_slot = CASE WHEN schedules.last_slot IS NULL THEN excluded.last_slot
                        WHEN excluded.last_slot IS NULL THEN schedules.last_slot
                        ELSE MAX(schedules.last_slot, excluded.last_slot) END`,
  );
  const get = db.prepare<[string], ScheduleRow>('SELECT * FROM schedules WHERE id = ?');
  const list = db.prepare<[], ScheduleRow>('SELECT * FROM schedules ORDER BY id');
  const del = db.prepare('DELETE FROM schedules WHERE id = ?');
  const mark = db.prepare('UPDATE schedules SET last_slot = ? WHERE id = ? AND (last_slot IS NULL OR last_slot < ?)');
  return {
    save(s) {
      save.run(
        s.id,
        s.task,
        s.cron ?? null,
        s.everyMs ?? null,
        s.timezone ?? null,
        toJson(s.input),
        s.overlap,
        s.paused ? 1 : 0,
        s.lastSlot ?? null,
        s.createdAt,
      );
    },
    get(id) {
      const row = get.get(id);
      return row ? toScheduleRecord(row) : undefined;
    },
    list: () => list.all().map(toScheduleRecord),
    delete: (id) => del.run(id).changes === 1,
    markSlot: (id, slot) => mark.run(slot, id, slot).changes === 1,
  };
}
