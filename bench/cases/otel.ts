/**
 * What OpenTelemetry costs while registered with an SDK that samples
 * nothing (`AlwaysOffSampler`; the W3C propagator, an async-context manager
 * and a meter provider with a reader, as a production setup has): publishing
 * (`send` spans, trace context injected into every event's headers) and
 * `sink.process()` (a `process` span and the metrics per handler call),
 * each against the same work unregistered, measured alternately in the same
 * run. With nothing registered the library does one `hasSubscribers` check
 * per add or handler call: the `publish` and `sink` cases show it.
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler, BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { type SinkEvent, Stream } from '../../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../../packages/pulse-streaming/src/otel/index.js';
import { READ_COUNT } from '../consumers.js';
import { publishWithLibrary } from '../producers.js';
import { EVENT_NAME, streamKey } from '../rawStreams.js';
import type { ThroughputResult } from '../results.js';
import { flush } from '../server.js';
import { alternate, rate } from '../stats.js';
import { type CaseContext, deadlineFor, throughputResult, uniqueName, withDeadline } from './context.js';

/** A reader the SDK collects into on demand only: nothing is exported during the runs. */
class IdleReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** The SDK, set up once; `register()` turns the library's integration on until the returned function is called. */
function sdk(): { register: () => () => void; shutdown: () => Promise<void> } {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const propagator = new W3CTraceContextPropagator();
  propagation.setGlobalPropagator(propagator);
  const tracerProvider = new BasicTracerProvider({ sampler: new AlwaysOffSampler() });
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  return {
    register: () => registerOpenTelemetry({ tracerProvider, meterProvider, propagator }),
    shutdown: async () => {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      context.disable();
      propagation.disable();
    },
  };
}

/** Runs `fn` registered or not. */
async function maybeRegistered<T>(on: boolean, register: () => () => void, fn: () => Promise<T>): Promise<T> {
  const unregister = on ? register() : undefined;
  try {
    return await fn();
  } finally {
    unregister?.();
  }
}

async function publishRun(ctx: CaseContext, events: number): Promise<number> {
  const stream = new Stream(uniqueName('otel-publish'), ctx.client.redis, { maxLen: 0 });
  try {
    const t0 = performance.now();
    await withDeadline(publishWithLibrary(stream, events, ctx.payload, ctx.options.window), deadlineFor(events), 'publish');
    return rate(events, performance.now() - t0);
  } finally {
    await flush(ctx.client);
  }
}

/** The sampled-out trace context every event of the sink runs carries, as a registered producer writes it. */
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';

async function sinkRun(ctx: CaseContext, events: number): Promise<number> {
  const name = uniqueName('otel-sink');
  const key = streamKey(name);
  for (let done = 0; done < events; done += ctx.options.window) {
    const n = Math.min(ctx.options.window, events - done);
    await ctx.client.pipeline(
      Array.from({ length: n }, () => ['XADD', key, '*', 'n', EVENT_NAME, 'p', ctx.payload, 'h.traceparent', TRACEPARENT]),
    );
  }
  const stream = new Stream(name, ctx.client.redis, { maxLen: 0 });
  const sink = await stream.newSink('bench', { startAt: 'oldest', maxPolled: READ_COUNT });
  try {
    const ac = new AbortController();
    let handled = 0;
    const handler = (_ev: SinkEvent): void => {
      if (++handled === events) ac.abort();
    };
    const t0 = performance.now();
    await withDeadline(sink.process(handler, { concurrency: 100, signal: ac.signal }), deadlineFor(events), 'process');
    return rate(events, performance.now() - t0);
  } finally {
    await sink.close();
    await flush(ctx.client);
  }
}

export async function otelCases(ctx: CaseContext): Promise<ThroughputResult[]> {
  const { events, runs, warmupEvents, window } = ctx.options;
  const otel = sdk();
  try {
    const out: ThroughputResult[] = [];
    const sides = [
      {
        case: 'otel-publish' as const,
        title: `publish, ${window} in flight, OpenTelemetry registered (never sampling)`,
        run: (n: number) => publishRun(ctx, n),
      },
      {
        case: 'otel-sink' as const,
        title: 'sink.process() (concurrency 100), OpenTelemetry registered (never sampling)',
        run: (n: number) => sinkRun(ctx, n),
      },
    ];
    for (const side of sides) {
      await maybeRegistered(true, otel.register, () => side.run(warmupEvents));
      await side.run(warmupEvents);
      const m = await alternate(
        runs,
        () => maybeRegistered(true, otel.register, () => side.run(events)),
        () => side.run(events),
      );
      out.push(
        throughputResult(ctx, { case: side.case, title: side.title, baselineName: 'the same, not registered', events }, m),
      );
    }
    return out;
  } finally {
    await otel.shutdown();
  }
}
