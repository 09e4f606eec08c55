/**
 * Unregistering (the function registerOpenTelemetry returns: a graceful
 * shutdown, a switch to another SDK) while work is in flight: no new span
 * starts, but those already started end when their work does, with their
 * durations recorded, once, even when a new registration starts meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { registerOpenTelemetry } from '../packages/pulse-streaming/src/otel/index.js';
import { CLIENT_KINDS, connect, uniqueName, waitFor } from './support/clients.js';
import { startSdk, total } from './support/otelSdk.js';

describe.concurrent.each(CLIENT_KINDS)('otel: unregister with work in flight (%s)', (kind) => {
  for (const reregister of [false, true]) {
    it(`a process span started before unregister ends when its handler returns (registered again: ${reregister})`, async () => {
      const c = await connect(kind);
      const sdk = startSdk();
      const s = new Stream(uniqueName(), c.redis);
      const sink = await s.newSink('w', { blockMs: 100 });
      let again: (() => void) | undefined;
      try {
        await s.add('e', 'x');
        let release!: () => void;
        const gate = new Promise<void>((r) => {
          release = r;
        });
        let started = false;
        const ac = new AbortController();
        const run = sink.process(
          async (_ev: SinkEvent) => {
            started = true;
            await gate;
            ac.abort();
          },
          { signal: ac.signal },
        );
        await waitFor(() => started);
        sdk.unregister();
        // The same providers again: the new registration must not end (nor time) the old one's span.
        if (reregister) again = registerOpenTelemetry({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider });
        release();
        await run;
        expect(sdk.named(`process ${s.name}`)).toHaveLength(1);
        const m = await sdk.metrics();
        expect(total(m.get('messaging.process.duration'), { 'messaging.destination.name': s.name })).toBe(1);
        // Unregistered: the next event gets no span.
        if (!reregister) {
          await s.add('e', 'y');
          const next = new AbortController();
          await sink.process(() => next.abort(), { signal: next.signal });
          expect(sdk.named(`process ${s.name}`)).toHaveLength(1);
        }
      } finally {
        again?.();
        await sink.close();
        await s.destroy();
        await sdk.shutdown();
        await c.close();
      }
    });
  }

  it('a send span started before unregister ends when its add settles', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    try {
      const p = s.add('e', 'x');
      sdk.unregister();
      await p;
      expect(sdk.named(`send ${s.name}`)).toHaveLength(1);
      await s.add('e', 'y');
      expect(sdk.named(`send ${s.name}`)).toHaveLength(1);
    } finally {
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
