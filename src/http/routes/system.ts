/**
 * System routes: liveness and health, Prometheus metrics, the supervision tree (and restarting an actor by
 * hand), and the live event stream of task and actor facts.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorCodes, invalidOption, TroupeError } from '../../errors.ts';
import { isTaskId } from '../../ids.ts';
import type { Runtime } from '../../runtime.ts';
import { TASK_FACT_TYPES } from '../../../actors/task/messages.ts';
import { publicError } from '../errors.ts';
import type { ServerMetrics } from '../metrics.ts';
import { EMPTY_BODY_SCHEMA, querySchema, readFlag } from '../params.ts';
import type { RouteContext } from './tasks.ts';

/** How long due work may wait with nothing started or finished before the consumer loop counts as stalled. */
export const DEFAULT_STALL_MS = 5 * 60_000;

const SYSTEM_FACTS = ['actor.crashed', 'actor.restarted', 'actor.escalated', 'runtime.status', 'runtime.intake'] as const;

export interface SystemRouteOptions {
  metrics: ServerMetrics;
  /** @default DEFAULT_STALL_MS */
  stallMs?: number;
}

/**
 * The liveness answer of `GET /api/health` (why: probes need "alive" and "making progress" in one call). Stalled:
 * tasks are due (queued, or scheduled or retrying with their time come: `QueueCounts.due`), the oldest of them
 * became due more than `stallMs` ago, none runs, nothing started or finished for `stallMs`, and no name is paused.
 */
export async function livenessOf(rt: Runtime, stallMs: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const live = rt.liveness();
  const now = rt.options.clock.now();
  const counts = live.status === 'running' ? await rt.liveCounts().catch(() => undefined) : undefined;
  const due = counts ? counts.due : 0;
  const running = counts ? counts.byState.running : 0;
  const waitingMs = counts?.oldestDueAt !== undefined ? Math.max(0, now - counts.oldestDueAt) : 0;
  const idleMs = Math.max(0, now - live.lastProgressAt);
  const stalled = due > 0 && running === 0 && waitingMs > stallMs && idleMs > stallMs && rt.pausedNames().length === 0 && rt.heldNames().length === 0;
  const status = live.escalated ? 'escalated' : live.status !== 'running' ? live.status : !live.storeHealthy ? 'store-unavailable' : stalled ? 'stalled' : 'ok';
  const body: Record<string, unknown> = {
    status,
    runtime: live.status,
    uptimeMs: live.uptimeMs,
    lastProgressAt: live.lastProgressAt,
    idleMs,
    progressing: !stalled,
    nodeId: live.nodeId,
    store: live.store,
    storeHealthy: live.storeHealthy,
    ...(live.storeError ? { storeError: live.storeError } : {}),
    ...(counts ? { tasks: { queued: counts.byState.queued, due, running, oldestDueAgeMs: waitingMs } } : {}),
    ...(live.escalated ? { escalated: live.escalated } : {}),
  };
  return { status: status === 'ok' ? 200 : 503, body };
}

/** Registers health, metrics, actors and events (why: the operator's view of a running runtime). */
export function registerSystemRoutes(app: FastifyInstance, { rt, hub, sse }: RouteContext, options: SystemRouteOptions): void {
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS;

  app.get<{ Querystring: { full?: string } }>('/api/health', { schema: { querystring: querySchema({ full: 5 }) } }, async (request, reply) => {
    const full = readFlag(request.query.full, 'full');
    const { status, body } = await livenessOf(rt, stallMs);
    if (full === true && rt.builtin && status !== 503) body.report = await rt.builtin.healthCheck();
    return reply.code(status).send(body);
  });

  app.get('/metrics', { schema: { querystring: querySchema({}) } }, async (_request, reply) => {
    const text = await options.metrics.render();
    return reply.type(options.metrics.contentType).send(text);
  });

  app.get('/api/actors', { schema: { querystring: querySchema({}) } }, async () => rt.tree());

  app.post<{ Params: { address: string } }>(
    '/api/actors/:address/restart',
    { schema: { params: { type: 'object', properties: { address: { type: 'string' } }, required: ['address'] }, body: EMPTY_BODY_SCHEMA, querystring: querySchema({}) } },
    async (request) => {
      const address = request.params.address;
      if (address.length === 0 || address.length > 256) throw new TroupeError(ErrorCodes.UNKNOWN_ACTOR, 'No such actor');
      await rt.restartActor(address);
      return { restarted: address };
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/events',
    { schema: { querystring: querySchema({ name: 128, id: 64, output: 5 }) } },
    async (request, reply) => {
      const { name, id, output } = request.query;
      // Checked before the stream opens: a mistyped filter would otherwise be a stream that never sends anything.
      const withOutput = readFlag(output, 'output') === true;
      if (id !== undefined && id !== '' && !isTaskId(id)) throw invalidOption('id', 'a task id', id);
      reply.hijack();
      const stream = hub.open(request.raw, reply.raw, sse);
      const offs: Array<() => void> = [];
      stream.onClose(() => {
        for (const off of offs.splice(0)) off();
      });
      const onTask = (fact: { type: string; id: string; name: string; error?: unknown }) => {
        if ((name && fact.name !== name) || (id && fact.id !== id)) return;
        const data = fact.error ? { ...fact, error: publicError(fact.error as never) } : fact;
        // A listener runs inside the publisher (the tracker): a fact that cannot be sent ends this stream only.
        try {
          stream.send(fact.type, data);
        } catch {
          stream.close();
        }
      };
      for (const type of TASK_FACT_TYPES) {
        if (type === 'task.output' && !withOutput) continue;
        offs.push(rt.on(type, onTask as never));
      }
      for (const type of SYSTEM_FACTS) {
        offs.push(
          rt.on(type, ((fact: { type: string; error?: unknown }) => {
            try {
              stream.send(fact.type, fact.error ? { ...fact, error: publicError(fact.error as never) } : fact);
            } catch {
              stream.close();
            }
            if (fact.type === 'runtime.status' && (fact as { status?: string }).status === 'stopped') stream.close();
          }) as never),
        );
      }
      stream.send('hello', { nodeId: rt.nodeId, status: rt.status });
      return reply;
    },
  );
}
