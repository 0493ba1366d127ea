/**
 * On-demand maintenance: each endpoint enqueues one of the built-in tasks (`cleanup-runs`, `cleanup-temp-files`,
 * `health-check`, `log-statistics`) and answers 202 with its id; the task is tracked like any other. Nothing
 * here runs by itself.
 *
 * Inputs are the built-ins' own (validated by their `parseX` functions: a bad value is 422). The body is JSON;
 * `?maxAgeHours=` / `?windowMinutes=` in the query string are accepted too, for clients of the system troupe
 * replaces (given in both, the two must be the same number, else 400). `cleanup-temp-files` takes no folder over HTTP: nothing in a
 * request reaches a file path.
 */
import type { FastifyInstance } from 'fastify';
import { decimalFromText } from '../../../actors/maintenance/maintenance-input.ts';
import { ErrorCodes, TroupeError } from '../../errors.ts';
import { querySchema, readIntParam, readStates, requireTaskId } from '../params.ts';
import { publicView, type RouteContext } from './tasks.ts';
import type { TaskView } from '../../runtime.ts';

/** The built-in task names, as the runtime registers them. */
export const MAINTENANCE_TASKS = ['cleanup-runs', 'cleanup-temp-files', 'health-check', 'log-statistics'] as const;

const bodyOf = (props: Record<string, unknown>) => ({ type: ['object', 'null'], additionalProperties: false, properties: props }) as const;

interface Endpoint {
  task: (typeof MAINTENANCE_TASKS)[number];
  body: Record<string, unknown>;
  /** The one field that may also come from the query string. */
  queryField?: string;
}

const ENDPOINTS: Endpoint[] = [
  { task: 'cleanup-runs', body: bodyOf({ maxAgeHours: {} }), queryField: 'maxAgeHours' },
  { task: 'cleanup-temp-files', body: bodyOf({ maxAgeHours: {} }), queryField: 'maxAgeHours' },
  { task: 'health-check', body: bodyOf({ thresholds: {} }) },
  { task: 'log-statistics', body: bodyOf({ windowMinutes: {} }), queryField: 'windowMinutes' },
];

/** Registers /api/system/maintenance/* (why: operators trigger maintenance; the runtime never does it alone). */
export function registerMaintenanceRoutes(app: FastifyInstance, { rt }: RouteContext): void {
  for (const endpoint of ENDPOINTS) {
    app.post<{ Body: Record<string, unknown> | null; Querystring: Record<string, string | undefined> }>(
      `/api/system/maintenance/${endpoint.task}`,
      { schema: { body: endpoint.body, querystring: querySchema(endpoint.queryField ? { [endpoint.queryField]: 32 } : {}) } },
      async (request, reply) => {
        const input: Record<string, unknown> = { ...(request.body ?? {}) };
        const field = endpoint.queryField;
        const fromQuery = field === undefined ? undefined : request.query[field];
        if (field !== undefined && fromQuery !== undefined) {
          if (input[field] === undefined) input[field] = fromQuery;
          else if (decimalFromText(fromQuery) !== input[field]) {
            throw new TroupeError(
              ErrorCodes.INVALID_OPTION,
              `give \`${field}\` once: in the body (${JSON.stringify(input[field])}) or in the query string (${JSON.stringify(fromQuery)}), not both`,
            );
          }
        }
        const id = await rt.enqueue(endpoint.task, input);
        return reply.code(202).send({ id });
      },
    );
  }

  app.get<{ Params: { id: string } }>('/api/system/maintenance/tasks/:id', { schema: { querystring: querySchema({}) } }, async (request) => {
    const id = requireTaskId(request.params.id);
    const view = await rt.get(id);
    if (!view || !(MAINTENANCE_TASKS as readonly string[]).includes(view.name)) throw new TroupeError(ErrorCodes.NOT_FOUND, `No maintenance task \`${id}\``);
    return publicView(view);
  });

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/system/maintenance/tasks',
    { schema: { querystring: querySchema({ state: 200, limit: 5 }) } },
    async (request) => {
      const state = readStates(request.query.state);
      const limit = readIntParam(request.query.limit, 'limit', 1, 1000) ?? 50;
      const pages = await Promise.all(MAINTENANCE_TASKS.map((name) => rt.list({ name, limit, ...(state !== undefined ? { state } : {}) })));
      const tasks: TaskView[] = pages.flatMap((p) => p.tasks);
      tasks.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      return { tasks: tasks.slice(0, limit).map(publicView) };
    },
  );
}
