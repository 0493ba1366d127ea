/**
 * What every query file shares: the schema-qualified names of one store's tables and channels, and a way to
 * run hot statements as named prepared statements (parsed and planned once per connection).
 */
import { replaceBadTextDeep } from '../json-value.ts';
import type { Pool, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { invalidOption } from '../../errors.ts';

/** A pool or a checked-out client: anything a query can run on. */
export type Queryable = Pool | PoolClient;

/** The identifiers of one store, already quoted where SQL needs them. */
export interface PgNames {
  /** The bare schema name (validated, lower case). */
  schema: string;
  tasks: string;
  /** Before schema version 4 the transitions table; since, a view of the tasks' history lines. */
  transitions: string;
  output: string;
  schedules: string;
  meta: string;
  version: string;
  /** Starts of rate-limited tasks (claim-gated.ts). */
  rateEvents: string;
  /** The trigger function that counts a flow child's end in its parent (migration 2). */
  flowFunction: string;
  /** Channel names as `pg_notify` takes them (text) and as `LISTEN` takes them (quoted identifiers). */
  wakeChannel: string;
  cancelChannel: string;
  /** Flow parents made due or failed by a child (JSON `StoreChange` payloads). */
  flowChannel: string;
  /** Awaited tasks that ended (`awaitEnd`): their ids, space-separated. */
  endedChannel: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,50}$/;

/** Why: schema names are spliced into SQL and channel names, so only plain identifiers are accepted. */
export function validateSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw invalidOption('schema', 'a lower-case identifier of at most 51 characters (letters, digits, _)', schema);
  }
  return schema;
}

/** Why: one place derives every table and channel name from the schema, so query files never build them. */
export function createNames(schema: string): PgNames {
  const s = `"${validateSchemaName(schema)}"`;
  return Object.freeze({
    schema,
    tasks: `${s}.tasks`,
    transitions: `${s}.transitions`,
    output: `${s}.output`,
    schedules: `${s}.schedules`,
    meta: `${s}.meta`,
    version: `${s}.schema_version`,
    rateEvents: `${s}.rate_events`,
    flowFunction: `${s}.flow_child_final`,
    wakeChannel: `${schema}_wake`,
    cancelChannel: `${schema}_cancel`,
    flowChannel: `${schema}_flow`,
    endedChannel: `${schema}_ended`,
  });
}

/**
 * `state` of the tasks table aliased `t`, written for a row test beside `id = ANY(…)`: `${STATE_BY_ID} = 'running'`.
 *
 * Why: every partial index of the tasks table has a predicate on `state`, and a plain `state = 'running'` proves
 * the predicate of `tasks_running`. A generic plan (the settle connections', connection-options.ts) then ANDs a
 * bitmap of that whole index (every running task) with the primary-key lookup of the statement's ids, and a plan
 * that reads the partial index alone filters each running row by a linear `= ANY` of the ids: both grow with the
 * number of running tasks, the second as its square when a settle carries most of them (a settle of 1,471
 * outcomes took 74 ms). PostgreSQL compares collations before it proves a predicate, so the same test under
 * `COLLATE "C"` proves none, and only the primary key serves the statement; `=` on text gives the same answer
 * under every deterministic collation.
 */
export const STATE_BY_ID = 't.state COLLATE "C"';

/** Ids in one `<schema>_ended` notification: 26 characters and a space each, well under its 8,000-byte payload. */
const ENDED_PER_NOTIFY = 250;

/**
 * SQL: a `SELECT` that names on the ended channel (`channel`, a parameter) the ids `id` of the rows of `from` (a
 * FROM item with its joins and WHERE), ENDED_PER_NOTIFY ids a notification, space-separated. Why one home: every
 * statement that ends a task marked `awaited` (settle.ts, cancel.ts, recover-expired.ts) tells the nodes that
 * wait for it in the same format, delivered at its commit. Put it in a CTE that the statement's result reads.
 */
export function notifyEndedSql(channel: string, id: string, from: string): string {
  return `SELECT pg_notify(${channel}, string_agg(id, ' ')) FROM (
        SELECT ${id} AS id, (row_number() OVER ()) / ${ENDED_PER_NOTIFY} AS part FROM ${from}
      ) AS e GROUP BY part`;
}

/** Quotes a channel for LISTEN/UNLISTEN (channel names come from a validated schema name). */
export function quoteChannel(channel: string): string {
  return `"${channel}"`;
}

const statementNames = new Map<string, string>();
const MAX_NAMED = 512;

/**
 * Runs `text` as a named prepared statement, so a connection parses and plans it once. Texts are generated from
 * a small set of shapes; past a bound, further texts run unnamed rather than growing the cache.
 */
export function run<R extends QueryResultRow = QueryResultRow>(
  db: Queryable,
  text: string,
  values: unknown[] = [],
): Promise<QueryResult<R>> {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED) {
    name = `troupe_${statementNames.size.toString(36)}`;
    statementNames.set(text, name);
  }
  const config: QueryConfig = name === undefined ? { text, values } : { name, text, values };
  return db.query<R>(config);
}

/** JSON text of a value for a jsonb parameter; `undefined` stays SQL NULL (arrays would otherwise become PG arrays). */
export function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** JSON.stringify writes a NUL as `\u0000` and an unpaired surrogate as `\udXXX`; only then is there text to replace. */
const REFUSED_ESCAPE = /\\u(?:0000|d[89a-f])/i;

/**
 * JSON text for a jsonb parameter of a write that must not fail on text PostgreSQL refuses (a settle batch, whose
 * failure would be retried forever): a NUL or an unpaired surrogate in any string or key becomes U+FFFD, as
 * undecodable output bytes do. Inputs and results never get here with such text (`unstorable` refuses them first);
 * output lines, error messages and reasons may.
 */
export function toPgJson(value: unknown): string {
  const text = JSON.stringify(value);
  return REFUSED_ESCAPE.test(text) ? JSON.stringify(replaceBadTextDeep(value)) : text;
}

/** Reads a jsonb column that was selected as text (`col::text`), keeping JSON `null` apart from SQL NULL. */
export function fromJson(text: unknown): unknown {
  return typeof text === 'string' ? JSON.parse(text) : undefined;
}
