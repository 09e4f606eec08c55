/**
 * The context a handler runs in is the event's, not that of whoever called
 * process()/processBatch() (a request handler, a `startup` span, boot code
 * under suppressTracing()): the sink's loop runs in the async context of that
 * call, and the process span once extracted the event's context onto it.
 * Now it is extracted onto the root context, as contextOf does: an event
 * without trace context gets a root span; no baggage leaks from the caller;
 * the caller's suppressTracing() does not suppress the events' spans.
 */
import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { CompositePropagator, suppressTracing, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, take, uniqueName } from './support/clients.js';
import { startSdk } from './support/otelSdk.js';

// Not concurrent: every registration of the process writes its own send span's context into
// each event, so tests asserting parents and links run one registration at a time.
describe.each(CLIENT_KINDS)('otel: the context of the process() call does not reach handlers (%s)', (kind) => {
  it('an event without trace context gets a root process span, not a child of the span active at process()', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    try {
      // As Go Pulse (or any untraced producer) writes it: no h.traceparent.
      await c.cmd('XADD', `pulse:stream:${s.name}`, '*', 'n', 'e', 'p', 'x');
      await c.cmd('XADD', `pulse:stream:${s.name}`, '*', 'n', 'e', 'p', 'y');
      const ac = new AbortController();
      let n = 0;
      let run: Promise<void> | undefined;
      sdk.tracerProvider.getTracer('app').startActiveSpan('startup', (span) => {
        run = sink.process(
          (_ev: SinkEvent) => {
            if (++n >= 2) ac.abort();
          },
          { signal: ac.signal },
        );
        span.end();
      });
      await run;
      const procs = sdk.named(`process ${s.name}`);
      expect(procs).toHaveLength(2);
      for (const p of procs) expect(p.parentSpanContext).toBeUndefined();
      // Two unrelated events: two traces, not one.
      expect(procs[0]?.spanContext().traceId).not.toBe(procs[1]?.spanContext().traceId);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('a processBatch() span is a root span linked to its events, not a child of the span active at processBatch()', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      let run: Promise<void> | undefined;
      sdk.tracerProvider.getTracer('app').startActiveSpan('startup', (span) => {
        run = sink.processBatch(() => ac.abort(), { signal: ac.signal });
        span.end();
      });
      await run;
      const [send] = sdk.named(`send ${s.name}`);
      const [batch] = sdk.named(`process ${s.name}`);
      expect(batch?.links.map((l) => l.context.spanId)).toEqual([send?.spanContext().spanId]);
      expect(batch?.parentSpanContext).toBeUndefined();
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it("a handler of an event without baggage neither sees nor forwards the baggage of process()'s caller", async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    sdk.unregister();
    const unregister = registerOpenTelemetry({
      tracerProvider: sdk.tracerProvider,
      meterProvider: sdk.meterProvider,
      propagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    });
    const s = new Stream(uniqueName(), c.redis);
    const out = new Stream(uniqueName('out'), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    const reader = await out.newReader({ blockMs: 100 });
    try {
      const derived = reader.subscribe();
      await s.add('e', 'no baggage');
      const ac = new AbortController();
      let seen: string | undefined;
      const request = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ tenant: { value: 'acme' } }));
      await context.with(request, () =>
        sink.process(
          async () => {
            seen = propagation.getBaggage(context.active())?.getEntry('tenant')?.value;
            await out.add('derived', 'x');
            ac.abort();
          },
          { signal: ac.signal },
        ),
      );
      const [ev] = await take(derived, 1);
      expect(seen).toBeUndefined();
      expect(ev?.headers.baggage).toBeUndefined();
    } finally {
      unregister();
      await reader.close();
      await sink.close();
      await s.destroy();
      await out.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('process() started under suppressTracing() (boot code) still traces events that carry a sampled context', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    try {
      await s.add('e', 'x'); // a sampled send span: the event carries its context
      const [send] = sdk.named(`send ${s.name}`);
      const ac = new AbortController();
      await context.with(suppressTracing(context.active()), () => sink.process(() => ac.abort(), { signal: ac.signal }));
      const [proc] = sdk.named(`process ${s.name}`);
      expect(proc?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
