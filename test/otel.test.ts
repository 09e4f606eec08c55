/**
 * `pulse-streaming/otel` with the OpenTelemetry SDK's in-memory exporters:
 * send and process spans, trace context through the stream, metrics, and
 * unregistering, with both clients; across two processes at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { traceProcessBatch } from '../packages/pulse-streaming/src/internal/diagnostics.js';
import { contextOf, registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, sharedUrl, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { startSdk, type TestSdk, total } from './support/otelSdk.js';

const REPO = resolve(import.meta.dirname, '..');
const LIB = join(REPO, 'packages/pulse-streaming/dist/esm');
const CHILD = join(REPO, 'test/support/wireChild.mjs');
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

/** Runs a sink's process() until `n` handler calls returned or threw. */
async function processUntil(
  sink: { process: (h: (ev: SinkEvent) => unknown, o: object) => Promise<void> },
  n: number,
  handler: (ev: SinkEvent) => unknown,
) {
  const ac = new AbortController();
  let calls = 0;
  await sink.process(
    async (ev) => {
      try {
        return await handler(ev);
      } finally {
        if (++calls >= n) ac.abort();
      }
    },
    { signal: ac.signal },
  );
}

describe.each(CLIENT_KINDS)('OpenTelemetry (%s)', (kind) => {
  let c: TestClient;
  let sdk: TestSdk | undefined;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  afterEach(async () => {
    await sdk?.shutdown();
    sdk = undefined;
  });

  it('add makes a send span (PRODUCER) under the active span and carries its context in traceparent', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    const rs = reader.subscribe();
    const userHeaders = { tenant: 't1' };
    const tracer = sdk.tracerProvider.getTracer('test');
    const id = await tracer.startActiveSpan('request', async (parent) => {
      const r = await s.add('order.created', 'x', { headers: userHeaders });
      parent.end();
      return r;
    });
    expect(userHeaders).toEqual({ tenant: 't1' });
    const [send] = sdk.named(`send ${s.name}`);
    const [parent] = sdk.named('request');
    expect(send?.kind).toBe(SpanKind.PRODUCER);
    expect(send?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(send?.spanContext().traceId).toBe(parent?.spanContext().traceId);
    expect(send?.attributes).toMatchObject({
      'messaging.system': 'redis',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': s.name,
      'messaging.message.id': id,
      'pulse.event.name': 'order.created',
    });
    const [ev] = await take(rs, 1);
    expect(ev?.headers.tenant).toBe('t1');
    const m = TRACEPARENT.exec(ev?.headers.traceparent ?? '');
    expect(m?.[1]).toBe(send?.spanContext().traceId);
    expect(m?.[2]).toBe(send?.spanContext().spanId);
    // contextOf: the send span's context, for for-await loops.
    expect(trace.getSpanContext(contextOf(ev as SinkEvent))?.spanId).toBe(send?.spanContext().spanId);
    await reader.close();
    await s.destroy();
  });

  it("a traceparent header passed to add, with no active span, is the send span's parent", async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader({ blockMs: 100 });
    const rs = reader.subscribe();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const spanId = 'b7ad6b7169203331';
    await s.add('e', 'x', { headers: { traceparent: `00-${traceId}-${spanId}-01`, tenant: 'a' } });
    const [send] = sdk.named(`send ${s.name}`);
    expect(send?.spanContext().traceId).toBe(traceId);
    expect(send?.parentSpanContext?.spanId).toBe(spanId);
    const [ev] = await take(rs, 1);
    expect(TRACEPARENT.exec(ev?.headers.traceparent ?? '')?.[1]).toBe(traceId);
    expect(ev?.headers.tenant).toBe('a');
    await reader.close();
    await s.destroy();
  });

  it("process() runs each handler in a process span (CONSUMER) that is a child of the event's send span", async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('workers', { blockMs: 100 });
    const ids = await Promise.all([s.add('a', '1'), s.add('b', '2')]);
    const active: Array<string | undefined> = [];
    await processUntil(sink, 2, () => {
      active.push(trace.getActiveSpan()?.spanContext().spanId);
    });
    const sends = sdk.named(`send ${s.name}`);
    const processes = sdk.named(`process ${s.name}`);
    expect(processes).toHaveLength(2);
    for (const [i, p] of processes.entries()) {
      const send = sends.find((x) => x.attributes['messaging.message.id'] === p.attributes['messaging.message.id']);
      expect(p.kind).toBe(SpanKind.CONSUMER);
      expect(p.spanContext().traceId).toBe(send?.spanContext().traceId);
      expect(p.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
      expect(active[i]).toBe(p.spanContext().spanId);
      expect(p.status.code).not.toBe(SpanStatusCode.ERROR);
      expect(p.attributes).toMatchObject({
        'messaging.system': 'redis',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': s.name,
        'messaging.consumer.group.name': 'workers',
        'messaging.client.id': sink.consumerName,
        'messaging.message.id': ids[i],
        'pulse.delivery.count': 1,
      });
    }
    await sink.close();
    await s.destroy();
  });

  it('a throwing handler marks its span ERROR with error.type; the redelivered event has pulse.delivery.count 2', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('workers', { blockMs: 100, ackGracePeriodMs: 100 });
    const id = await s.add('e', 'x');
    await processUntil(sink, 2, (ev) => {
      if (ev.deliveryCount === 1) throw new TypeError('boom');
    });
    const spans = sdk.named(`process ${s.name}`);
    expect(spans.map((p) => p.attributes['pulse.delivery.count'])).toEqual([1, 2]);
    expect(spans.every((p) => p.attributes['messaging.message.id'] === id)).toBe(true);
    expect(spans[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans[0]?.attributes['error.type']).toBe('TypeError');
    expect(spans[1]?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(spans[1]?.attributes['error.type']).toBeUndefined();
    // Both deliveries belong to the producer's trace.
    const [send] = sdk.named(`send ${s.name}`);
    expect(new Set(spans.map((p) => p.spanContext().traceId))).toEqual(new Set([send?.spanContext().traceId]));
    const metrics = await sdk.metrics();
    const duration = metrics.get('messaging.process.duration');
    expect(duration?.descriptor.unit).toBe('s');
    expect(total(duration, { 'error.type': 'TypeError', 'messaging.consumer.group.name': 'workers' })).toBe(1);
    expect(total(duration, { 'messaging.destination.name': s.name })).toBe(2);
    await sink.close();
    await s.destroy();
  });

  it('metrics count what was sent and consumed, per stream and sink', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('counted', { blockMs: 100 });
    await Promise.all(Array.from({ length: 25 }, (_, i) => s.add('e', String(i))));
    await s.add('e', 'dup', { dedupId: 'd' });
    await s.add('e', 'dup', { dedupId: 'd' });
    await processUntil(sink, 26, () => {});
    const metrics = await sdk.metrics();
    const on = { 'messaging.destination.name': s.name, 'messaging.system': 'redis' };
    expect(total(metrics.get('messaging.client.sent.messages'), { ...on, 'messaging.operation.name': 'send' })).toBe(27);
    expect(total(metrics.get('messaging.client.consumed.messages'), { ...on, 'messaging.consumer.group.name': 'counted' })).toBe(
      26,
    );
    expect(total(metrics.get('messaging.process.duration'), on)).toBe(26);
    await sink.close();
    await s.destroy();
  });

  it('a failed add ends its send span with ERROR and is counted with error.type (the Redis reply code)', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    await c.cmd('SET', s.key, 'not a stream');
    await expect(s.add('e', 'x')).rejects.toThrow(/WRONGTYPE/);
    const [send] = sdk.named(`send ${s.name}`);
    expect(send?.status.code).toBe(SpanStatusCode.ERROR);
    expect(send?.attributes['error.type']).toBe('WRONGTYPE');
    const metrics = await sdk.metrics();
    expect(
      total(metrics.get('messaging.client.sent.messages'), { 'error.type': 'WRONGTYPE', 'messaging.destination.name': s.name }),
    ).toBe(1);
    await c.cmd('DEL', s.key);
  });

  it('processBatch handler calls (through their channel) run in one span linked to each event', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('batch', { blockMs: 100 });
    const sub = sink.subscribe();
    await Promise.all([s.add('a', '1'), s.add('b', '2'), s.add('c', '3')]);
    const events = await take(sub, 3);
    let active: string | undefined;
    await traceProcessBatch(events, sink.name, sink.consumerName, () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
    });
    await expect(
      traceProcessBatch(events, sink.name, sink.consumerName, async () => {
        throw new RangeError('no');
      }),
    ).rejects.toThrow('no');
    const [ok, failed] = sdk.named(`process ${s.name}`);
    const sends = sdk.named(`send ${s.name}`);
    expect(ok?.kind).toBe(SpanKind.CONSUMER);
    expect(active).toBe(ok?.spanContext().spanId);
    expect(ok?.attributes['messaging.batch.message_count']).toBe(3);
    expect(ok?.attributes['messaging.consumer.group.name']).toBe('batch');
    expect(ok?.links.map((l) => l.context.spanId).sort()).toEqual(sends.map((x) => x.spanContext().spanId).sort());
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('RangeError');
    const metrics = await sdk.metrics();
    expect(total(metrics.get('messaging.client.consumed.messages'), { 'messaging.consumer.group.name': 'batch' })).toBe(6);
    await sink.ack(...events);
    await sink.close();
    await s.destroy();
  });

  it('unregistering stops it all: no spans, no trace headers, no counts', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('u', { blockMs: 100 });
    await s.add('e', 'before');
    await processUntil(sink, 1, () => {});
    const before = await sdk.metrics();
    const spans = sdk.spans().length;
    sdk.unregister();
    const id = await s.add('e', 'after');
    let headers: object | undefined;
    await processUntil(sink, 1, (ev) => {
      headers = ev.headers;
    });
    expect(headers).toEqual({});
    expect(((await c.cmd('XRANGE', s.key, id, id)) as Array<[string, unknown[]]>)[0]?.[1]).toHaveLength(4);
    expect(sdk.spans()).toHaveLength(spans);
    const after = await sdk.metrics();
    for (const name of ['messaging.client.sent.messages', 'messaging.client.consumed.messages', 'messaging.process.duration']) {
      expect(total(after.get(name)), name).toBe(total(before.get(name)));
    }
    await sink.close();
    await s.destroy();
  });

  it('with a sampler that samples nothing, no span is recorded but the context still travels', async () => {
    sdk = startSdk({ sampler: new AlwaysOffSampler() });
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    await s.add('e', 'x');
    let traceparent: string | undefined;
    let processTrace: string | undefined;
    await processUntil(sink, 1, (ev) => {
      traceparent = ev.headers.traceparent;
      processTrace = trace.getSpanContext(context.active())?.traceId;
    });
    expect(sdk.spans()).toHaveLength(0);
    expect(traceparent).toMatch(/-00$/);
    expect(processTrace).toBe(TRACEPARENT.exec(traceparent ?? '')?.[1]);
    await sink.close();
    await s.destroy();
  });
});

describe('the core without OpenTelemetry', () => {
  it('no source outside src/otel imports @opentelemetry, and the otel subpath is exported for import and require', () => {
    const src = join(REPO, 'packages/pulse-streaming/src');
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith('otel'));
    expect(files.length).toBeGreaterThan(20);
    for (const f of files)
      expect(readFileSync(join(src, f), 'utf8'), f).not.toMatch(/from '@opentelemetry|import\('@opentelemetry/);
    const pkg = JSON.parse(readFileSync(join(REPO, 'packages/pulse-streaming/package.json'), 'utf8'));
    expect(pkg.exports['./otel'].import.default).toBe('./dist/esm/otel/index.js');
    expect(pkg.exports['./otel'].require.default).toBe('./dist/cjs/otel/index.js');
    expect(pkg.peerDependenciesMeta['@opentelemetry/api']).toEqual({ optional: true });
    expect(pkg.dependencies).toBeUndefined();
  });
});

describe('OpenTelemetry across processes', () => {
  beforeAll(() => {
    if (!existsSync(join(LIB, 'otel/index.js'))) throw new Error(`${LIB} missing: run npm run build first`);
  });

  /** Runs wireChild.mjs and resolves to its last 'spans' message. */
  function runChild(cfg: Record<string, unknown>, onReady?: () => void) {
    const child = spawn(process.execPath, [CHILD, JSON.stringify({ lib: LIB, url: sharedUrl(), ...cfg })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: Array<Record<string, unknown>> = [];
    createInterface({ input: child.stdout }).on('line', (l) => {
      const msg = JSON.parse(l) as Record<string, unknown>;
      lines.push(msg);
      if (msg.type === 'ready') onReady?.();
    });
    // 'close': after the last line is read ('exit' may come before).
    const done = new Promise<Array<Record<string, unknown>>>((r) => child.on('close', () => r(lines)));
    return { child, done };
  }

  // Both pairs at once (their own streams): each waits on two child processes, and this file is the
  // longest of those vitest runs isolated, last (vitest.config.ts).
  it.concurrent.each([
    ['ioredis', 'node-redis'],
    ['node-redis', 'ioredis'],
  ])(
    'a producer (%s) and a consumer (%s) in two processes share the trace: process spans are children of send spans',
    async (producerKind, consumerKind) => {
      const name = uniqueName('op');
      const count = 5;
      let consumerReady = false;
      const consumer = runChild({ kind: consumerKind, stream: name, mode: 'otel-consume', sink: 'workers', count }, () => {
        consumerReady = true;
      });
      try {
        await waitFor(() => consumerReady, { timeout: 15_000, what: 'consumer ready' });
        const producer = runChild({ kind: producerKind, stream: name, mode: 'otel-produce', count });
        const [produced, consumed] = await Promise.all([producer.done, consumer.done]);
        for (const lines of [produced, consumed]) expect(lines.filter((l) => l.type === 'error')).toEqual([]);
        type S = {
          name: string;
          kind: number;
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          attributes: Record<string, unknown>;
        };
        const sends = ((produced.find((l) => l.type === 'spans')?.spans ?? []) as S[]).filter((x) => x.name === `send ${name}`);
        const processes = ((consumed.find((l) => l.type === 'spans')?.spans ?? []) as S[]).filter(
          (x) => x.name === `process ${name}`,
        );
        expect(sends).toHaveLength(count);
        expect(processes).toHaveLength(count);
        for (const p of processes) {
          const send = sends.find((x) => x.attributes['messaging.message.id'] === p.attributes['messaging.message.id']);
          expect(send).toBeDefined();
          expect(p.traceId).toBe(send?.traceId);
          expect(p.parentSpanId).toBe(send?.spanId);
          expect(p.kind).toBe(SpanKind.CONSUMER);
        }
        const c = await connect('ioredis');
        await new Stream(name, c.redis).destroy();
        await c.close();
      } finally {
        consumer.child.kill('SIGKILL');
      }
    },
  );
});

describe.each(CLIENT_KINDS)("the README's setup: global providers and propagator (%s)", (kind) => {
  it('registerOpenTelemetry() with no options uses the global SDK: send and process spans in one trace, metrics', async () => {
    const c = await connect(kind);
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    tracerProvider.register();
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(meterProvider);
    const unregister = registerOpenTelemetry();
    try {
      const s = new Stream(uniqueName(), c.redis);
      const sink = await s.newSink('readme', { blockMs: 100 });
      await s.add('e', 'x');
      const ac = new AbortController();
      await sink.process(() => ac.abort(), { signal: ac.signal });
      const spans = exporter.getFinishedSpans();
      const send = spans.find((x) => x.name === `send ${s.name}`);
      const proc = spans.find((x) => x.name === `process ${s.name}`);
      expect(proc?.spanContext().traceId).toBe(send?.spanContext().traceId);
      expect(proc?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
      await reader.forceFlush();
      const names = metricExporter
        .getMetrics()
        .flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name)));
      expect(names).toEqual(
        expect.arrayContaining([
          'messaging.client.sent.messages',
          'messaging.client.consumed.messages',
          'messaging.process.duration',
        ]),
      );
      await sink.close();
      await s.destroy();
    } finally {
      unregister();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      await c.close();
    }
  });
});
