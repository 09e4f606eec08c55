/**
 * An add whose caller passes headers that already hold a trace context
 * (forwarding another event's or a request's headers): the event carries
 * the send span's context only. The propagator's fields are removed before
 * it injects; a `tracestate` of another trace once stayed beside the new
 * `traceparent` (W3C Trace Context ties one to the other).
 */
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, take, uniqueName } from './support/clients.js';
import { startSdk } from './support/otelSdk.js';

const FORWARDED = {
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'vendor=abc',
  baggage: 'tenant=other',
};

// Not concurrent: every registration of the process writes its own send span's context into each event.
describe.each(CLIENT_KINDS)('otel: forwarded trace headers (%s)', (kind) => {
  for (const composite of [false, true]) {
    const which = composite ? 'a composite propagator (W3C and baggage)' : 'the W3C propagator';
    it(`under an active span, the event carries the send span's context only, not the forwarded one (${which})`, async () => {
      const c = await connect(kind);
      const sdk = startSdk();
      let unregister: (() => void) | undefined;
      if (composite) {
        sdk.unregister();
        const propagator = new CompositePropagator({
          propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
        });
        unregister = registerOpenTelemetry({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider, propagator });
      }
      const s = new Stream(uniqueName(), c.redis);
      const reader = await s.newReader({ blockMs: 100 });
      try {
        const rs = reader.subscribe();
        await sdk.tracerProvider.getTracer('app').startActiveSpan('request', async (span) => {
          await s.add('e', 'x', { headers: { ...FORWARDED, tenant: 't' } });
          span.end();
        });
        const [send] = sdk.named(`send ${s.name}`);
        const [ev] = await take(rs, 1);
        expect(send?.spanContext().traceState).toBeUndefined();
        expect(ev?.headers).toEqual({
          traceparent: `00-${send?.spanContext().traceId}-${send?.spanContext().spanId}-01`,
          tenant: 't',
          // The composite propagator's fields include baggage: the active context has none.
          ...(composite ? {} : { baggage: FORWARDED.baggage }),
        });
      } finally {
        unregister?.();
        await reader.close();
        await s.destroy();
        await sdk.shutdown();
        await c.close();
      }
    });
  }

  it('with no active span, the forwarded context is the parent: its trace state is carried on, as the span has it', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    try {
      const rs = reader.subscribe();
      await s.add('e', 'x', { headers: { traceparent: FORWARDED.traceparent, tracestate: FORWARDED.tracestate } });
      const [send] = sdk.named(`send ${s.name}`);
      const [ev] = await take(rs, 1);
      expect(send?.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
      expect(ev?.headers.traceparent).toBe(`00-0af7651916cd43dd8448eb211c80319c-${send?.spanContext().spanId}-01`);
      expect(ev?.headers.tracestate).toBe('vendor=abc');
    } finally {
      await reader.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
