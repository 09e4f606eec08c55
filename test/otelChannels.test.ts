/**
 * The handler-call channels without `tracePromise`'s promises (a handler
 * that returns at once settles at once), and what the otel module keeps per
 * destination instead of per event: every call still ends its span and is
 * counted, whatever the handler returned or threw.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { PROCESS_CHANNEL, traceProcess } from '../packages/pulse-streaming/src/internal/diagnostics.js';
import { Destination } from '../packages/pulse-streaming/src/otel/attributes.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName } from './support/clients.js';
import { startSdk, type TestSdk, total } from './support/otelSdk.js';

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;

/** Records the events of the process channel, in order, with whether `error` was set. */
function recordChannel(): { seen: string[]; stop: () => void } {
  const seen: string[] = [];
  const handlers = EVENTS.map((e) => {
    const fn = (msg: unknown): void => {
      seen.push((msg as { error?: unknown }).error === undefined ? e : `${e}!`);
    };
    subscribe(`tracing:${PROCESS_CHANNEL}:${e}`, fn);
    return [e, fn] as const;
  });
  const stop = (): void => {
    for (const [e, fn] of handlers) unsubscribe(`tracing:${PROCESS_CHANNEL}:${e}`, fn);
  };
  return { seen, stop };
}

describe.each(CLIENT_KINDS)('handler-call channels (%s)', (kind) => {
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

  it('publish start, end, asyncStart, asyncEnd for handlers that return, resolve, throw or reject', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('ch', { blockMs: 100 });
    const sub = sink.subscribe();
    await s.add('e', 'x');
    const [ev] = (await take(sub, 1)) as [SinkEvent];
    const rec = recordChannel();
    try {
      // Returned at once: settled at once, the value passed through, no promise made.
      expect(traceProcess(ev, sink.name, sink.consumerName, () => 7)).toBe(7);
      expect(rec.seen.splice(0)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      await expect(traceProcess(ev, sink.name, sink.consumerName, async () => 8)).resolves.toBe(8);
      expect(rec.seen.splice(0)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      // Thrown synchronously: settled with the error too, so a span started at `start` ends.
      expect(() =>
        traceProcess(ev, sink.name, sink.consumerName, () => {
          throw new TypeError('sync');
        }),
      ).toThrow('sync');
      expect(rec.seen.splice(0)).toEqual(['start', 'error!', 'end!', 'asyncStart!', 'asyncEnd!']);
      await expect(
        traceProcess(ev, sink.name, sink.consumerName, async () => {
          throw new RangeError('async');
        }),
      ).rejects.toThrow('async');
      expect(rec.seen.splice(0)).toEqual(['start', 'end', 'error!', 'asyncStart!', 'asyncEnd!']);
    } finally {
      rec.stop();
    }
    await sink.ack(ev);
    await sink.close();
    await s.destroy();
  });

  it('a handler of process() that throws synchronously gets an ERROR span and is redelivered in the same trace', async () => {
    sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('sync', { blockMs: 100, ackGracePeriodMs: 100 });
    await s.add('e', 'x');
    const ac = new AbortController();
    const deliveries: number[] = [];
    // Not async: the handler's throw reaches the channel synchronously.
    await sink.process(
      (ev) => {
        deliveries.push(ev.deliveryCount);
        if (ev.deliveryCount === 1) throw new TypeError('boom');
        ac.abort();
      },
      { signal: ac.signal },
    );
    expect(deliveries).toEqual([1, 2]);
    const spans = sdk.named(`process ${s.name}`);
    expect(spans.map((p) => p.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
    expect(spans[0]?.attributes['error.type']).toBe('TypeError');
    const [send] = sdk.named(`send ${s.name}`);
    expect(spans.map((p) => p.parentSpanContext?.spanId)).toEqual([send?.spanContext().spanId, send?.spanContext().spanId]);
    const metrics = await sdk.metrics();
    const on = { 'messaging.destination.name': s.name, 'messaging.consumer.group.name': 'sync' };
    expect(total(metrics.get('messaging.client.consumed.messages'), on)).toBe(2);
    expect(total(metrics.get('messaging.process.duration'), { ...on, 'error.type': 'TypeError' })).toBe(1);
    expect(total(metrics.get('messaging.process.duration'), on)).toBe(2);
    await sink.close();
    await s.destroy();
  });
});

describe('per-destination metric state', () => {
  it('keeps every failure counted when error types keep changing: the ones past the bound go to _OTHER', () => {
    const d = new Destination('send', 'orders', undefined);
    const seen = new Map<string, number>();
    for (let i = 0; i < 100; i++) d.countFailed(`Error${i}`, 1);
    d.count += 5;
    d.observe((n, attributes) => {
      const type = String(attributes['error.type'] ?? 'ok');
      seen.set(type, (seen.get(type) ?? 0) + n);
    });
    expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(105);
    expect(seen.get('ok')).toBe(5);
    expect(seen.size).toBe(64 + 2);
    expect(seen.get('_OTHER')).toBe(100 - 64);
    // The same attribute objects each time: nothing built per event.
    expect(d.failedAttributes('Error3')).toBe(d.failedAttributes('Error3'));
  });
});
