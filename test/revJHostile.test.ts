/**
 * Review J: what a foreign producer writes must not become an unbounded span attribute.
 * A 1 MB event name (`n`) written by raw XADD becomes `pulse.event.name` on every process span
 * of every delivery: a few such spans make an OTLP export batch exceed the 4 MB gRPC default and
 * the whole batch (other events' spans too) is refused.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { startSdk } from './support/otelSdk.js';

describe.each(CLIENT_KINDS)('revJ hostile event names (%s)', (kind) => {
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
    } finally {
      await sink.close();
      await s.destroy();
      await sdk.shutdown();
      await c.close();
    }
  });
});
