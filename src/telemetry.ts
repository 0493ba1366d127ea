/**
 * OpenTelemetry, when `@opentelemetry/api` is installed (an optional peer dependency): the trace context active
 * at enqueue is stored with the task (W3C `traceparent`/`tracestate` in its options), and each run of the task is
 * a CONSUMER span linked to it, with the lifecycle steps as span events and the outcome as the span status.
 *
 * Nothing is loaded or recorded when the package is absent, and no context is stored when no span is active.
 */
import type { SerializedError } from './errors.ts';

type OtelApi = typeof import('@opentelemetry/api');
type Span = import('@opentelemetry/api').Span;

/** A run's span, or nothing. */
export interface RunSpan {
  event(name: string, attributes?: Record<string, string | number | boolean>): void;
  end(outcome: 'succeeded' | 'failed' | 'timed_out' | 'retrying' | 'cancelled' | 'released', error?: SerializedError): void;
}

export interface Telemetry {
  /** The active trace context as a carrier to store with a new task, or undefined when no span is active. */
  capture(): Record<string, string> | undefined;
  /**
   * Starts the span of one run (the task as claimed: its id, name, attempt count and stored options), linked to
   * the context stored at enqueue. Undefined when nothing records it: no SDK registered, or sampled out.
   */
  startRun(task: { id: string; name: string; attempts: number; options?: { trace?: Record<string, string> } | undefined }): RunSpan | undefined;
}

/** Loads the API if it is installed; resolves undefined otherwise. */
export async function loadTelemetry(): Promise<Telemetry | undefined> {
  let api: OtelApi;
  try {
    const specifier = '@opentelemetry/api';
    api = (await import(specifier)) as OtelApi;
  } catch {
    return undefined;
  }
  return createTelemetry(api);
}

/** Builds the telemetry hooks over a loaded API (exported for tests). */
export function createTelemetry(api: OtelApi): Telemetry {
  const tracer = () => api.trace.getTracer('troupe');
  // What a ProxyTracerProvider hands on to while no SDK is registered (a singleton of this copy of the API).
  const noopProvider = new api.ProxyTracerProvider().getDelegate();
  /**
   * True while no SDK is registered: the global provider is still this API copy's proxy, delegating to nothing.
   * Why: the API is often installed as some other package's dependency, with nothing recording; building the
   * span's options, a tracer and a non-recording span then cost ≈1–1.5 µs of every idle run (2–3 % of its
   * latency), for nothing. An SDK registered later is seen at the next run.
   */
  const unrecorded = (): boolean => {
    const provider = api.trace.getTracerProvider();
    return provider instanceof api.ProxyTracerProvider && provider.getDelegate() === noopProvider;
  };
  return {
    capture() {
      const active = api.context.active();
      const span = api.trace.getSpan(active);
      if (!span || !api.trace.isSpanContextValid(span.spanContext())) return undefined;
      const carrier: Record<string, string> = {};
      api.propagation.inject(active, carrier);
      if (carrier.traceparent === undefined) {
        // No propagator registered: write the W3C header ourselves.
        const c = span.spanContext();
        carrier.traceparent = `00-${c.traceId}-${c.spanId}-0${(c.traceFlags & 1).toString(16)}`;
      }
      return carrier;
    },
    startRun(task) {
      if (unrecorded()) return undefined;
      const links = [];
      const trace = task.options?.trace;
      if (trace) {
        const parent = parseTraceparent(api, trace);
        if (parent) links.push({ context: parent, attributes: { 'troupe.link': 'enqueued-by' } });
      }
      const span: Span = tracer().startSpan(`troupe.run ${task.name}`, {
        kind: api.SpanKind.CONSUMER,
        links,
        attributes: { 'troupe.task.id': task.id, 'troupe.task.name': task.name, 'troupe.task.attempt': task.attempts },
      });
      // Sampled out, or a provider that records nothing.
      if (!span.isRecording()) return undefined;
      span.addEvent('running', { attempt: task.attempts });
      return {
        event: (name, attributes) => span.addEvent(name, attributes),
        end(outcome, error) {
          span.addEvent(outcome);
          span.setAttribute('troupe.task.outcome', outcome);
          if (outcome === 'succeeded' || outcome === 'released') span.setStatus({ code: api.SpanStatusCode.OK });
          else {
            span.setStatus({ code: api.SpanStatusCode.ERROR, ...(error ? { message: `${error.code ?? error.name}: ${error.message}` } : {}) });
            if (error) span.recordException({ name: error.name, message: error.message, ...(error.code ? { code: error.code } : {}), ...(error.stack ? { stack: error.stack } : {}) });
          }
          span.end();
        },
      };
    },
  };
}

function parseTraceparent(api: OtelApi, carrier: Record<string, string>): import('@opentelemetry/api').SpanContext | undefined {
  const extracted = api.trace.getSpanContext(api.propagation.extract(api.ROOT_CONTEXT, carrier));
  if (extracted && api.trace.isSpanContextValid(extracted)) return extracted;
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(carrier.traceparent ?? '');
  if (!m) return undefined;
  const context = { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16), isRemote: true };
  return api.trace.isSpanContextValid(context) ? context : undefined;
}
