/**
 * Instrumentation that cannot throw: Node reports a diagnostics_channel
 * subscriber's throw as an uncaught exception (the process exits without an
 * 'uncaughtException' listener), so what the otel module fails at (a
 * propagator that throws on a header another producer wrote, a tracer that
 * throws, a value thrown by a handler that cannot be described) goes to
 * OpenTelemetry's diagnostic logger (`diag.error`), as OpenTelemetry's own
 * instrumentations report theirs, never to the add or the handler.
 */
import type { ChannelListener } from 'node:diagnostics_channel';
import { type Context, diag, type SpanContext, type TextMapPropagator } from '@opentelemetry/api';
import { extract, spanContextOf } from './w3c.js';

/** `fn` as a channel subscriber that reports what it throws instead. */
export function guard(what: string, fn: (message: unknown) => void): ChannelListener {
  return (message) => {
    try {
      fn(message);
    } catch (err) {
      report(`${what} failed`, err);
    }
  };
}

/** Reports a failure of instrumentation to `diag`. */
function report(what: string, err: unknown): void {
  try {
    diag.error(`pulse-streaming/otel: ${what}`, err);
  } catch {
    // A logger that throws: nowhere left to say it.
  }
}

/**
 * `extract`, for a propagator that may throw on what another producer wrote
 * (a malformed `b3` header...): the span then starts under `parent`, without
 * the event's context, and the failure is reported.
 */
export function safeExtract(prop: TextMapPropagator, parent: Context, headers: Readonly<Record<string, string>>): Context {
  try {
    return extract(prop, parent, headers);
  } catch (err) {
    report('extracting the trace context of an event failed', err);
    return parent;
  }
}

/** `spanContextOf`, as {@link safeExtract}: undefined when the propagator throws. */
export function safeSpanContextOf(prop: TextMapPropagator, headers: Readonly<Record<string, string>>): SpanContext | undefined {
  try {
    return spanContextOf(prop, headers);
  } catch (err) {
    report('extracting the trace context of an event failed', err);
    return undefined;
  }
}
