/**
 * The Backend over HTTP: every command is a call to a running `troupe serve`; following output reads the task's
 * server-sent events (`output`, `progress`, then one `end`).
 */
import { ErrorCodes, TroupeError } from '../errors.ts';
import type { OutputLine, Progress } from '../task.ts';
import { normalizeTaskTypes, type Backend, type FollowOptions, type FollowState, type HealthInfo } from './backend.ts';
import { TroupeClient, type ClientOptions, type FollowEnd } from './client.ts';

/** Why: the REPL and the remote CLI commands share one way to talk to a server. */
export function createHttpBackend(options: ClientOptions | TroupeClient): Backend {
  const client = options instanceof TroupeClient ? options : new TroupeClient(options);
  return {
    target: client.url,
    enqueue: (name, input, o) => client.enqueue(name, input, o),
    get: (id) => client.getTask(id),
    list: (query) => client.listTasks(query),
    cancel: (id) => client.cancel(id),
    retry: async (id) => {
      await client.retry(id);
    },
    output: (id) => client.output(id),
    follow: (id, o) => followOverSse(client, id, o ?? {}),
    taskTypes: async () => normalizeTaskTypes(await client.taskTypes()),
    schedules: () => client.schedules(),
    schedule: async (id, action) => {
      const body = (await client.scheduleAction(id, action)) as { id?: unknown; taskId?: unknown } | undefined;
      if (action !== 'trigger') return undefined;
      const taskId = body?.taskId ?? body?.id;
      return typeof taskId === 'string' ? taskId : undefined;
    },
    queue: async (name, action) => {
      await client.queueAction(name, action);
    },
    maintenance: (name, input) => client.maintenance(name, input),
    health: async () => (await client.health(true)) as HealthInfo,
    advise: (name) => client.advice(name),
    tree: () => client.actors(),
    restart: async (address) => {
      await client.restartActor(address);
    },
    close: async () => {},
  };
}

async function followOverSse(client: TroupeClient, id: string, { signal, onLine, onProgress, onState }: FollowOptions): Promise<FollowEnd | undefined> {
  if (signal?.aborted) return undefined;
  const path = `/api/tasks/${encodeURIComponent(id)}/output`;
  // A line that fell between the server's stored read and its live feed may come after a later one: skip
  // repeats by seq, never by order.
  const seen = new Set<number>();
  try {
    for await (const event of client.events(path, signal)) {
      const data = parseData(event.data);
      if (event.event === 'output') {
        const line = data as OutputLine;
        if (typeof line?.seq === 'number' && line.seq >= 0) {
          if (seen.has(line.seq)) continue;
          seen.add(line.seq);
        }
        onLine?.(line);
      } else if (event.event === 'progress') {
        onProgress?.(data as Progress);
      } else if (event.event === 'state') {
        onState?.(data as FollowState);
      } else if (event.event === 'end') {
        return data as FollowEnd;
      } else if (event.event === 'shutdown') {
        throw new TroupeError(ErrorCodes.CLOSED, `${client.url} stopped before ${id} ended — follow it again once the server is back`);
      }
    }
  } catch (error) {
    if (signal?.aborted) return undefined;
    throw error;
  }
  if (signal?.aborted) return undefined;
  throw new TroupeError(ErrorCodes.INTERNAL, `${client.url} closed the output stream of ${id} before the task ended — try again`);
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { text };
  }
}
