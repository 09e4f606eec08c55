/**
 * The W3C trace context headers (`traceparent`, `tracestate`), written and
 * read here when the propagator in use is `@opentelemetry/core`'s
 * `W3CTraceContextPropagator`: the values it writes and the span contexts it
 * reads, without the context object an inject needs and the regular
 * expression an extract runs (measured: about 0.4-0.5 µs less per add,
 * against about 2.5 µs of client CPU for a whole uninstrumented publish, and
 * 0.3-0.4 µs per event of a `processBatch()` call; per `process()` handler
 * call it is within the noise). Anything else (another or a composite propagator, a `tracestate`
 * to parse, a `traceparent` of another version or shape) goes through the
 * propagator itself: the outcome is always the propagator's.
 */
import {
  type Context,
  createContextKey,
  defaultTextMapGetter,
  defaultTextMapSetter,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { injectChecked, type RefusedHeaders } from './injected.js';

/** `@opentelemetry/core`'s key of `suppressTracing()` (a `Symbol.for`: the same key): its propagator injects nothing under it. */
const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/**
 * A `traceparent` of version 00 in the only shape that version allows, as
 * the propagator's expression reads it (lowercase hex, no spaces); all-zero
 * IDs are left to the propagator, which refuses them.
 */
const CANONICAL = /^00-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** The API's accessor of the registered global propagator (undefined if a later API renames it: then no fast path). */
type GlobalPropagation = { _getGlobalPropagator?: () => TextMapPropagator };

/** Whether each propagator seen is the W3C one; the last one seen apart, as most processes have only one. */
const seen = new WeakMap<TextMapPropagator, boolean>();
let lastSeen: TextMapPropagator | undefined;
let lastIsW3C = false;

/**
 * Whether `prop` (or the global propagator, for the API's `propagation`) is
 * `W3CTraceContextPropagator`: its class name, its fields, and that it
 * writes and reads a sampled and an unsampled context exactly as this module
 * does. A look-alike that differs, or a minified class name, falls back.
 */
export function isW3C(prop: TextMapPropagator): boolean {
  const p = prop === propagation ? (propagation as unknown as GlobalPropagation)._getGlobalPropagator?.() : prop;
  if (p === undefined) return false;
  if (p === lastSeen) return lastIsW3C;
  let w3c = seen.get(p);
  if (w3c === undefined) {
    w3c = looksW3C(p);
    seen.set(p, w3c);
  }
  lastSeen = p;
  lastIsW3C = w3c;
  return w3c;
}

function looksW3C(p: TextMapPropagator): boolean {
  try {
    const fields = p.fields();
    return (
      p.constructor?.name === 'W3CTraceContextPropagator' &&
      fields.length === 2 &&
      fields[0] === 'traceparent' &&
      fields[1] === 'tracestate' &&
      probe(p, TraceFlags.SAMPLED) &&
      probe(p, TraceFlags.NONE)
    );
  } catch {
    return false;
  }
}

/** Whether `prop` writes and reads `traceFlags` in a sample context as {@link inject} and {@link spanContextOf} do. */
function probe(prop: TextMapPropagator, traceFlags: TraceFlags): boolean {
  const sc: SpanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags };
  const theirs: Record<string, string> = {};
  prop.inject(trace.setSpanContext(ROOT_CONTEXT, sc), theirs, defaultTextMapSetter);
  const ours: Record<string, string> = {};
  write(ROOT_CONTEXT, sc, ours);
  if (JSON.stringify(theirs) !== JSON.stringify(ours)) return false;
  const read = trace.getSpanContext(prop.extract(ROOT_CONTEXT, ours, defaultTextMapGetter));
  const mine = parse(ours);
  return read !== undefined && mine !== undefined && JSON.stringify(read) === JSON.stringify(mine);
}

/** What `W3CTraceContextPropagator.inject` writes for `sc` under `parent`. */
function write(parent: Context, sc: SpanContext, headers: Record<string, string>): void {
  if (parent.getValue(SUPPRESS_TRACING) === true || !isSpanContextValid(sc)) return;
  headers.traceparent = `00-${sc.traceId}-${sc.spanId}-0${Number(sc.traceFlags || TraceFlags.NONE).toString(16)}`;
  if (sc.traceState) headers.tracestate = sc.traceState.serialize();
}

/**
 * The span context of a canonical `traceparent` without `tracestate`, as the
 * propagator reads it; undefined for anything else (the propagator decides).
 */
function parse(headers: Readonly<Record<string, string>>): SpanContext | undefined {
  const tp = headers.traceparent;
  if (tp === undefined || tp.length !== 55 || headers.tracestate !== undefined || !CANONICAL.test(tp)) return undefined;
  const traceId = tp.slice(3, 35);
  const spanId = tp.slice(36, 52);
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(tp.slice(53), 16), isRemote: true };
}

/**
 * Writes the context of `span`, a child of `parent`, into `headers`: what
 * `prop.inject(trace.setSpan(parent, span), headers)` writes, after removing
 * the propagator's fields (`prop.fields()`) that `headers` already holds. A
 * caller forwarding another event's headers would otherwise keep what the
 * propagator does not overwrite: a `tracestate` of another trace beside the
 * new `traceparent`, or a whole stale context when nothing is injected
 * (tracing suppressed). Another propagator's headers are checked first
 * (otel/injected.ts): one pulse cannot store is left out and reported
 * through `refused`, never failing the add; the W3C fields written here
 * need no check (fixed names, and values of printable ASCII, as the W3C
 * TraceState of the API and SDK keeps them).
 */
export function inject(
  prop: TextMapPropagator,
  parent: Context,
  span: Span,
  headers: Record<string, string>,
  refused: RefusedHeaders,
): void {
  if (isW3C(prop)) {
    // Only when present: a delete turns V8's fast object into a slower dictionary one.
    if (headers.traceparent !== undefined) delete headers.traceparent;
    if (headers.tracestate !== undefined) delete headers.tracestate;
    write(parent, span.spanContext(), headers);
  } else {
    for (const field of prop.fields()) if (Object.hasOwn(headers, field)) delete headers[field];
    injectChecked(prop, trace.setSpan(parent, span), headers, refused);
  }
}

/** `prop.extract(parent, headers)`: `parent` with the remote span context the headers carry, if any. */
export function extract(prop: TextMapPropagator, parent: Context, headers: Readonly<Record<string, string>>): Context {
  if (isW3C(prop)) {
    if (headers.traceparent === undefined) return parent;
    const sc = parse(headers);
    if (sc !== undefined) return trace.setSpanContext(parent, sc);
  }
  return prop.extract(parent, headers, defaultTextMapGetter);
}

/** The remote span context the headers carry: `trace.getSpanContext(prop.extract(ROOT_CONTEXT, headers))`. */
export function spanContextOf(prop: TextMapPropagator, headers: Readonly<Record<string, string>>): SpanContext | undefined {
  if (isW3C(prop)) {
    if (headers.traceparent === undefined) return undefined;
    const sc = parse(headers);
    if (sc !== undefined) return sc;
  }
  return trace.getSpanContext(prop.extract(ROOT_CONTEXT, headers, defaultTextMapGetter));
}
