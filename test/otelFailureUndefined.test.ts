/**
 * A handler that fails with `undefined` (`Promise.reject()`, `throw
 * undefined`) fails for the sink (the event is nacked and redelivered), so
 * it fails for tracing too: span status ERROR, `error.type` `_OTHER`, the
 * duration in the failed series. Failure is known from the channel's `error`
 * event, not from `error !== undefined`.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { startSdk, total } from './support/otelSdk.js';

describe.concurrent.each(CLIENT_KINDS)('otel: a handler failing with undefined (%s)', (kind) => {
  it('Promise.reject() with no reason: the redelivered event shows its first process span as ERROR', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100, ackGracePeriodMs: 100 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      const counts: number[] = [];
      await sink.process(
        (ev: SinkEvent) => {
          counts.push(ev.deliveryCount);
          if (ev.deliveryCount === 1) return Promise.reject();
          ac.abort();
        },
        { signal: ac.signal, retry: false },
      );
      // The sink treated the first call as a failure: it redelivered the event.
      expect(counts).toEqual([1, 2]);
      const spans = sdk.named(`process ${s.name}`);
      expect(spans.map((p) => p.attributes['pulse.delivery.count'])).toEqual([1, 2]);
      expect(spans[0]?.status.code).toBe(SpanStatusCode.ERROR);
      expect(spans[0]?.attributes['error.type']).toBe('_OTHER');
      expect(spans[1]?.status.code).toBe(SpanStatusCode.UNSET);
      const m = await sdk.metrics();
      const failed = { 'messaging.destination.name': s.name, 'error.type': '_OTHER' };
      expect(total(m.get('messaging.process.duration'), failed)).toBe(1);
      expect(total(m.get('messaging.process.duration'), { 'messaging.destination.name': s.name })).toBe(2);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('throw undefined in a synchronous handler: same', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100, ackGracePeriodMs: 100 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      await sink.process(
        (ev: SinkEvent) => {
          if (ev.deliveryCount === 1) throw undefined;
          ac.abort();
        },
        { signal: ac.signal, retry: false },
      );
      const spans = sdk.named(`process ${s.name}`);
      expect(spans).toHaveLength(2);
      expect(spans[0]?.status.code).toBe(SpanStatusCode.ERROR);
      expect(spans[0]?.status.message).toBe('undefined');
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('processBatch() handler rejecting with undefined: the batch is redelivered, its first span is ERROR', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100, ackGracePeriodMs: 100 });
    try {
      await s.add('e', 'x');
      const ac = new AbortController();
      let calls = 0;
      await sink.processBatch(
        () => {
          if (++calls === 1) return Promise.reject(undefined);
          ac.abort();
        },
        { signal: ac.signal, retry: false },
      );
      expect(calls).toBe(2);
      const spans = sdk.named(`process ${s.name}`);
      expect(spans).toHaveLength(2);
      expect(spans[0]?.status.code).toBe(SpanStatusCode.ERROR);
      expect(spans[1]?.status.code).toBe(SpanStatusCode.UNSET);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
