/**
 * Schedule routes: list, create (or replace), pause, resume, trigger now, delete. Periodic work stays opt-in:
 * nothing here runs unless a client creates a schedule.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorCodes, TroupeError } from '../../errors.ts';
import type { ScheduleOptions } from '../../runtime.ts';
import { EMPTY_BODY_SCHEMA, querySchema, requireScheduleId } from '../params.ts';
import type { RouteContext } from './tasks.ts';

interface ScheduleBody {
  task: string;
  cron?: string;
  every?: number | string;
  timezone?: string;
  overlap?: 'skip' | 'queue' | 'allow';
  id?: string;
  input?: unknown;
}

const SCHEDULE_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['task'],
  properties: {
    task: { type: 'string', minLength: 1, maxLength: 128 },
    cron: { type: 'string', minLength: 1, maxLength: 200 },
    every: { type: ['integer', 'string'], maxLength: 32 },
    timezone: { type: 'string', minLength: 1, maxLength: 64 },
    overlap: { type: 'string', enum: ['skip', 'queue', 'allow'] },
    id: { type: 'string', minLength: 1, maxLength: 128 },
    input: {},
  },
} as const;

const ID_PARAMS = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

/** Registers the /api/schedules routes (why: schedules are driven from the API like tasks). */
export function registerScheduleRoutes(app: FastifyInstance, { rt }: RouteContext): void {
  app.get('/api/schedules', { schema: { querystring: querySchema({}) } }, async () => ({ schedules: await rt.schedules() }));

  app.post<{ Body: ScheduleBody }>('/api/schedules', { schema: { body: SCHEDULE_BODY, querystring: querySchema({}) } }, async (request, reply) => {
    const { task, input, ...rest } = request.body;
    if ((rest.cron === undefined) === (rest.every === undefined)) {
      throw new TroupeError(ErrorCodes.INVALID_OPTION, 'Give exactly one of `cron` and `every`');
    }
    const spec: ScheduleOptions = {};
    if (rest.cron !== undefined) spec.cron = rest.cron;
    if (rest.every !== undefined) spec.every = rest.every as ScheduleOptions['every'];
    if (rest.timezone !== undefined) spec.timezone = rest.timezone;
    if (rest.overlap !== undefined) spec.overlap = rest.overlap;
    if (rest.id !== undefined) spec.id = rest.id;
    const record = await rt.schedule(task, spec, input);
    return reply.code(201).send(record);
  });

  app.post<{ Params: { id: string } }>('/api/schedules/:id/pause', { schema: { params: ID_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } }, async (request) => {
    return rt.pauseSchedule(requireScheduleId(request.params.id));
  });

  app.post<{ Params: { id: string } }>('/api/schedules/:id/resume', { schema: { params: ID_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } }, async (request) => {
    return rt.resumeSchedule(requireScheduleId(request.params.id));
  });

  app.post<{ Params: { id: string } }>('/api/schedules/:id/trigger', { schema: { params: ID_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } }, async (request, reply) => {
    const id = await rt.triggerSchedule(requireScheduleId(request.params.id));
    return reply.code(202).send({ id });
  });

  app.delete<{ Params: { id: string } }>('/api/schedules/:id', { schema: { params: ID_PARAMS, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } }, async (request) => {
    const id = requireScheduleId(request.params.id);
    if (!(await rt.unschedule(id))) throw new TroupeError(ErrorCodes.NOT_FOUND, `No schedule \`${id}\``);
    return { removed: true };
  });
}
