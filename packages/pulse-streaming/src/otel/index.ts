/**
 * `pulse-streaming/otel`: OpenTelemetry tracing and metrics for
 * pulse-streaming. It subscribes to the library's `node:diagnostics_channel`
 * channels (internal/diagnostics.ts); the core never imports
 * `@opentelemetry/api`, an optional peer dependency needed only here.
 *
 * ```ts
 * import { registerOpenTelemetry } from 'pulse-streaming/otel';
 * const unregister = registerOpenTelemetry(); // the global providers and propagator
 * ```
 */
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  type Histogram,
  isSpanContextValid,
  type Link,
  type MeterProvider,
  metrics,
  type ObservableResult,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { Event } from '../event.js';
import {
  type AddMessage,
  addChannel,
  type ProcessBatchMessage,
  type ProcessMessage,
  processBatchChannel,
  processChannel,
} from '../internal/diagnostics.js';
import { ATTR, AttributeSets, DURATION_BUCKETS, errorType, METRIC, SYSTEM } from './attributes.js';

/** Options of {@link registerOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /** Where spans go. @defaultValue the global tracer provider of `@opentelemetry/api` (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go. The global one is taken when `registerOpenTelemetry`
   * is called: set up the SDK first.
   * @defaultValue the global meter provider of `@opentelemetry/api` (`metrics.getMeterProvider()`)
   */
  meterProvider?: MeterProvider;
  /**
   * How trace context travels in event headers (W3C `traceparent` and
   * `tracestate` with the W3C propagator).
   * @defaultValue the global propagator of `@opentelemetry/api` (`propagation`), looked up on each use
   */
  propagator?: TextMapPropagator;
}

/** Instrumentation scope of the spans and metrics. */
const SCOPE = 'pulse-streaming';

/** What a registration keeps per traced call: on the channel message, under a key of its own. */
interface Started {
  readonly span: Span;
  readonly start: number;
  readonly stream: string;
  readonly sink: string | undefined;
}

/** The propagators of the registrations, newest last: what {@link contextOf} uses. */
const propagators: Array<TextMapPropagator | undefined> = [];

/**
 * Starts tracing and metrics for every stream and sink of this process (all
 * clients): `send <stream>` PRODUCER spans around `add` that carry the
 * active trace context in the event's headers; `process <stream>` CONSUMER
 * spans around each handler call of `sink.process()` (children of the
 * context the event carries) and `sink.processBatch()` (one span per call,
 * linked to each event's context); the counters
 * `messaging.client.sent.messages` and `messaging.client.consumed.messages`
 * and the histogram `messaging.process.duration` (seconds).
 * Returns the function that stops it all.
 */
export function registerOpenTelemetry(options: OpenTelemetryOptions = {}): () => void {
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const prop: TextMapPropagator = options.propagator ?? propagation;
  const key = Symbol('pulse-streaming otel');
  const sets = new AttributeSets();

  // Counted here and reported when the SDK collects: an add per event to an
  // SDK counter hashes its attributes each time, which publishing at
  // hundreds of thousands of events per second would feel.
  const sent = new Map<Attributes, number>();
  const consumed = new Map<Attributes, number>();
  const count = (into: Map<Attributes, number>, attrs: Attributes, n: number): void => {
    into.set(attrs, (into.get(attrs) ?? 0) + n);
  };
  const sentCounter = meter.createObservableCounter(METRIC.sent, {
    description: 'Messages a producer attempted to send (stream.add calls)',
    unit: '{message}',
  });
  const consumedCounter = meter.createObservableCounter(METRIC.consumed, {
    description: 'Messages handed to a handler of sink.process() or sink.processBatch()',
    unit: '{message}',
  });
  const observe = (from: Map<Attributes, number>) => (result: ObservableResult) => {
    for (const [attrs, n] of from) result.observe(n, attrs);
  };
  const observeSent = observe(sent);
  const observeConsumed = observe(consumed);
  sentCounter.addCallback(observeSent);
  consumedCounter.addCallback(observeConsumed);
  const duration: Histogram = meter.createHistogram(METRIC.processDuration, {
    description: 'Duration of handler calls of sink.process() and sink.processBatch()',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });

  const stash = (msg: object, started: Started): void => {
    (msg as Record<symbol, Started>)[key] = started;
  };
  const take = (msg: object): Started | undefined => {
    const started = (msg as Record<symbol, Started | undefined>)[key];
    if (started) (msg as Record<symbol, Started | undefined>)[key] = undefined;
    return started;
  };
  const fail = (span: Span, err: unknown): void => {
    const type = errorType(err);
    span.setAttribute(ATTR.errorType, type);
    if (err instanceof Error) span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  };

  const onAddStart = (message: unknown): void => {
    const msg = message as AddMessage;
    const parent = context.active();
    const attributes = sets.send(msg.streamName, msg.eventName);
    const span = tracer.startSpan(`send ${msg.streamName}`, { kind: SpanKind.PRODUCER, attributes }, parent);
    prop.inject(trace.setSpan(parent, span), msg.headers, defaultTextMapSetter);
    stash(msg, { span, start: 0, stream: msg.streamName, sink: undefined });
  };
  const onAddEnd = (message: unknown): void => {
    const msg = message as AddMessage;
    const started = take(msg);
    if (!started) return;
    const { span } = started;
    if (msg.error !== undefined) fail(span, msg.error);
    else if (typeof msg.result === 'string') span.setAttribute(ATTR.messageId, msg.result);
    span.end();
    count(sent, sets.get('send', msg.streamName, undefined, msg.error === undefined ? undefined : errorType(msg.error)), 1);
  };

  const onProcessStart = (message: unknown): void => {
    const msg = message as ProcessMessage;
    const ev = msg.event;
    const parent = prop.extract(context.active(), ev.headers, defaultTextMapGetter);
    const attributes: Attributes = {
      [ATTR.system]: SYSTEM,
      [ATTR.operationType]: 'process',
      [ATTR.operationName]: 'process',
      [ATTR.destination]: ev.streamName,
      [ATTR.consumerGroup]: msg.sinkName,
      [ATTR.clientId]: msg.consumerName,
      [ATTR.messageId]: ev.id,
      [ATTR.eventName]: ev.eventName,
      [ATTR.deliveryCount]: ev.deliveryCount,
    };
    const span = tracer.startSpan(`process ${ev.streamName}`, { kind: SpanKind.CONSUMER, attributes }, parent);
    const ctx = trace.setSpan(parent, span);
    msg.runInContext = (fn) => context.with(ctx, fn);
    count(consumed, sets.get('process', ev.streamName, msg.sinkName, undefined), 1);
    stash(msg, { span, start: performance.now(), stream: ev.streamName, sink: msg.sinkName });
  };

  const onBatchStart = (message: unknown): void => {
    const msg = message as ProcessBatchMessage;
    const stream = msg.events[0]?.streamName ?? '';
    const links: Link[] = [];
    for (const ev of msg.events) {
      const sc = trace.getSpanContext(prop.extract(ROOT_CONTEXT, ev.headers, defaultTextMapGetter));
      if (sc && isSpanContextValid(sc)) links.push({ context: sc, attributes: { [ATTR.messageId]: ev.id } });
    }
    const attributes: Attributes = {
      [ATTR.system]: SYSTEM,
      [ATTR.operationType]: 'process',
      [ATTR.operationName]: 'process',
      [ATTR.destination]: stream,
      [ATTR.consumerGroup]: msg.sinkName,
      [ATTR.clientId]: msg.consumerName,
      [ATTR.batchCount]: msg.events.length,
    };
    const parent = context.active();
    const span = tracer.startSpan(`process ${stream}`, { kind: SpanKind.CONSUMER, attributes, links }, parent);
    const ctx = trace.setSpan(parent, span);
    msg.runInContext = (fn) => context.with(ctx, fn);
    for (const ev of msg.events) count(consumed, sets.get('process', ev.streamName, msg.sinkName, undefined), 1);
    stash(msg, { span, start: performance.now(), stream, sink: msg.sinkName });
  };

  const onProcessEnd = (message: unknown): void => {
    const msg = message as ProcessMessage | ProcessBatchMessage;
    const started = take(msg);
    if (!started) return;
    const failed = msg.error !== undefined;
    if (failed) fail(started.span, msg.error);
    started.span.end();
    const attrs = sets.get('process', started.stream, started.sink, failed ? errorType(msg.error) : undefined);
    duration.record((performance.now() - started.start) / 1000, attrs);
  };

  const addHandlers = { start: onAddStart, asyncEnd: onAddEnd };
  const processHandlers = { start: onProcessStart, asyncEnd: onProcessEnd };
  const batchHandlers = { start: onBatchStart, asyncEnd: onProcessEnd };
  // The typings want all five handlers; Node subscribes those given.
  addChannel.subscribe(addHandlers as unknown as Parameters<typeof addChannel.subscribe>[0]);
  processChannel.subscribe(processHandlers as unknown as Parameters<typeof processChannel.subscribe>[0]);
  processBatchChannel.subscribe(batchHandlers as unknown as Parameters<typeof processBatchChannel.subscribe>[0]);
  propagators.push(options.propagator);

  let registered = true;
  return () => {
    if (!registered) return;
    registered = false;
    addChannel.unsubscribe(addHandlers as unknown as Parameters<typeof addChannel.unsubscribe>[0]);
    processChannel.unsubscribe(processHandlers as unknown as Parameters<typeof processChannel.unsubscribe>[0]);
    processBatchChannel.unsubscribe(batchHandlers as unknown as Parameters<typeof processBatchChannel.unsubscribe>[0]);
    sentCounter.removeCallback(observeSent);
    consumedCounter.removeCallback(observeConsumed);
    const i = propagators.lastIndexOf(options.propagator);
    if (i >= 0) propagators.splice(i, 1);
  };
}

/**
 * The trace context an event carries in its headers (put there by a
 * producer's `send` span), for `for await` loops and readers:
 * `context.with(contextOf(ev), () => tracer.startActiveSpan('handle', ...))`.
 * Uses the propagator of the latest registration, or the global one.
 * An event without trace headers gives the root context.
 */
export function contextOf(event: Event): Context {
  const prop = propagators[propagators.length - 1] ?? propagation;
  return prop.extract(ROOT_CONTEXT, event.headers, defaultTextMapGetter);
}
