/**
 * Instrumentation that fails never reaches the add or the handler: Node
 * reports a diagnostics_channel subscriber's throw as an uncaught exception
 * (the process exits without an 'uncaughtException' listener), so every
 * subscriber of pulse-streaming/otel is guarded and reports to
 * OpenTelemetry's `diag` logger instead, as OpenTelemetry's instrumentations
 * do. Delivery is unchanged, and a span already started still ends.
 */

import { tracingChannel } from 'node:diagnostics_channel';
import {
  type Context,
  DiagLogLevel,
  diag,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, uniqueName, waitFor } from './support/clients.js';
import { enableContext, startSdk } from './support/otelSdk.js';

/** A B3-single-like propagator that, like many hand-written ones, throws on a malformed value. */
class StrictB3 implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc) setter.set(carrier, 'b3', `${sc.traceId}-${sc.spanId}-1`);
  }
  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const v = getter.get(carrier, 'b3');
    if (v === undefined) return ctx;
    const [traceId, spanId] = String(v).split('-');
    if (traceId === undefined || spanId === undefined) throw new Error(`malformed b3 header ${String(v)}`);
    return trace.setSpanContext(ctx, { traceId, spanId, traceFlags: 1, isRemote: true });
  }
  fields(): string[] {
    return ['b3'];
  }
}

/** The W3C propagator, whose inject throws after the span started. */
class BrokenInject extends W3CTraceContextPropagator {
  override inject(): void {
    throw new Error('inject broken');
  }
}

/** What `diag.error` received: each message with its error's text. */
const reported: string[] = [];
const uncaught: unknown[] = [];
const onUncaught = (e: unknown): void => {
  uncaught.push(e);
};
/** Whether `diag.error` reported a failure whose error says `text`. */
const reportedWith = (text: string): boolean => reported.some((r) => r.includes(text));
/** Lets a subscriber's throw, which Node raises on process.nextTick, surface. */
const ticks = (): Promise<void> => new Promise((r) => setImmediate(r));

beforeAll(() => {
  enableContext();
  process.prependListener('uncaughtException', onUncaught);
  diag.setLogger(
    {
      error: (message: string, ...args: unknown[]) => {
        reported.push(`${message} ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`);
      },
      warn: () => {},
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.ERROR,
  );
});
afterAll(() => {
  diag.disable();
  process.removeListener('uncaughtException', onUncaught);
});

describe.concurrent.each(CLIENT_KINDS)('otel: instrumentation failures stay out of delivery (%s)', (kind) => {
  it('a tracer whose startSpan throws: the add resolves and the failure goes to diag', async () => {
    const c = await connect(kind);
    const name = uniqueName();
    const throwing = {
      getTracer: () => ({
        startSpan: () => {
          throw new Error(`tracer broken ${name}`);
        },
        startActiveSpan: () => {
          throw new Error(`tracer broken ${name}`);
        },
      }),
    } as unknown as TracerProvider;
    const unregister = registerOpenTelemetry({ tracerProvider: throwing });
    const s = new Stream(name, c.redis);
    try {
      await expect(s.add('e', 'x')).resolves.toBeTypeOf('string');
      await waitFor(() => reportedWith(`tracer broken ${name}`), { what: 'the failure reported to diag' });
      await ticks();
      expect(uncaught).toEqual([]);
    } finally {
      unregister();
      await s.destroy();
      await c.close();
    }
  });

  it('a propagator throwing on a malformed header another producer wrote: handled, a root span, reported', async () => {
    const c = await connect(kind);
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const unregister = registerOpenTelemetry({ tracerProvider, propagator: new StrictB3() });
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    const garbage = `garbage${Math.random().toString(36).slice(2)}`; // no dash: malformed
    try {
      await c.cmd('XADD', `pulse:stream:${s.name}`, '*', 'n', 'e', 'p', 'x', 'h.b3', garbage);
      const ac = new AbortController();
      let handled = 0;
      await sink.process(
        () => {
          handled++;
          ac.abort();
        },
        { signal: ac.signal },
      );
      expect(handled).toBe(1);
      // The same event in a batch: linked to nothing, handled.
      await c.cmd('XADD', `pulse:stream:${s.name}`, '*', 'n', 'e', 'p', 'y', 'h.b3', garbage);
      const batch = new AbortController();
      await sink.processBatch(() => batch.abort(), { signal: batch.signal });
      expect(reported.filter((r) => r.includes(`malformed b3 header ${garbage}`)).length).toBeGreaterThanOrEqual(2);
      const spans = exporter.getFinishedSpans().filter((x) => x.name === `process ${s.name}`);
      expect(spans).toHaveLength(2);
      expect(spans[0]?.parentSpanContext).toBeUndefined();
      expect(spans[1]?.links).toEqual([]);
      await ticks();
      expect(uncaught).toEqual([]);
    } finally {
      unregister();
      await sink.close();
      await s.destroy();
      await tracerProvider.shutdown();
      await c.close();
    }
  });

  it('a propagator whose inject throws: the add resolves and its send span still ends', async () => {
    const c = await connect(kind);
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const unregister = registerOpenTelemetry({ tracerProvider, propagator: new BrokenInject() });
    const s = new Stream(uniqueName(), c.redis);
    try {
      await expect(s.add('e', 'x')).resolves.toBeTypeOf('string');
      expect(exporter.getFinishedSpans().filter((x) => x.name === `send ${s.name}`)).toHaveLength(1);
      expect(reportedWith('inject broken')).toBe(true);
      await ticks();
      expect(uncaught).toEqual([]);
    } finally {
      unregister();
      await s.destroy();
      await tracerProvider.shutdown();
      await c.close();
    }
  });

  it('a handler throwing a null-prototype object: no uncaught exception, and its span ends as ERROR', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      await sink.process(
        (_ev: SinkEvent) => {
          ac.abort();
          throw Object.assign(Object.create(null), { code: 'E_PARSE' });
        },
        { signal: ac.signal, retry: false },
      );
      await ticks();
      expect(uncaught).toEqual([]);
      const [span] = sdk.named(`process ${s.name}`);
      expect(span?.status.code).toBe(SpanStatusCode.ERROR);
      expect(span?.status.message).toContain('E_PARSE');
      expect(span?.attributes['error.type']).toBe('_OTHER');
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});

// Alone (not concurrent): it checks that no registration is left listening.
describe.each(CLIENT_KINDS)('otel: a handler whose returned value cannot be read (%s)', (kind) => {
  it('its process span still ends, and unregister() leaves nothing listening', async () => {
    // Reading `then` of a revoked Proxy throws: that read came after the guarded call, so the
    // error escaped before the call settled, the span never ended, and the registration's count of
    // calls in flight never came back to 0 (its end listeners stayed for good). Found by a review.
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName('otel-revoked'), c.redis);
    const sink = await s.newSink('w', { blockMs: 100, ackGracePeriodMs: 200 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      let calls = 0;
      await sink.process(
        () => {
          if (++calls >= 2) {
            ac.abort();
            return;
          }
          const { proxy, revoke } = Proxy.revocable({}, {});
          revoke();
          return proxy;
        },
        { signal: ac.signal },
      );
      expect(sdk.named(`process ${s.name}`)).toHaveLength(2);
      sdk.unregister();
      expect(tracingChannel('pulse-streaming:process').asyncEnd.hasSubscribers).toBe(false);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
