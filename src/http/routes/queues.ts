/**
 * Queue routes: one queue per registered task name. Pausing a name stops its claiming on every node sharing the
 * store (its tasks stay stored and the pause survives a restart); resuming lets it run again.
 */
import type { FastifyInstance } from 'fastify';
import type { TaskState } from '../../task.ts';
import { EMPTY_BODY_SCHEMA, querySchema } from '../params.ts';
import type { RouteContext } from './tasks.ts';

const NAME_PARAMS = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } as const;
const ACTIVE: TaskState[] = ['scheduled', 'queued', 'retrying', 'running'];
/** Active tasks counted per name; beyond this the count is reported as capped. */
export const ACTIVE_COUNT_CAP = 1000;

/** Registers the /api/queues routes (why: an operator pauses a misbehaving task type without stopping the runtime). */
export function registerQueueRoutes(app: FastifyInstance, { rt }: RouteContext): void {
  app.get('/api/queues', { schema: { querystring: querySchema({}) } }, async () => {
    const [counts, paused] = [await rt.counts(), new Set(rt.pausedNames())];
    const queues = await Promise.all(
      rt.tasks().map(async (t) => {
        const page = await rt.list({ name: t.name, state: ACTIVE, limit: ACTIVE_COUNT_CAP });
        const byState: Partial<Record<TaskState, number>> = {};
        for (const task of page.tasks) byState[task.state] = (byState[task.state] ?? 0) + 1;
        return { name: t.name, kind: t.kind, builtin: t.builtin, paused: paused.has(t.name), active: page.tasks.length, capped: page.nextCursor !== undefined, byState };
      }),
    );
    return { totals: counts.byState, ...(counts.oldestDueAt !== undefined ? { oldestDueAt: counts.oldestDueAt } : {}), queues };
  });

  app.post<{ Params: { name: string } }>('/api/queues/:name/pause', { schema: { params: NAME_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } }, async (request) => {
    // Answered once stored (every node sharing the store then applies it); a store failure is an error reply.
    await rt.pause(request.params.name);
    return { name: request.params.name, paused: true };
  });

  app.post<{ Params: { name: string } }>('/api/queues/:name/resume', { schema: { params: NAME_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } }, async (request) => {
    await rt.resume(request.params.name);
    return { name: request.params.name, paused: false };
  });
}
