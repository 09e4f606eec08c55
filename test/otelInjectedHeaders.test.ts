/**
 * A propagator's injected headers never fail an add ("Instrumentation never
 * fails an add": README, registerOpenTelemetry TSDoc). A propagator's inject
 * writes what the request's context holds: with a Jaeger-style propagator
 * (one `uberctx-<key>` header per baggage entry, as
 * @opentelemetry/propagator-jaeger writes them), the baggage an upstream
 * HTTP client sent decides the headers. A header pulse cannot store is left
 * out (reported once to `diag.warn`), the others are written, and the add
 * stores the event; the caller's own bad headers are still refused. From
 * outside review J, whose cases failed the add with InvalidArgumentError.
 */
import {
  type Context,
  context,
  DiagLogLevel,
  diag,
  propagation,
  ROOT_CONTEXT,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { headerFields, MAX_INJECTED_HEADERS } from '../packages/pulse-streaming/src/internal/headers.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { injectChecked, RefusedHeaders } from '../packages/pulse-streaming/src/otel/injected.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';
import { enableContext } from './support/otelSdk.js';

/** What @opentelemetry/propagator-jaeger's inject writes (trace header, then one header per baggage entry). */
class JaegerLike implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc)
      setter.set(carrier, 'uber-trace-id', `${sc.traceId}:${sc.spanId}:0:0${(sc.traceFlags || TraceFlags.NONE).toString(16)}`);
    const baggage = propagation.getBaggage(ctx);
    if (baggage)
      for (const [key, entry] of baggage.getAllEntries()) setter.set(carrier, `uberctx-${key}`, encodeURIComponent(entry.value));
  }
  extract(ctx: Context, _carrier: unknown, _getter: TextMapGetter): Context {
    return ctx;
  }
  fields(): string[] {
    return ['uber-trace-id'];
  }
}

/** What `diag.warn` received. */
const warned: string[] = [];
beforeAll(() => {
  const ignore = () => {};
  diag.setLogger(
    { error: ignore, warn: (message: string) => warned.push(message), info: ignore, debug: ignore, verbose: ignore },
    DiagLogLevel.WARN,
  );
});
afterAll(() => diag.disable());

describe.each(CLIENT_KINDS)('otel: injected headers never fail an add (%s)', (kind) => {
  const cases: Array<[string, Record<string, { value: string }>]> = [
    // A long, dotted baggage key (57 characters): `uberctx-` makes the header name 65, past pulse's 64.
    ['a long baggage key', { 'com.example.checkout.request.originating-client.identifier': { value: 'v' } }],
    // A W3C baggage key is a token: `!`, `*`, `+`, `'` are valid token characters, not valid pulse header names.
    ['a baggage key with a token character pulse refuses', { 'user*id': { value: '42' } }],
  ];
  /** Runs `body` on a new stream of a client traced with the Jaeger-like propagator, then cleans up. */
  async function traced(body: (s: Stream, c: TestClient, exporter: InMemorySpanExporter) => Promise<void>): Promise<void> {
    enableContext();
    const c = await connect(kind);
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const unregister = registerOpenTelemetry({ tracerProvider, propagator: new JaegerLike() });
    const s = new Stream(uniqueName(), c.redis);
    try {
      await body(s, c, exporter);
    } finally {
      unregister();
      await s.destroy();
      await tracerProvider.shutdown();
      await c.close();
    }
  }

  for (const [what, entries] of cases) {
    it(`${what}: the traced add still stores the event`, () =>
      traced(async (s, c, exporter) => {
        const from = warned.length;
        const request = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage(entries));
        const add = context.with(request, () => s.add('order.created', 'x'));
        await expect(add).resolves.toBeTypeOf('string');
        expect(await c.cmd('XLEN', s.key)).toBe(1);
        // The propagator's header pulse stores is written; the refused one is reported, once per name.
        const [[, fields]] = (await c.cmd('XRANGE', s.key, '-', '+')) as [[string, string[]]];
        expect(fields).toContain('h.uber-trace-id');
        expect(fields.filter((f) => f.startsWith('h.uberctx-'))).toEqual([]);
        const [key] = Object.keys(entries) as [string];
        const about = () => warned.slice(from).filter((w) => w.includes(JSON.stringify(`uberctx-${key}`)));
        expect(about()).toHaveLength(1);
        await context.with(request, () => s.add('order.created', 'y'));
        expect(about()).toHaveLength(1);
        expect(await c.cmd('XLEN', s.key)).toBe(2);
        expect(exporter.getFinishedSpans().map((span) => span.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
      }));
  }

  it("the caller's own bad header is still refused when traced, nothing stored", () =>
    traced(async (s, c) => {
      await expect(s.add('e', 'x', { headers: { 'user*id': '42' } })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await c.cmd('EXISTS', s.key)).toBe(0);
    }));
});

describe('otel: what a propagator injects is bounded as an add allows', () => {
  it('past 32 added headers the rest are left out and reported; a caller header it writes is replaced, not counted', () => {
    const many: TextMapPropagator = {
      inject: (_ctx, carrier, setter) => {
        setter.set(carrier, '__proto__', 'p');
        for (let i = 0; i < 40; i++) setter.set(carrier, `x-${i}`, 'v');
        setter.set(carrier, 'mine', 'theirs');
      },
      extract: (ctx) => ctx,
      fields: () => [],
    };
    const headers: Record<string, string> = { mine: 'caller' };
    const from = warned.length;
    injectChecked(many, ROOT_CONTEXT, headers, new RefusedHeaders());
    expect(Object.keys(headers)).toHaveLength(1 + MAX_INJECTED_HEADERS);
    // `__proto__` is a header like any other, never the object's prototype.
    expect(Object.hasOwn(headers, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(headers.mine).toBe('theirs');
    expect(headers['x-31']).toBeUndefined();
    expect(warned.slice(from).filter((w) => w.includes(`at most ${MAX_INJECTED_HEADERS}`))).toHaveLength(40 - 31);
    // What an add then checks: it passes.
    expect(headerFields(headers)).toHaveLength(2 * (1 + MAX_INJECTED_HEADERS));
  });
});
