/**
 * How the otel module writes and reads trace context: directly for the W3C
 * propagator (otel/w3c.ts), exactly as the propagator itself would; through
 * any other propagator as it is (a composite one carries baggage too); and
 * an add whose `start` subscriber adds a bad header settles with the error,
 * its span ended.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  type Context,
  context,
  createTraceState,
  defaultTextMapGetter,
  defaultTextMapSetter,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  SpanStatusCode,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { CompositePropagator, suppressTracing, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { ADD_CHANNEL } from '../packages/pulse-streaming/src/internal/diagnostics.js';
import { contextOf, registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { RefusedHeaders } from '../packages/pulse-streaming/src/otel/injected.js';
import { extract, inject, isW3C, spanContextOf } from '../packages/pulse-streaming/src/otel/w3c.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName } from './support/clients.js';
import { enableContext, startSdk, type TestSdk } from './support/otelSdk.js';

const W3C = new W3CTraceContextPropagator();
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SPAN_ID = 'b7ad6b7169203331';

/** A span context as a plain value: its fields, and the trace state serialized. */
function plain(sc: SpanContext | undefined): unknown {
  return sc && { ...sc, traceState: sc.traceState?.serialize() };
}

describe('the W3C fast path writes and reads what W3CTraceContextPropagator does', () => {
  it('is taken for the W3C propagator, given or global, and for nothing else', () => {
    expect(isW3C(W3C)).toBe(true);
    expect(isW3C(new CompositePropagator({ propagators: [W3C, new W3CBaggagePropagator()] }))).toBe(false);
    // Named like it, writes otherwise: the probe catches it.
    class W3CTraceContextPropagator implements TextMapPropagator {
      inject(ctx: Context, carrier: unknown): void {
        const sc = trace.getSpanContext(ctx);
        if (sc) (carrier as Record<string, string>).traceparent = `00-${sc.traceId}-${sc.spanId}-01`;
      }
      extract(ctx: Context): Context {
        return ctx;
      }
      fields(): string[] {
        return ['traceparent', 'tracestate'];
      }
    }
    expect(isW3C(new W3CTraceContextPropagator())).toBe(false);
    propagation.setGlobalPropagator(W3C);
    try {
      expect(isW3C(propagation)).toBe(true);
    } finally {
      propagation.disable();
    }
    expect(isW3C(propagation)).toBe(false);
  });

  it('inject: sampled, not sampled, other flags, trace state, invalid IDs, suppressed tracing', () => {
    const contexts: SpanContext[] = [
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED },
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.NONE },
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 3 },
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1, traceState: createTraceState('a=1,b=2') },
      INVALID_SPAN_CONTEXT,
      { traceId: 'XYZ', spanId: SPAN_ID, traceFlags: 1 },
      { traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID.toUpperCase(), traceFlags: 1 },
      { traceId: `${TRACE_ID}0`, spanId: SPAN_ID, traceFlags: 1 },
      { traceId: TRACE_ID, spanId: `${SPAN_ID}0`, traceFlags: 1 },
      { traceId: TRACE_ID.slice(1), spanId: SPAN_ID, traceFlags: 1 },
      { traceId: `${TRACE_ID.slice(0, 31)}g`, spanId: SPAN_ID, traceFlags: 1 },
      { traceId: TRACE_ID, spanId: `${SPAN_ID.slice(0, 15)}-`, traceFlags: 1 },
      // Digits that would line up if the lengths were not checked.
      { traceId: `${TRACE_ID.slice(0, 16)}-${SPAN_ID}`.padEnd(32, 'a'), spanId: SPAN_ID, traceFlags: 1 },
      { traceId: '0'.repeat(32), spanId: SPAN_ID, traceFlags: 1 },
      { traceId: TRACE_ID, spanId: '0'.repeat(16), traceFlags: 1 },
    ];
    for (const parent of [ROOT_CONTEXT, suppressTracing(ROOT_CONTEXT)]) {
      for (const sc of contexts) {
        const span = trace.wrapSpanContext(sc);
        const theirs: Record<string, string> = {};
        W3C.inject(trace.setSpan(parent, span), theirs, defaultTextMapSetter);
        const ours: Record<string, string> = {};
        inject(W3C, parent, span, ours, new RefusedHeaders());
        expect(ours, JSON.stringify(sc)).toEqual(theirs);
      }
    }
  });

  it('extract: the canonical form, and every other shape left to the propagator', () => {
    const tp = `00-${TRACE_ID}-${SPAN_ID}`;
    const carriers: Array<Record<string, string>> = [
      { traceparent: `${tp}-01` },
      { traceparent: `${tp}-00` },
      { traceparent: `${tp}-ff` },
      { traceparent: `${tp}-01`, tracestate: 'a=1,b=2' },
      { traceparent: `${tp}-01`.toUpperCase() },
      { traceparent: ` ${tp}-01` },
      { traceparent: `${tp}-01-extra` },
      { traceparent: `01-${TRACE_ID}-${SPAN_ID}-01-extra` },
      { traceparent: `ff-${TRACE_ID}-${SPAN_ID}-01` },
      { traceparent: `00-${'0'.repeat(32)}-${SPAN_ID}-01` },
      { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` },
      { traceparent: `${tp}-1` },
      { traceparent: '' },
      { tracestate: 'a=1' },
      {},
    ];
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: 'f'.repeat(32), spanId: 'e'.repeat(16), traceFlags: 1 });
    for (const headers of carriers) {
      const what = JSON.stringify(headers);
      for (const base of [ROOT_CONTEXT, parent]) {
        const theirs = W3C.extract(base, headers, defaultTextMapGetter);
        const ours = extract(W3C, base, headers);
        expect(plain(trace.getSpanContext(ours)), what).toEqual(plain(trace.getSpanContext(theirs)));
        // Nothing read: the context given back, as the propagator does.
        if (theirs === base) expect(ours, what).toBe(base);
      }
      expect(plain(spanContextOf(W3C, headers)), what).toEqual(
        plain(trace.getSpanContext(W3C.extract(ROOT_CONTEXT, headers, defaultTextMapGetter))),
      );
    }
  });
});

describe.each(CLIENT_KINDS)('trace context through the stream (%s)', (kind) => {
  let c: TestClient;
  let sdk: TestSdk | undefined;
  beforeAll(async () => {
    c = await connect(kind);
    enableContext();
  });
  afterAll(() => c.close());
  afterEach(async () => {
    await sdk?.shutdown();
    sdk = undefined;
  });

  it('another propagator is used as it is: a composite one carries baggage to the handler and to contextOf', async () => {
    sdk = startSdk();
    sdk.unregister();
    const unregister = registerOpenTelemetry({
      tracerProvider: sdk.tracerProvider,
      meterProvider: sdk.meterProvider,
      propagator: new CompositePropagator({ propagators: [W3C, new W3CBaggagePropagator()] }),
    });
    try {
      const s = new Stream(uniqueName(), c.redis);
      const sink = await s.newSink('b', { blockMs: 100 });
      const reader = await s.newReader({ blockMs: 100 });
      const rs = reader.subscribe();
      const withBaggage = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 't1' } }));
      await context.with(withBaggage, () => s.add('e', 'x'));
      const [ev] = (await take(rs, 1)) as [SinkEvent];
      expect(ev.headers.baggage).toBe('tenant=t1');
      expect(propagation.getBaggage(contextOf(ev))?.getEntry('tenant')?.value).toBe('t1');
      await reader.close();
      const ac = new AbortController();
      let seen: string | undefined;
      await sink.process(
        () => {
          seen = propagation.getBaggage(context.active())?.getEntry('tenant')?.value;
          ac.abort();
        },
        { signal: ac.signal },
      );
      expect(seen).toBe('t1');
      const [send] = sdk.named(`send ${s.name}`);
      const [proc] = sdk.named(`process ${s.name}`);
      expect(ev.headers.traceparent).toContain(send?.spanContext().spanId);
      expect(proc?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
      await sink.close();
      await s.destroy();
    } finally {
      unregister();
    }
  });

  it("a subscriber's bad header settles the add with InvalidArgumentError: the send span ends in ERROR, nothing is stored", async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    await s.add('e', 'first');
    const seen: string[] = [];
    const names = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
    const handlers = names.map((e) => {
      const fn = (msg: unknown): void => {
        const m = msg as { headers: Record<string, string>; error?: unknown };
        if (e === 'start') m.headers['bad header'] = 'v';
        seen.push(m.error === undefined ? e : `${e}!`);
      };
      subscribe(`tracing:${ADD_CHANNEL}:${e}`, fn);
      return [e, fn] as const;
    });
    try {
      await expect(s.add('e', 'x')).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      for (const [e, fn] of handlers) unsubscribe(`tracing:${ADD_CHANNEL}:${e}`, fn);
    }
    expect(seen).toEqual(['start', 'error!', 'end!', 'asyncStart!', 'asyncEnd!']);
    const sends = sdk.named(`send ${s.name}`);
    expect(sends).toHaveLength(2);
    expect(sends[1]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(sends[1]?.attributes['error.type']).toBe('InvalidArgumentError');
    expect(await c.cmd('XLEN', s.key)).toBe(1);
    await s.destroy();
  });
});
