/**
 * What a producer writes does not become an unbounded span attribute:
 * `pulse.event.name` is cut to 256 characters (the last one `…`) on process
 * and send spans. A 1 MB event name (`n`) written by a foreign producer's raw
 * XADD became `pulse.event.name` on every process span of every delivery: a
 * few such spans make an OTLP export batch exceed the 4 MB gRPC default and
 * the whole batch (other events' spans too) is refused. From outside review J.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { startSdk } from './support/otelSdk.js';

describe.each(CLIENT_KINDS)('otel: bounded event name attributes (%s)', (kind) => {
  it('a 1 MB event name from a foreign producer does not become a 1 MB span attribute', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('w', { blockMs: 100 });
    try {
      await c.cmd('XADD', s.key, '*', 'n', 'x'.repeat(1_000_000), 'p', 'x');
      const ac = new AbortController();
      await sink.process((_ev: SinkEvent) => ac.abort(), { signal: ac.signal });
      const [proc] = sdk.named(`process ${s.name}`);
      expect(proc).toBeDefined();
      const sizes = Object.entries(proc?.attributes ?? {}).map(([k, v]) => [k, String(v).length] as const);
      for (const [k, n] of sizes) expect(n, k).toBeLessThanOrEqual(4096);
      expect(proc?.attributes['pulse.event.name']).toBe(`${'x'.repeat(255)}\u2026`);
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });

  it('a long event name passed to add() is cut on the send span, a name of 256 characters kept whole', async () => {
    const c = await connect(kind);
    const sdk = startSdk();
    const s = new Stream(uniqueName(), c.redis);
    try {
      // A surrogate pair across the cut: cut before it, never between its halves.
      await s.add(`${'a'.repeat(254)}\u{1F600}${'b'.repeat(10_000)}`, 'x');
      await s.add('c'.repeat(256), 'x');
      const names = sdk.named(`send ${s.name}`).map((span) => span.attributes['pulse.event.name']);
      expect(names).toEqual([`${'a'.repeat(254)}\u2026`, 'c'.repeat(256)]);
    } finally {
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
