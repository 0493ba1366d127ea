// Telemetry hooks over the OpenTelemetry API: with the API installed but no SDK registered, a run starts no span at
// all (no tracer, no span options); an SDK registered later records the next run.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as api from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createTelemetry } from '../src/telemetry.ts';

/** The API with `trace.getTracer` counted. */
function countingApi(): { api: typeof api; tracers: () => number } {
  let tracers = 0;
  const trace = Object.create(api.trace) as typeof api.trace;
  trace.getTracer = (name: string, version?: string) => {
    tracers++;
    return api.trace.getTracer(name, version);
  };
  return { api: { ...api, trace }, tracers: () => tracers };
}

after(() => api.trace.disable());

describe('telemetry', () => {
  it('starts no span while no SDK is registered, and records once one is', async () => {
    api.trace.disable();
    const counted = countingApi();
    const telemetry = createTelemetry(counted.api);
    assert.equal(telemetry.startRun({ id: 't1', name: 'work', attempts: 1 }), undefined);
    assert.equal(counted.tracers(), 0, 'no tracer is asked for while nothing records');

    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    assert.ok(api.trace.setGlobalTracerProvider(provider));
    const recorded = telemetry.startRun({ id: 't2', name: 'work', attempts: 2, options: { trace: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } } });
    assert.ok(recorded);
    recorded.end('succeeded');
    assert.equal(counted.tracers(), 1);
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.name, 'troupe.run work');
    assert.equal(spans[0]!.attributes['troupe.task.id'], 't2');
    assert.equal(spans[0]!.attributes['troupe.task.attempt'], 2);
    assert.equal(spans[0]!.links[0]?.context.traceId, '0af7651916cd43dd8448eb211c80319c');
    await provider.shutdown();
  });

  it('a provider registered by another copy of the API is not taken for the idle one', () => {
    api.trace.disable();
    const foreign = { getTracer: () => api.trace.getTracer('x') } as unknown as api.TracerProvider;
    let asked = 0;
    const trace = Object.create(api.trace) as typeof api.trace;
    trace.getTracerProvider = () => foreign;
    trace.getTracer = (name: string, version?: string) => {
      asked++;
      return api.trace.getTracer(name, version);
    };
    createTelemetry({ ...api, trace }).startRun({ id: 't3', name: 'work', attempts: 1 })?.end('failed');
    assert.equal(asked, 1, 'a provider that is not this copy\'s idle proxy gets its tracer asked for');
  });
});
