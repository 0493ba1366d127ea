/**
 * Task routes: enqueue (one or many), list with filters and cursor paging, inspect, cancel, retry, output (JSON
 * or an SSE stream), and the registered task types. Every body and query is checked by a JSON schema (nothing
 * unknown passes) and again by the runtime, which refuses unknown names and bad input before storing anything.
 */
import type { FastifyInstance } from 'fastify';
import type { Runtime, TaskView } from '../../runtime.ts';
import { publicError } from '../errors.ts';
import { TaskOutputFeed } from '../output-stream.ts';
import {
  EMPTY_BODY_SCHEMA,
  ENQUEUE_ITEM_SCHEMA,
  querySchema,
  readIntParam,
  readStates,
  readTime,
  requireTaskId,
  toEnqueueOptions,
  type EnqueueBody,
} from '../params.ts';
import { wantsEventStream, type SseHub, type SseOptions } from '../sse.ts';
import { ErrorCodes, TroupeError } from '../../errors.ts';

export interface RouteContext {
  rt: Runtime;
  hub: SseHub;
  sse: SseOptions;
}

const ID_PARAMS = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const NO_QUERY = querySchema({});
/** Most items one bulk request may hold. */
export const MAX_BULK_ITEMS = 1000;

/** The view as the API shows it: errors without stacks (why: a task's stack names files on the server). */
export function publicView(view: TaskView): TaskView {
  const out: TaskView = { ...view };
  if (view.error) out.error = publicError(view.error);
  if (view.history) out.history = view.history.map((h) => (h.error ? { ...h, error: publicError(h.error) } : h));
  return out;
}

/**
 * Why: no request value reaches a file path (docs/http.md). `cleanup-temp-files` takes a folder under the temp root
 * from the library and the command line; over HTTP, by this route as by its maintenance route, it takes none.
 */
function refuseFolder(item: EnqueueBody, path = 'input.dir'): void {
  const input = item.input as { dir?: unknown } | null | undefined;
  if (item.name === 'cleanup-temp-files' && typeof input === 'object' && input !== null && 'dir' in input) {
    throw new TroupeError(ErrorCodes.INVALID_INPUT, `\`${path}\` is not accepted over HTTP: cleanup-temp-files cleans the whole temp root here`);
  }
}

/** Registers the /api/tasks routes (why: one file per resource keeps server.ts a table of contents). */
export function registerTaskRoutes(app: FastifyInstance, { rt, hub, sse }: RouteContext): void {
  app.post<{ Body: EnqueueBody }>('/api/tasks', { schema: { body: ENQUEUE_ITEM_SCHEMA, querystring: NO_QUERY } }, async (request, reply) => {
    const body = request.body;
    refuseFolder(body);
    const id = await rt.enqueue(body.name, body.input, toEnqueueOptions(body));
    return reply.code(202).send({ id });
  });

  app.post<{ Body: { items: EnqueueBody[] } }>(
    '/api/tasks/bulk',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['items'],
          properties: { items: { type: 'array', minItems: 1, maxItems: MAX_BULK_ITEMS, items: ENQUEUE_ITEM_SCHEMA } },
        },
        querystring: NO_QUERY,
      },
    },
    async (request, reply) => {
      request.body.items.forEach((item, i) => refuseFolder(item, `items[${i}].input.dir`));
      const items = request.body.items.map((item, i) => ({ name: item.name, input: item.input, options: toEnqueueOptions(item, `items[${i}]`) }));
      const ids = await rt.enqueueMany(items);
      return reply.code(202).send({ ids });
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/tasks',
    { schema: { querystring: querySchema({ state: 200, name: 128, since: 40, limit: 5, cursor: 64 }) } },
    async (request) => {
      const q = request.query;
      const cursor = q.cursor === undefined || q.cursor === '' ? undefined : q.cursor;
      if (cursor !== undefined && !/^[0-9a-f]{28}$/.test(cursor)) throw new TroupeError(ErrorCodes.INVALID_OPTION, 'Expected `cursor` to be the `nextCursor` of a previous page');
      const state = readStates(q.state);
      const since = readTime(q.since, 'since');
      const limit = readIntParam(q.limit, 'limit', 1, 1000);
      const page = await rt.list({
        ...(state !== undefined ? { state } : {}),
        ...(q.name ? { name: q.name } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      return { tasks: page.tasks.map(publicView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>('/api/tasks/:id', { schema: { params: ID_PARAMS, querystring: NO_QUERY } }, async (request) => {
    const id = requireTaskId(request.params.id);
    const view = await rt.get(id);
    if (!view) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\``);
    return publicView(view);
  });

  app.post<{ Params: { id: string } }>('/api/tasks/:id/cancel', { schema: { params: ID_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: NO_QUERY } }, async (request) => {
    const cancelled = await rt.cancel(requireTaskId(request.params.id));
    return { cancelled };
  });

  app.post<{ Params: { id: string } }>('/api/tasks/:id/retry', { schema: { params: ID_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: NO_QUERY } }, async (request) => {
    return publicView(await rt.retry(requireTaskId(request.params.id)));
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
    '/api/tasks/:id/output',
    { schema: { params: ID_PARAMS, querystring: querySchema({ after: 20, limit: 6 }) } },
    async (request, reply) => {
      const id = requireTaskId(request.params.id);
      const after = readIntParam(request.query.after, 'after', 0, Number.MAX_SAFE_INTEGER);
      const limit = readIntParam(request.query.limit, 'limit', 1, 10_000);
      if (!wantsEventStream(request.headers.accept)) {
        if (!(await rt.store.get(id))) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\``);
        const lines = await rt.output(id, { ...(after !== undefined ? { after } : {}), limit: limit ?? 1000 });
        return { lines };
      }
      const lastEventId = readIntParam(headerValue(request.headers['last-event-id']), 'Last-Event-ID', 0, Number.MAX_SAFE_INTEGER);
      const opened = await TaskOutputFeed.open(rt, id);
      if (!opened) throw new TroupeError(ErrorCodes.NOT_FOUND, `No task \`${id}\``);
      reply.hijack();
      const stream = hub.open(request.raw, reply.raw, sse);
      void opened.feed.pipe(stream, opened.view, lastEventId ?? after ?? -1);
      return reply;
    },
  );

  app.get('/api/task-types', { schema: { querystring: NO_QUERY } }, async () => ({ tasks: rt.tasks() }));

  // How to run a task, from its measured history: recommendations with their evidence (404 for an unknown name).
  app.get<{ Querystring: { name?: string } }>('/api/tasks/advice', { schema: { querystring: querySchema({ name: 128 }) } }, async (request) => {
    const name = request.query.name;
    if (!name) throw new TroupeError(ErrorCodes.INVALID_OPTION, 'Expected the query parameter `name` (a registered task name)');
    return rt.advise(name);
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
