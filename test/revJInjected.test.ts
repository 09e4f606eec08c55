/**
 * Review J: "Instrumentation never fails an add" (README, registerOpenTelemetry TSDoc).
 * A propagator's inject writes what the request's context holds: with a
 * Jaeger-style propagator (one `uberctx-<key>` header per baggage entry, as
 * @opentelemetry/propagator-jaeger writes them), the baggage an upstream
 * HTTP client sent decides the headers. The add must still store the event.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { enableContext } from './support/otelSdk.js';

/** What @opentelemetry/propagator-jaeger's inject writes (trace header, then one header per baggage entry). */
class JaegerLike implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc) setter.set(carrier, 'uber-trace-id', `${sc.traceId}:${sc.spanId}:0:0${(sc.traceFlags || TraceFlags.NONE).toString(16)}`);
    const baggage = propagation.getBaggage(ctx);
    if (baggage) for (const [key, entry] of baggage.getAllEntries()) setter.set(carrier, `uberctx-${key}`, encodeURIComponent(entry.value));
  }
  extract(ctx: Context, _carrier: unknown, _getter: TextMapGetter): Context {
    return ctx;
  }
  fields(): string[] {
    return ['uber-trace-id'];
  }
}

describe.each(CLIENT_KINDS)('revJ: injected headers never fail an add (%s)', (kind) => {
  const cases: Array<[string, Record<string, { value: string }>]> = [
    // A long, dotted baggage key (57 characters): `uberctx-` makes the header name 65, past pulse's 64.
    ['a long baggage key', { 'com.example.checkout.request.originating-client.identifier': { value: 'v' } }],
    // A W3C baggage key is a token: `!`, `*`, `+`, `'` are valid token characters, not valid pulse header names.
    ['a baggage key with a token character pulse refuses', { 'user*id': { value: '42' } }],
  ];
  for (const [what, entries] of cases) {
    it(`${what}: the traced add still stores the event`, async () => {
      enableContext();
      const c = await connect(kind);
      const exporter = new InMemorySpanExporter();
      const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      const unregister = registerOpenTelemetry({ tracerProvider, propagator: new JaegerLike() });
      const s = new Stream(uniqueName(), c.redis);
      try {
        const request = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage(entries));
        const add = context.with(request, () => s.add('order.created', 'x'));
        await expect(add).resolves.toBeTypeOf('string');
        expect(await c.cmd('XLEN', s.key)).toBe(1);
      } finally {
        unregister();
        await s.destroy();
        await tracerProvider.shutdown();
        await c.close();
      }
    });
  }
});
