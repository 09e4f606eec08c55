/**
 * A producer or consumer in its own process, for the tests of headers, dedup
 * and OpenTelemetry across processes. Imports the built library
 * (`npm run build`). Run as `node wireChild.mjs '<json config>'`:
 *
 * - lib: the library's built ESM folder (packages/pulse-streaming/dist/esm)
 * - url or clusterPorts, kind ('ioredis' | 'node-redis'): where and with which client
 * - stream: the stream name
 * - mode:
 *   - 'dedup': waits for a line on stdin, then adds `count` events with dedupIds
 *     `d0`... all in one tick, then the same again one at a time; prints
 *     {type:'ids', merged: [...], sequential: [...]}
 *   - 'otel-produce': registers OpenTelemetry (in-memory exporter, W3C
 *     propagator), adds `count` events inside a parent span, prints
 *     {type:'spans', spans} with the finished spans
 *   - 'otel-consume': registers OpenTelemetry, runs `sink.process()` on sink
 *     `sink` until `count` events were handled, prints {type:'spans', spans}
 *
 * Prints {type:'ready'} first and {type:'error', err} on failure, one JSON
 * object per line.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
process.on('unhandledRejection', (err) => out({ type: 'error', err: String(err?.stack ?? err) }));

const { Stream } = await import(pathToFileURL(join(cfg.lib, 'index.js')).href);

async function connect() {
  if (cfg.kind === 'ioredis') {
    const { Redis, Cluster } = await import('ioredis');
    const client = cfg.clusterPorts
      ? new Cluster(cfg.clusterPorts.map((port) => ({ host: '127.0.0.1', port })))
      : new Redis(cfg.url, { maxRetriesPerRequest: 3 });
    client.on('error', () => {});
    return { client, close: () => client.disconnect() };
  }
  const { createClient, createCluster } = await import('redis');
  const client = cfg.clusterPorts
    ? createCluster({ rootNodes: cfg.clusterPorts.map((port) => ({ url: `redis://127.0.0.1:${port}` })) })
    : createClient({ url: cfg.url });
  client.on('error', () => {});
  await client.connect();
  return { client, close: () => client.destroy() };
}

function stdinLine() {
  return new Promise((resolve) => {
    process.stdin.once('data', () => {
      // An open stdin would keep the process alive.
      process.stdin.destroy();
      resolve();
    });
  });
}

async function otel() {
  const api = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { registerOpenTelemetry } = await import(pathToFileURL(join(cfg.lib, 'otel/index.js')).href);
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const unregister = registerOpenTelemetry({ tracerProvider, propagator: new W3CTraceContextPropagator() });
  const spans = () =>
    exporter.getFinishedSpans().map((s) => ({
      name: s.name,
      kind: s.kind,
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      parentSpanId: s.parentSpanContext?.spanId,
      attributes: s.attributes,
    }));
  return { api, tracer: tracerProvider.getTracer('child'), spans, unregister };
}

const { client, close } = await connect();
try {
  const stream = new Stream(cfg.stream, client);
  if (cfg.mode === 'dedup') {
    out({ type: 'ready' });
    await stdinLine();
    const merged = await Promise.all(Array.from({ length: cfg.count }, (_, i) => stream.add('e', `m${i}`, { dedupId: `d${i}` })));
    const sequential = [];
    for (let i = 0; i < cfg.count; i++) sequential.push(await stream.add('e', `s${i}`, { dedupId: `d${i}` }));
    out({ type: 'ids', merged, sequential });
  } else if (cfg.mode === 'otel-produce') {
    const o = await otel();
    out({ type: 'ready' });
    const ids = await o.tracer.startActiveSpan('parent', async (parent) => {
      const r = await Promise.all(Array.from({ length: cfg.count }, (_, i) => stream.add('e', `p${i}`)));
      parent.end();
      return r;
    });
    out({ type: 'spans', ids, spans: o.spans() });
    o.unregister();
  } else if (cfg.mode === 'otel-consume') {
    const o = await otel();
    const sink = await stream.newSink(cfg.sink, { blockMs: 100, startAt: 'oldest' });
    out({ type: 'ready' });
    const ac = new AbortController();
    let handled = 0;
    await sink.process(
      async () => {
        if (++handled >= cfg.count) ac.abort();
      },
      { signal: ac.signal },
    );
    await sink.close();
    out({ type: 'spans', spans: o.spans() });
    o.unregister();
  }
} catch (err) {
  out({ type: 'error', err: String(err?.stack ?? err) });
} finally {
  close();
}
