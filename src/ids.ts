/**
 * Identifiers. Task ids are time-ordered (a millisecond prefix and a random tail, like a UUIDv7 in short form),
 * so they sort by creation time in every store and are safe in URLs.
 */
import { randomBytes } from 'node:crypto';

/** A task's id. */
export type TaskId = string;
/** An actor's address on the bus, e.g. `executor` or `task/01J…`. */
export type ActorAddress = string;

let lastMs = 0;
let counter = 0;
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolOffset = 0;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** Random per process: tells apart ids made in the same millisecond by different processes. */
const PROCESS_TAG = randomHex(6);
/** The formatted millisecond prefix of the last id, and its millisecond. */
let prefixMs = -1;
let prefix = '';
/** Two hex digits per byte value (the counter's four digits). */
const COUNTER_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A new task id: 12 hex digits of milliseconds, 4 of a per-millisecond counter, 12 of a per-process random tag.
 * Monotonic in one process; unique across processes (the tag) without drawing randomness per id.
 */
export function createTaskId(now = Date.now()): TaskId {
  if (now <= lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
  }
  if (counter > 0xffff) {
    lastMs++;
    counter = 0;
  }
  // The millisecond prefix is formatted once per millisecond, not once per id.
  if (prefixMs !== lastMs) {
    prefixMs = lastMs;
    prefix = lastMs.toString(16).padStart(12, '0');
  }
  return prefix + COUNTER_HEX[counter >> 8]! + COUNTER_HEX[counter & 0xff]! + PROCESS_TAG;
}


const TASK_ID = /^[0-9a-f]{28}$/;

/** True when `value` has the shape of a task id (used to reject junk at the HTTP and CLI doors). */
export function isTaskId(value: unknown): value is TaskId {
  return typeof value === 'string' && TASK_ID.test(value);
}

/** A node identity: host, pid and start time, recorded with every claim. */
export function createNodeId(host: string, pid: number, startedAt: number): string {
  return `${host}:${pid}:${startedAt.toString(36)}:${randomHex(2)}`;
}
