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
import type { Channel, ChannelListener } from 'node:diagnostics_channel';
import {
  type Context,
  context,
  isSpanContextValid,
  type Link,
  type MeterProvider,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
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
import { checkOptionNames, names } from '../internal/optionNames.js';
import { errorText } from '../internal/redisErrors.js';
import { ATTR, type Destination, errorType, eventNameAttribute } from './attributes.js';
import { RefusedHeaders } from './injected.js';
import { holdMetrics } from './metrics.js';
import { guard, safeExtract, safeSpanContextOf } from './safe.js';
import { inject } from './w3c.js';

/** Options of {@link registerOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /** Where spans go. @defaultValue the global tracer provider of `@opentelemetry/api` (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider | undefined;
  /**
   * Where metrics go. The global one is taken when `registerOpenTelemetry`
   * is called: set up the SDK first.
   * @defaultValue the global meter provider of `@opentelemetry/api` (`metrics.getMeterProvider()`)
   */
  meterProvider?: MeterProvider | undefined;
  /**
   * How trace context travels in event headers (W3C `traceparent` and
   * `tracestate` with the W3C propagator).
   * @defaultValue the global propagator of `@opentelemetry/api` (`propagation`), looked up on each use
   */
  propagator?: TextMapPropagator | undefined;
}

const OTEL_OPTIONS = names<OpenTelemetryOptions>()(['tracerProvider', 'meterProvider', 'propagator']);

/** Instrumentation scope of the spans and metrics. */
const SCOPE = 'pulse-streaming';

/** What a registration keeps per traced call: on the channel message, under a key of its own. */
class Started {
  /**
   * Set by the channel's `error` event: the call failed. Not `error !==
   * undefined`: a handler may fail with `undefined` (`Promise.reject()`).
   */
  failed = false;
  constructor(
    readonly span: Span,
    /** `performance.now()` when the handler call started (0 for an add: no duration is recorded). */
    readonly start: number,
    readonly destination: Destination,
  ) {}
}

/** What a registration leaves for {@link contextOf}: its propagator (undefined: the global one). */
interface Registration {
  readonly propagator: TextMapPropagator | undefined;
}

/**
 * The registrations of the process, newest last, kept on `globalThis` under
 * a `Symbol.for` key (as `@opentelemetry/api` keeps its globals): the ESM
 * and the CommonJS build of this module are two copies, and a bootstrap
 * that registers through one (`node --import ./tracing.mjs`) must be seen by
 * `contextOf` of the other (`require('pulse-streaming/otel')`). The version
 * in the key changes if this shape ever does.
 */
const REGISTRATIONS = Symbol.for('pulse-streaming.otel.registrations.v1');

function registrations(): Registration[] {
  const g = globalThis as { [REGISTRATIONS]?: Registration[] };
  g[REGISTRATIONS] ??= [];
  return g[REGISTRATIONS];
}

/**
 * Starts tracing and metrics for every stream and sink of this process (all
 * clients): `send <stream>` PRODUCER spans around `add` that carry the
 * active trace context in the event's headers; `process <stream>` CONSUMER
 * spans around each handler call of `sink.process()` (children of the
 * context the event carries, root spans for an event that carries none: never
 * children of the context `process()` was called in) and `sink.processBatch()`
 * (one root span per call, linked to each event's context); the counters
 * `messaging.client.sent.messages` and `messaging.client.consumed.messages`
 * and the histogram `messaging.process.duration` (seconds).
 * Returns the function that stops it all: no span starts after it is
 * called, and those already started end (their durations recorded, their
 * adds counted) when their add or handler call does. Nothing counted is
 * lost: the counters report what was done while registered, and what was
 * in flight at the call, to the SDK's next collection once that work ended
 * (its periodic export, or the last one its `shutdown()` makes), then stop
 * being observed. A registration made again on the same meter provider
 * adds to the same counts.
 *
 * A `processBatch()` call whose events come from several streams (a sink
 * reading several) is named `process` alone, without
 * `messaging.destination.name`, and its duration is recorded once without
 * it, as the messaging conventions want for an operation over several
 * destinations; its events are counted as consumed each under its stream.
 * `for await` loops and `subscribe()` get no process spans and are not
 * counted as consumed: the library does not know when their handling ends.
 *
 * The trace headers an add injects replace any of the propagator's fields
 * in the headers passed (a forwarded `tracestate` of another trace), and do
 * not count against the 256 headers a caller may pass. A header the
 * propagator writes that an event cannot carry (a name outside
 * `[A-Za-z0-9_.-]{1,64}`, as a Jaeger propagator's `uberctx-<key>` for a
 * baggage key `user*id` makes; a value with a lone surrogate; past 32 added
 * headers) is left out and reported once, per name, to `diag.warn`; the
 * caller's own headers are checked as without instrumentation.
 *
 * Instrumentation never fails an add or a handler call: what fails in it (a
 * propagator that throws on a header another producer wrote, a tracer that
 * throws) is reported to OpenTelemetry's `diag` logger, and a span already
 * started still ends.
 *
 * A sampler sees the attributes that name the operation and the destination
 * (`messaging.system`, `messaging.operation.type` and `.name`,
 * `messaging.destination.name`, `messaging.consumer.group.name`); the
 * per-event ones (`messaging.message.id`, `messaging.client.id`,
 * `pulse.event.name`, `pulse.delivery.count`, `messaging.batch.message_count`)
 * are set once the span records, so that a span the SDK drops costs none.
 * `pulse.event.name` is cut to 256 characters (the last one `…`): an event
 * name is whatever its producer wrote, and a megabyte one made export
 * batches larger than a collector accepts.
 *
 * What it costs per event is mostly the SDK's: starting a span (even one it
 * does not sample: IDs, a sampling decision) and a histogram record (it
 * hashes the attributes each time). With the W3C propagator the
 * `traceparent` header is written and read here, exactly as the propagator
 * would (otel/w3c.ts); any other propagator is called. The counters are
 * counted here and reported when the SDK collects.
 */
export function registerOpenTelemetry(options: OpenTelemetryOptions = {}): () => void {
  checkOptionNames('registerOpenTelemetry', options, OTEL_OPTIONS);
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const prop: TextMapPropagator = options.propagator ?? propagation;
  const key = Symbol('pulse-streaming otel');
  // Counted on the destinations, reported when the SDK collects (otel/metrics.ts).
  const held = holdMetrics(meter);
  const { destinations, duration } = held;
  const refused = new RefusedHeaders();

  // Calls whose span is started and not yet ended: after unregistering, the
  // end subscribers stay until the last of them ends, and the counts are
  // held for the SDK's next collection until then (see the returned function).
  let inFlight = 0;
  let registered = true;
  const stash = (msg: object, started: Started): void => {
    (msg as Record<symbol, Started>)[key] = started;
    inFlight++;
  };
  const take = (msg: object): Started | undefined => {
    const started = (msg as Record<symbol, Started | undefined>)[key];
    if (!started) return undefined;
    (msg as Record<symbol, Started | undefined>)[key] = undefined;
    // Not while the channel is publishing to its subscribers: a Node that removes one in
    // place would skip the next (another registration's).
    if (--inFlight === 0 && !registered) queueMicrotask(finish);
    return started;
  };
  const fail = (span: Span, err: unknown, type: string): void => {
    span.setAttribute(ATTR.errorType, type);
    if (err instanceof Error) span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(err) });
  };

  const onAddStart = (message: unknown): void => {
    const msg = message as AddMessage;
    const dest = destinations.send(msg.streamName);
    const active = context.active();
    // No span here, but the caller passed trace headers (a context forwarded by hand): continue that trace.
    const parent = hasKeys(msg.headers) && trace.getSpan(active) === undefined ? safeExtract(prop, active, msg.headers) : active;
    const span = tracer.startSpan(dest.spanName, dest.spanOptions, parent);
    // Stashed first: whatever fails below, the span ends with the add.
    stash(msg, new Started(span, 0, dest));
    if (span.isRecording()) span.setAttribute(ATTR.eventName, eventNameAttribute(msg.eventName));
    // Also for a span that does not record: the consumer joins the trace
    // (and its sampling decision) through the context carried.
    inject(prop, parent, span, msg.headers, refused);
  };
  const onAddEnd = (message: unknown): void => {
    const msg = message as AddMessage;
    const started = take(msg);
    if (!started) return;
    const { span, destination } = started;
    try {
      if (started.failed) {
        const type = errorType(msg.error);
        destination.countFailed(type, 1);
        if (span.isRecording()) fail(span, msg.error, type);
      } else {
        destination.count++;
        if (typeof msg.result === 'string' && span.isRecording()) span.setAttribute(ATTR.messageId, msg.result);
      }
    } finally {
      span.end();
    }
  };

  const onProcessStart = (message: unknown): void => {
    const msg = message as ProcessMessage;
    const ev = msg.event;
    const dest = destinations.process(ev.streamName, msg.sinkName);
    dest.count++;
    // Onto the root context, as contextOf does: the loop runs in the async context of the
    // process() call, whose span, baggage or suppressTracing() flag are not the event's.
    const parent = safeExtract(prop, ROOT_CONTEXT, ev.headers);
    const span = tracer.startSpan(dest.spanName, dest.spanOptions, parent);
    stash(msg, new Started(span, performance.now(), dest));
    const ctx = trace.setSpan(parent, span);
    msg.runInContext = (fn) => context.with(ctx, fn);
    if (span.isRecording()) {
      span.setAttributes({
        [ATTR.clientId]: msg.consumerName,
        [ATTR.messageId]: ev.id,
        [ATTR.eventName]: eventNameAttribute(ev.eventName),
        [ATTR.deliveryCount]: ev.deliveryCount,
      });
    }
  };

  const onBatchStart = (message: unknown): void => {
    const msg = message as ProcessBatchMessage;
    const first = msg.events[0]?.streamName ?? '';
    let mixed = false;
    for (const ev of msg.events) {
      if (ev.streamName !== first) {
        mixed = true;
        break;
      }
    }
    // Several streams: a span and a duration of no one stream (`process`), the events counted each under its own.
    const dest = mixed ? destinations.processMixed(msg.sinkName) : destinations.process(first, msg.sinkName);
    if (mixed) for (const ev of msg.events) destinations.process(ev.streamName, msg.sinkName).count++;
    else dest.count += msg.events.length;
    const links: Link[] = [];
    for (const ev of msg.events) {
      const sc = safeSpanContextOf(prop, ev.headers);
      if (sc && isSpanContextValid(sc)) links.push({ context: sc, attributes: { [ATTR.messageId]: ev.id } });
    }
    // A root span (linked to each event's context): not a child of the processBatch() call's context.
    const parent = ROOT_CONTEXT;
    const span = tracer.startSpan(dest.spanName, { ...dest.spanOptions, links }, parent);
    stash(msg, new Started(span, performance.now(), dest));
    const ctx = trace.setSpan(parent, span);
    msg.runInContext = (fn) => context.with(ctx, fn);
    if (span.isRecording()) {
      span.setAttributes({ [ATTR.clientId]: msg.consumerName, [ATTR.batchCount]: msg.events.length });
    }
  };

  const onProcessEnd = (message: unknown): void => {
    const msg = message as ProcessMessage | ProcessBatchMessage;
    const started = take(msg);
    if (!started) return;
    const { span, destination } = started;
    let attributes = destination.metricAttributes;
    try {
      if (started.failed) {
        const type = errorType(msg.error);
        attributes = destination.failedAttributes(type);
        if (span.isRecording()) fail(span, msg.error, type);
      }
    } finally {
      try {
        span.end();
      } finally {
        duration.record((performance.now() - started.start) / 1000, attributes);
      }
    }
  };

  const onError = (message: unknown): void => {
    const started = (message as Record<symbol, Started | undefined>)[key];
    if (started) started.failed = true;
  };

  // Subscribed channel by channel, so that unregistering can stop new spans
  // (the `start`s) at once and still end those already started. Each guarded:
  // Node reports a subscriber's throw as an uncaught exception.
  const starts: Array<[Channel, ChannelListener]> = [
    [addChannel.start, guard('send span start', onAddStart)],
    [processChannel.start, guard('process span start', onProcessStart)],
    [processBatchChannel.start, guard('process span start', onBatchStart)],
  ];
  const ends: Array<[Channel, ChannelListener]> = [
    [addChannel.error, onError],
    [addChannel.asyncEnd, guard('send span end', onAddEnd)],
    [processChannel.error, onError],
    [processChannel.asyncEnd, guard('process span end', onProcessEnd)],
    [processBatchChannel.error, onError],
    [processBatchChannel.asyncEnd, guard('process span end', onProcessEnd)],
  ];
  // Unregistered and nothing in flight: no span left to end, nothing left to count.
  const finish = (): void => {
    for (const [channel, listener] of ends) channel.unsubscribe(listener);
    held.release();
  };
  for (const [channel, listener] of [...ends, ...starts]) channel.subscribe(listener);
  const registration: Registration = { propagator: options.propagator };
  registrations().push(registration);

  return () => {
    if (!registered) return;
    registered = false;
    for (const [channel, listener] of starts) channel.unsubscribe(listener);
    const all = registrations();
    const i = all.indexOf(registration);
    if (i >= 0) all.splice(i, 1);
    // A span already started ends when its work does (its duration recorded, its add counted): the end
    // subscribers go then. The counts stay reported until the SDK's next collection after that (otel/metrics.ts).
    if (inFlight === 0) finish();
  };
}

/**
 * The trace context an event carries in its headers (put there by a
 * producer's `send` span), for `for await` loops and readers:
 * `context.with(contextOf(ev), () => tracer.startActiveSpan('handle', ...))`.
 * Uses the propagator of the latest registration of the process (through
 * either build, ESM or CommonJS), or the global one.
 * An event without trace headers gives the root context, and so does one
 * whose headers the propagator fails to read (reported to `diag`).
 */
export function contextOf(event: Event): Context {
  const all = registrations();
  const prop = all[all.length - 1]?.propagator ?? propagation;
  return safeExtract(prop, ROOT_CONTEXT, event.headers);
}

function hasKeys(o: Readonly<Record<string, string>>): boolean {
  for (const _ in o) return true;
  return false;
}
