/**
 * The counts of work done while registered survive unregistering (a graceful
 * shutdown: unregister(), then the SDK's shutdown(), whose last export
 * collects): the sent and consumed counters, reported when the SDK collects,
 * have everything the histogram has, adds in flight at unregister() included,
 * and a registration made again on the same meter provider adds to the same
 * counts. From outside review J: the counters' callbacks were removed at
 * unregister(), and the counts not yet collected were lost.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, uniqueName, waitFor } from './support/clients.js';
import { startSdk, total } from './support/otelSdk.js';

describe.each(CLIENT_KINDS)('otel: counts across unregister (%s)', (kind) => {
  it('events sent and consumed while registered are still counted by the collection after unregister()', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => s.add('e', String(i))));
      const ac = new AbortController();
      let n = 0;
      await sink.process(
        (_ev: SinkEvent) => {
          if (++n >= 5) ac.abort();
        },
        { signal: ac.signal },
      );
      // Graceful shutdown: stop instrumenting, then flush the SDK (its last export).
      sdk.unregister();
      const m = await sdk.metrics();
      const on = { 'messaging.destination.name': s.name };
      // The histogram (a synchronous instrument) has all 5 handler calls...
      expect(total(m.get('messaging.process.duration'), on)).toBe(5);
      // ...but the counters of the same work, done while registered, must be there too.
      expect(total(m.get('messaging.client.consumed.messages'), on), 'consumed').toBe(5);
      expect(total(m.get('messaging.client.sent.messages'), on), 'sent').toBe(5);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('an add in flight at unregister(): its send span ends, and it is counted as sent', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    try {
      await s.add('e', 'first');
      await sdk.metrics(); // a periodic export happened before
      const p = s.add('e', 'in flight');
      sdk.unregister();
      await p;
      await waitFor(() => sdk.named(`send ${s.name}`).length === 2, { what: 'both send spans' });
      const m = await sdk.metrics();
      expect(total(m.get('messaging.client.sent.messages'), { 'messaging.destination.name': s.name })).toBe(2);
    } finally {
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('registered again on the same meter provider before a collection: the counts add up, none lost or counted twice', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    let again: (() => void) | undefined;
    try {
      await s.add('e', '1');
      await sdk.metrics();
      await s.add('e', '2');
      sdk.unregister();
      again = registerOpenTelemetry({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider });
      await s.add('e', '3');
      const on = { 'messaging.destination.name': s.name };
      expect(total((await sdk.metrics()).get('messaging.client.sent.messages'), on)).toBe(3);
      await s.add('e', '4');
      again();
      again = undefined;
      expect(total((await sdk.metrics()).get('messaging.client.sent.messages'), on)).toBe(4);
      // Reported: the callbacks are gone, the cumulative series stays as it was.
      expect(total((await sdk.metrics()).get('messaging.client.sent.messages'), on)).toBe(4);
    } finally {
      again?.();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
