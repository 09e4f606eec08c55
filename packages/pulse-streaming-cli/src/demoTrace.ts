/**
 * `demo --trace`: OpenTelemetry in the demo's processes, as a user would set
 * it up (an SDK, `registerOpenTelemetry()` from `pulse-streaming/otel`), with
 * the spans kept in memory instead of exported. The producer (the demo
 * process) decides which traces are sampled; the consumer processes follow
 * that decision, carried in each event's `traceparent`, and send their
 * finished spans back over the demo's IPC channel, so that one trace holds
 * the producer's `send` span and the consumers' `process` spans.
 *
 * Loaded only with --trace (a dynamic import): the other commands never load
 * the OpenTelemetry packages.
 */
import { type Context, context, type Link, type SpanAttributes, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { registerOpenTelemetry } from 'pulse-streaming/otel';
import type { TraceSpan } from './demoProtocol.js';

/** Traces the producer samples at most, about: enough to choose from, little to send back. */
const SAMPLED_TRACES = 2000;
/** The first adds are always sampled: a short demo still shows some. */
const FIRST_SAMPLED = 5;

const KINDS: Record<SpanKind, TraceSpan['kind']> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const STATUSES: Record<SpanStatusCode, TraceSpan['status']> = {
  [SpanStatusCode.UNSET]: 'unset',
  [SpanStatusCode.OK]: 'ok',
  [SpanStatusCode.ERROR]: 'error',
};

const hrMs = ([s, ns]: [number, number]): number => s * 1000 + ns / 1e6;

/** A span as the demo carries it: plain data, for IPC and JSON. */
export function toTraceSpan(span: ReadableSpan, processLabel: string): TraceSpan {
  const { traceId, spanId } = span.spanContext();
  const attributes: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(span.attributes)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') attributes[k] = v;
  }
  return {
    traceId,
    spanId,
    ...(span.parentSpanContext ? { parentSpanId: span.parentSpanContext.spanId } : {}),
    name: span.name,
    kind: KINDS[span.kind],
    startMs: hrMs(span.startTime),
    durationMs: hrMs(span.duration),
    process: processLabel,
    pid: process.pid,
    status: STATUSES[span.status.code],
    attributes,
    links: span.links.map((l: Link) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
  };
}

/** Keeps the spans that end, as {@link TraceSpan}s, until taken. */
class Collector implements SpanProcessor {
  #spans: TraceSpan[] = [];
  constructor(private readonly processLabel: string) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    this.#spans.push(toTraceSpan(span, this.processLabel));
  }
  take(): TraceSpan[] {
    const spans = this.#spans;
    this.#spans = [];
    return spans;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** Samples the first few traces, then one in `every`: a bounded share of a long demo. */
class EveryNth implements Sampler {
  #seen = 0;
  constructor(private readonly every: number) {}
  shouldSample(_ctx: Context, _traceId: string, _name: string, _kind: SpanKind, _attrs: SpanAttributes): SamplingResult {
    const n = ++this.#seen;
    const sampled = n <= FIRST_SAMPLED || n % this.every === 0;
    return { decision: sampled ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }
  toString(): string {
    return `EveryNth{${this.every}}`;
  }
}

/** The producer side of --trace; see {@link startProducerTracing}. */
export interface DemoTracing {
  /** Spans sent back by a consumer process. */
  add(spans: readonly TraceSpan[]): void;
  /** Stops tracing and returns every span: the producer's and those the consumers sent. */
  stop(): Promise<TraceSpan[]>;
}

/** The SDK of one process, registered with the library; `stop()` undoes it all. */
function startSdk(sampler: Sampler, processLabel: string): { collector: Collector; stop: () => Promise<void> } {
  // What NodeTracerProvider.register() sets up, without touching the global tracer provider.
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const collector = new Collector(processLabel);
  const tracerProvider = new BasicTracerProvider({ sampler, spanProcessors: [collector] });
  const unregister = registerOpenTelemetry({ tracerProvider, propagator: new W3CTraceContextPropagator() });
  return {
    collector,
    stop: async () => {
      unregister();
      await tracerProvider.shutdown();
      context.disable();
    },
  };
}

/**
 * Starts tracing in the demo (producer) process, before it publishes
 * `events` events: a sampled share of about {@link SAMPLED_TRACES} traces.
 */
export function startProducerTracing(events: number): DemoTracing {
  const every = Math.max(1, Math.ceil(events / SAMPLED_TRACES));
  const sdk = startSdk(new EveryNth(every), 'producer');
  const fromConsumers: TraceSpan[] = [];
  return {
    add: (spans) => {
      for (const s of spans) fromConsumers.push(s);
    },
    stop: async () => {
      await sdk.stop();
      return [...sdk.collector.take(), ...fromConsumers];
    },
  };
}

/**
 * Starts tracing in a consumer process: it samples what the producer
 * sampled (the flag in `traceparent`) and nothing else. `take()` returns
 * the spans that ended since the last call.
 */
export function startConsumerTracing(label: string): { take: () => TraceSpan[]; stop: () => Promise<void> } {
  const sdk = startSdk(new ParentBasedSampler({ root: new AlwaysOffSampler() }), label);
  return { take: () => sdk.collector.take(), stop: sdk.stop };
}
