/**
 * A processBatch() call of a sink reading several streams may get events of
 * several streams. Its span and duration were credited to the first event's
 * stream. Per the OpenTelemetry messaging conventions, an operation over
 * several destinations is named after the operation alone (`process`) and
 * has no `messaging.destination.name` (it must apply to every message): its
 * duration is recorded once, without the destination; its events are still
 * counted as consumed each under its own stream. A batch of one stream is
 * unchanged.
 */
import type { MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { startSdk, total } from './support/otelSdk.js';

/** Histogram counts of the data points of `sink` that have no destination. */
function withoutDestination(m: MetricData | undefined, sink: string): number {
  let n = 0;
  for (const dp of m?.dataPoints ?? [])
    if (dp.attributes['messaging.consumer.group.name'] === sink && !('messaging.destination.name' in dp.attributes))
      n += (dp.value as { count: number }).count;
  return n;
}

describe.concurrent.each(CLIENT_KINDS)('otel: processBatch() over several streams (%s)', (kind) => {
  it('a batch of events of two streams: a `process` span and a duration with no destination, counts per stream', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const a = new Stream(uniqueName('a'), c.redis);
    const b = new Stream(uniqueName('b'), c.redis);
    const sinkName = uniqueName('w');
    const sink = await a.newSink(sinkName, { blockMs: 100 });
    try {
      await sink.addStream(b);
      await a.add('e', '1');
      await b.add('e', '2');
      await b.add('e', '3');
      const ac = new AbortController();
      const batches: string[][] = [];
      // Waits for all three: one batch of both streams.
      await sink.processBatch(
        (evs: SinkEvent[]) => {
          batches.push(evs.map((ev) => ev.streamName));
          if (batches.flat().length >= 3) ac.abort();
        },
        { signal: ac.signal, maxBatch: 3, maxWaitMs: 2000 },
      );
      expect(batches.map((names) => [...names].sort())).toEqual([[a.name, b.name, b.name].sort()]);
      const spans = sdk.spans().filter((x) => x.attributes['messaging.consumer.group.name'] === sinkName);
      expect(spans.map((x) => x.name)).toEqual(['process']);
      expect(spans[0]?.attributes).not.toHaveProperty('messaging.destination.name');
      expect(spans[0]?.attributes['messaging.batch.message_count']).toBe(3);
      expect(spans[0]?.links).toHaveLength(3);
      const m = await sdk.metrics();
      const consumed = m.get('messaging.client.consumed.messages');
      expect(total(consumed, { 'messaging.destination.name': a.name, 'messaging.consumer.group.name': sinkName })).toBe(1);
      expect(total(consumed, { 'messaging.destination.name': b.name, 'messaging.consumer.group.name': sinkName })).toBe(2);
      const duration = m.get('messaging.process.duration');
      expect(total(duration, { 'messaging.consumer.group.name': sinkName })).toBe(1);
      expect(withoutDestination(duration, sinkName)).toBe(1);
    } finally {
      await sink.close();
      await a.destroy();
      await b.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('a batch of one stream keeps its stream: `process <stream>`, the duration under it', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const a = new Stream(uniqueName('a'), c.redis);
    const sinkName = uniqueName('w');
    const sink = await a.newSink(sinkName, { blockMs: 100 });
    try {
      await a.add('e', '1');
      await a.add('e', '2');
      const ac = new AbortController();
      let n = 0;
      await sink.processBatch(
        (evs: SinkEvent[]) => {
          n += evs.length;
          if (n >= 2) ac.abort();
        },
        { signal: ac.signal, maxBatch: 2, maxWaitMs: 2000 },
      );
      const spans = sdk.spans().filter((x) => x.attributes['messaging.consumer.group.name'] === sinkName);
      expect(spans.map((x) => x.name)).toEqual([`process ${a.name}`]);
      expect(spans[0]?.attributes['messaging.destination.name']).toBe(a.name);
      const m = await sdk.metrics();
      const onA = { 'messaging.destination.name': a.name, 'messaging.consumer.group.name': sinkName };
      expect(total(m.get('messaging.process.duration'), onA)).toBe(1);
      expect(total(m.get('messaging.client.consumed.messages'), onA)).toBe(2);
    } finally {
      await sink.close();
      await a.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
