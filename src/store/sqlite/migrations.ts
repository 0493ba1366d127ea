/**
 * Ordered schema migrations for the SQLite store. The schema version is `PRAGMA user_version`; each migration
 * runs in the same transaction as the version bump, so a crash leaves the file at one version or the next.
 * Append new migrations; never edit a released one.
 *
 * Times are epoch-ms INTEGERs; input/result/error/progress/options are JSON text. Partial indexes over the
 * claimable states give each strategy an index in its claim order, so a claim reads only the rows it takes.
 * There is deliberately no (state, id) index: it cost a third of end-to-end throughput. Running tasks and dead
 * letters have small partial indexes; `task_counts` keeps the number of tasks per state, maintained by the
 * store from the transitions it writes (one UPDATE per state per transaction), so `counts()` reads 8 rows.
 * The claim index of a strategy (`STRATEGY_INDEXES`) is created by `ensureStrategyIndex` when a store opens with
 * that strategy, and only that one, because every index costs each write (measured: two unused ones halve
 * end-to-end throughput); `counts` reads the oldest due task through it too. Indexes are never dropped when the
 * strategy changes, so another connection using them keeps working; a file whose strategy changed keeps paying
 * for the old index.
 *
 * The store opens its connection with `foreign_keys = OFF`: the REFERENCES clauses of `output` stay in the schema
 * but are not enforced, because the parent lookup cost every INSERT and the store's own code already writes a child
 * row only for a task it holds. Purge deletes a task's output itself.
 *
 * The claim indexes of fifo, lifo and priority lead with the task name (version 3): a claim reads each allowed
 * name's own part of the index, so a paused name or one at its concurrency cap costs it nothing however many of
 * its tasks are due (with the global-order indexes of versions 1–2 a claim walked past every one of them).
 * Version 3 drops those indexes, and with them `tasks_due_time`, which every file of versions 1–2 kept beside its
 * strategy's index; stop processes running an older troupe on a file before it is upgraded.
 *
 * Output lines are stored in runs (version 4): one row per run of lines that share a stream and a capture time
 * and have consecutive seqs (a pipe chunk), the texts as a JSON array. A line was a row of its own before; the
 * per-row cost (the key, the B-tree insert, the bytes written to the WAL and checkpointed) was most of the cost
 * of capturing output. Stop processes running an older troupe on a file before it is upgraded.
 *
 * A task's history is part of its row (version 5): `tasks.history` holds one short line per transition
 * (src/store/history-line.ts), appended by the statement that changes the state (see record-transition.ts). A
 * `transitions` table keyed by task cost a B-tree insert per transition at the task's place in its index: for the
 * old tasks a deep queue claims, a page in the middle of the index, often split, and one more page in every commit. Stop processes running an older troupe on a file before it is upgraded.
 *
 * An enqueued row reserves room for what its claim and success add (version 6): `tasks.room` holds zero bytes
 * (queries/rows.ts, TASK_ROOM) that the lease gives up as it fills the lease fields and appends its history line,
 * and that the task's end (success, failure, timeout) frees (NULL). Rows are appended in id order, so their pages are full, and a row that grew in
 * one split it: the claims at the head of a deep queue wrote more pages than those near its tail. Rows stored before
 * version 6 have no room and grow as before. A retried or released task claims again with what room is left.
 *
 * Output is kept within bytes as well as lines (version 7): `output.bytes` is the UTF-8 size of a row's texts and
 * `tasks.output_bytes` the size of all a task keeps, so the byte cap drops whole rows without reading their texts
 * (queries/output.ts). The upgrade measures the rows already stored, once: a file with much output takes a while.
 */
import type Database from 'better-sqlite3';
import { TASK_STATES } from '../../task.ts';
import type { Strategy } from '../store.ts';
import { stateCodeSql } from '../history-line.ts';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** `PRAGMA application_id` of a troupe store ('trup'), so a foreign SQLite file is never migrated. */
export const APPLICATION_ID = 0x74727570;

const CLAIMABLE = `state IN ('queued', 'scheduled', 'retrying')`;
const DEAD = `state IN ('failed', 'timed_out', 'cancelled')`;

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    description: 'tasks, transitions, output, schedules, meta',
    sql: `
      PRAGMA application_id = ${APPLICATION_ID};
      CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        input TEXT,
        result TEXT,
        error TEXT,
        priority INTEGER NOT NULL,
        weight REAL NOT NULL,
        key TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        progress TEXT,
        created_at INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        updated_at INTEGER NOT NULL,
        owner TEXT,
        lease_until INTEGER,
        schedule_id TEXT,
        options TEXT,
        output_lines INTEGER NOT NULL DEFAULT 0,
        output_dropped INTEGER NOT NULL DEFAULT 0,
        output_last_seq INTEGER
      );
      CREATE UNIQUE INDEX tasks_key ON tasks (key) WHERE key IS NOT NULL;
      CREATE INDEX tasks_due_time ON tasks (run_at, id) WHERE ${CLAIMABLE};
      CREATE INDEX tasks_waiting ON tasks (run_at) WHERE state IN ('scheduled', 'retrying');
      CREATE INDEX tasks_running ON tasks (owner, lease_until) WHERE state = 'running';
      CREATE INDEX tasks_dead ON tasks (state, id) WHERE ${DEAD};
      CREATE INDEX tasks_name ON tasks (name, id);
      CREATE INDEX tasks_schedule ON tasks (schedule_id, id) WHERE schedule_id IS NOT NULL;
      CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;

      CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY,
        task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        from_state TEXT,
        to_state TEXT NOT NULL,
        at INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        reason TEXT,
        error TEXT
      );
      CREATE INDEX transitions_task ON transitions (task_id, seq);

      CREATE TABLE output (
        task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        stream TEXT NOT NULL,
        text TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (task_id, seq)
      ) WITHOUT ROWID;

      CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        cron TEXT,
        every_ms INTEGER,
        timezone TEXT,
        input TEXT,
        overlap TEXT NOT NULL,
        paused INTEGER NOT NULL,
        last_slot INTEGER,
        created_at INTEGER NOT NULL
      );

      CREATE TABLE task_counts (
        state TEXT PRIMARY KEY,
        n INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO task_counts (state, n) VALUES ${TASK_STATES.map((st) => `('${st}', 0)`).join(', ')};

      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'groups, dedup keys, flows (parent and pending children), rate-limit events',
    // Partial indexes only: a task without a group, dedup key or parent costs them nothing on write.
    sql: `
      ALTER TABLE tasks ADD COLUMN grp TEXT;
      ALTER TABLE tasks ADD COLUMN dedup_key TEXT;
      ALTER TABLE tasks ADD COLUMN parent_id TEXT;
      ALTER TABLE tasks ADD COLUMN flow_pending INTEGER;
      ALTER TABLE tasks ADD COLUMN flow_policy TEXT;
      CREATE INDEX tasks_parent ON tasks (parent_id, id) WHERE parent_id IS NOT NULL;
      CREATE INDEX tasks_dedup ON tasks (name, dedup_key, created_at, id) WHERE dedup_key IS NOT NULL;
      CREATE INDEX tasks_group ON tasks (grp, id) WHERE grp IS NOT NULL;

      CREATE TABLE rate_events (
        name TEXT NOT NULL,
        grp TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX rate_events_name ON rate_events (name, at);
    `,
  },
  {
    version: 3,
    description: 'claim indexes that lead with the task name (made by ensureStrategyIndex)',
    sql: `
      DROP INDEX IF EXISTS tasks_due_time;
      DROP INDEX IF EXISTS tasks_due_priority;
    `,
  },
  {
    version: 4,
    description: 'output lines stored in runs: one row per run of lines (one stream, one capture time, consecutive seqs)',
    // A row holds n lines, seq .. seq + n - 1, their texts as a JSON array. Stored lines become runs of one.
    sql: `
      CREATE TABLE output_runs (
        task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        n INTEGER NOT NULL,
        stream TEXT NOT NULL,
        at INTEGER NOT NULL,
        texts TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
      ) WITHOUT ROWID;
      INSERT INTO output_runs (task_id, seq, n, stream, at, texts) SELECT task_id, seq, 1, stream, at, json_array(text) FROM output;
      DROP TABLE output;
      ALTER TABLE output_runs RENAME TO output;
    `,
  },
  {
    version: 5,
    description: "a task's history kept in its row: one line per transition in tasks.history",
    // The lines (src/store/history-line.ts) in seq order; an error stored as JSON text goes in as the object it encodes.
    sql: `
      ALTER TABLE tasks ADD COLUMN history TEXT NOT NULL DEFAULT '';
      UPDATE tasks SET history = (
        SELECT group_concat(
          ${stateCodeSql('from_state')} || ${stateCodeSql('to_state')} || at || ',' || attempt
            || CASE WHEN reason IS NULL AND error IS NULL THEN '' ELSE '|' || json_array(reason, json(error)) END || char(10),
          '' ORDER BY seq)
        FROM transitions WHERE task_id = tasks.id
      ) WHERE id IN (SELECT task_id FROM transitions);
      DROP TABLE transitions;
    `,
  },
  {
    version: 6,
    description: 'tasks.room: bytes an enqueued row reserves for what its claim and success add to it',
    // Rows already stored get none (NULL): they grow as before when claimed.
    sql: `ALTER TABLE tasks ADD COLUMN room BLOB;`,
  },
  {
    version: 7,
    description: 'output bytes: the UTF-8 size of each output row (output.bytes) and of what each task keeps (tasks.output_bytes)',
    // Rows already stored are measured once here (a JSON string decodes to its text; CAST AS BLOB gives its UTF-8
    // bytes), so the byte cap applies to a task that goes on printing (a retry, say) from what it holds.
    sql: `
      ALTER TABLE tasks ADD COLUMN output_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE output ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
      UPDATE output SET bytes = (SELECT ifnull(sum(length(CAST(value AS BLOB))), 0) FROM json_each(output.texts))
        WHERE stream <> 'marker';
      UPDATE tasks SET output_bytes = (SELECT sum(bytes) FROM output WHERE task_id = tasks.id)
        WHERE id IN (SELECT task_id FROM output);
    `,
  },
  {
    version: 8,
    description: 'tasks.lease_losses: runs lost to an expired lease (the first adds an attempt instead of using one up)',
    sql: `ALTER TABLE tasks ADD COLUMN lease_losses INTEGER NOT NULL DEFAULT 0;`,
  },
]);

/** The partial index each strategy claims through. */
export const STRATEGY_INDEXES: Readonly<Record<Strategy, { name: string; sql: string }>> = Object.freeze({
  fifo: { name: 'tasks_due_name', sql: `CREATE INDEX IF NOT EXISTS tasks_due_name ON tasks (name, run_at, id) WHERE ${CLAIMABLE}` },
  lifo: { name: 'tasks_due_name', sql: `CREATE INDEX IF NOT EXISTS tasks_due_name ON tasks (name, run_at, id) WHERE ${CLAIMABLE}` },
  priority: {
    name: 'tasks_due_name_priority',
    sql: `CREATE INDEX IF NOT EXISTS tasks_due_name_priority ON tasks (name, priority DESC, run_at, id) WHERE ${CLAIMABLE}`,
  },
  'weighted-random': {
    name: 'tasks_due_weight',
    // name and state make it covering for the per-class counts a weighted claim starts with
    sql: `CREATE INDEX IF NOT EXISTS tasks_due_weight ON tasks (weight, run_at, id, name, state) WHERE ${CLAIMABLE}`,
  },
});

/** Why: only the strategy in use pays for its index (see the header). Runs after `migrate`, outside its steps. */
export function ensureStrategyIndex(db: Database.Database, strategy: Strategy): void {
  db.exec(STRATEGY_INDEXES[strategy].sql);
  if (strategy === 'weighted-random') ensureQueuedClasses(db);
}

/**
 * `queued_classes`: the number of queued tasks per (name, weight), kept by triggers on `tasks`, so that a
 * weighted-random claim reads its class sizes from a few rows instead of counting every due task (measured before:
 * a claim of 16 took 5 ms at 10,000 due tasks, 48 ms at 100,000, 244 ms at 500,000). Due `scheduled`/`retrying`
 * tasks are still counted at each claim, through `tasks_waiting` (they become `queued` only when claimed).
 * Created, and filled from the rows already there, in one transaction when a store first opens the file with
 * that strategy; like the strategy indexes it then stays, and its triggers cost every writer of the file a small
 * UPDATE per task that enters or leaves `queued`.
 */
export function ensureQueuedClasses(db: Database.Database): void {
  if (db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'queued_classes'").get()) return;
  const enter = (row: 'NEW') => `INSERT INTO queued_classes (name, weight, n) VALUES (${row}.name, ${row}.weight, 1)
      ON CONFLICT (name, weight) DO UPDATE SET n = n + 1;`;
  const leave = (row: 'OLD') => `UPDATE queued_classes SET n = n - 1 WHERE name = ${row}.name AND weight = ${row}.weight;`;
  const moved = 'NEW.name IS NOT OLD.name OR NEW.weight IS NOT OLD.weight';
  db.transaction(() => {
    // Another process opening the file with this strategy may have created it since the check above.
    if (db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'queued_classes'").get()) return;
    db.exec(`
      CREATE TABLE queued_classes (name TEXT NOT NULL, weight REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (name, weight)) WITHOUT ROWID;
      INSERT INTO queued_classes (name, weight, n) SELECT name, weight, COUNT(*) FROM tasks WHERE state = 'queued' GROUP BY name, weight;
      CREATE TRIGGER queued_classes_insert AFTER INSERT ON tasks WHEN NEW.state = 'queued' BEGIN ${enter('NEW')} END;
      CREATE TRIGGER queued_classes_delete AFTER DELETE ON tasks WHEN OLD.state = 'queued' BEGIN ${leave('OLD')} END;
      CREATE TRIGGER queued_classes_leave AFTER UPDATE OF state, name, weight ON tasks
        WHEN OLD.state = 'queued' AND (NEW.state <> 'queued' OR ${moved}) BEGIN ${leave('OLD')} END;
      CREATE TRIGGER queued_classes_enter AFTER UPDATE OF state, name, weight ON tasks
        WHEN NEW.state = 'queued' AND (OLD.state <> 'queued' OR ${moved}) BEGIN ${enter('NEW')} END;
    `);
  }).immediate();
}

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Why: bring a database from its stored version to ours, one transaction per step. Returns the steps applied.
 * Each step reads the version again under the write lock: processes opening a new or older file at once (two
 * `troupe run --store sqlite:…`) all read the old version first, and the one that takes the lock second must
 * skip the steps the first applied instead of failing on them (`table tasks already exists`).
 */
export function migrate(db: Database.Database): number[] {
  const applied: number[] = [];
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const current = version();
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    const ran = db.transaction(() => {
      if (version() >= m.version) return false;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
      return true;
    }).immediate();
    if (ran) applied.push(m.version);
  }
  return applied;
}
