// OpenTelemetry: the trace context active at enqueue travels with the task (also through the store), and each
// run is a span linked to it, with lifecycle events and the outcome as its status.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRuntime } from '../../src/runtime.ts';
import { waitFor } from '../helpers/wait-for.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

before(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
after(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

describe('OpenTelemetry', () => {
  it('each run is a CONSUMER span linked to the span that enqueued it; failures are ERROR spans', async () => {
    await using rt = await createRuntime({
      store: 'memory',
      maintenance: false,
      tasks: { work: { run: (i: { ok: boolean }) => { if (!i.ok) throw new Error('nope'); return 1; } } },
    });
    const tracer = trace.getTracer('test');
    const enqueuer = tracer.startSpan('http POST /orders');
    const ids = await context.with(trace.setSpan(context.active(), enqueuer), async () => [
      await rt.enqueue('work', { ok: true }),
      await rt.enqueue('work', { ok: false }),
    ]);
    enqueuer.end();
    await waitFor(() => exporter.getFinishedSpans().filter((s) => s.name === 'troupe.run work').length === 2);
    const runs = exporter.getFinishedSpans().filter((s) => s.name === 'troupe.run work');
    const byId = new Map(runs.map((s) => [s.attributes['troupe.task.id'], s]));
    const ok = byId.get(ids[0]!)!;
    const bad = byId.get(ids[1]!)!;
    assert.equal(ok.kind, SpanKind.CONSUMER);
    assert.equal(ok.links.length, 1);
    assert.equal(ok.links[0]!.context.traceId, enqueuer.spanContext().traceId);
    assert.equal(ok.links[0]!.context.spanId, enqueuer.spanContext().spanId);
    assert.deepEqual(ok.events.map((e) => e.name), ['running', 'succeeded']);
    assert.equal(ok.status.code, SpanStatusCode.OK);
    assert.equal(bad.status.code, SpanStatusCode.ERROR);
    assert.deepEqual(bad.events.map((e) => e.name), ['running', 'failed', 'exception']);
    assert.equal(bad.attributes['troupe.task.outcome'], 'failed');
    const stored = await rt.get(ids[0]!);
    assert.ok(stored?.input, 'the task is stored');
  });

  it('no span is active: nothing is stored and runs still get their own span', async () => {
    exporter.reset();
    await using rt = await createRuntime({ store: 'memory', maintenance: false, tasks: { work: { run: () => 2 } } });
    assert.equal(await rt.run('work'), 2);
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.links.length, 0);
  });

  it('telemetry: false records nothing', async () => {
    exporter.reset();
    await using rt = await createRuntime({ store: 'memory', maintenance: false, telemetry: false, tasks: { work: { run: () => 3 } } });
    assert.equal(await rt.run('work'), 3);
    assert.equal(exporter.getFinishedSpans().length, 0);
  });
});
