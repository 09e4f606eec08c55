/**
 * Audit: the TSDoc of `pulse-streaming/keys` (the key layout tools rely on).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkInstancesKey, sinkKeys, streamKey, streamNameOf } from '../packages/pulse-streaming/src/keys.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)('audit: pulse-streaming/keys (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const serverMs = async (): Promise<number> => {
    const [s, us] = (await c.cmd('TIME')) as [string, string];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  };
  const slot = async (key: string): Promise<number> => Number(await c.cmd('CLUSTER', 'KEYSLOT', key).catch(() => -1));

  it('streamKey/streamNameOf round-trip; a key that is not a pulse stream has no name', () => {
    expect(streamKey('orders')).toBe('pulse:stream:orders');
    expect(streamNameOf(streamKey('a:b{c}'))).toBe('a:b{c}');
    expect(streamNameOf('other:orders')).toBeUndefined();
  });

  it('sinkInstancesKey holds live instances scored with Redis server ms; sinkKeys.consumers and .lease hold this consumer', async () => {
    const s = new Stream(uniqueName('keys'), c.redis);
    const sinkName = uniqueName('sk');
    const sink = await s.newSink(sinkName, { blockMs: 100, ackGracePeriodMs: 2000 });
    try {
      const sub = sink.subscribe();
      await s.add('e', 'x');
      const [ev] = await take(sub, 1);
      await ev?.ack();
      const now = await serverMs();
      const beat = await waitFor(async () => c.cmd('ZSCORE', sinkInstancesKey(sinkName), sink.consumerName), {
        what: 'a liveness beat',
      });
      expect(Math.abs(Number(beat) - now)).toBeLessThan(2000);
      const keys = sinkKeys(s.name, sinkName);
      const swept = await c.cmd('ZSCORE', keys.consumers, sink.consumerName);
      expect(Math.abs(Number(swept) - now)).toBeLessThan(2000);
      await waitFor(async () => String(await c.cmd('GET', keys.lease)) === sink.consumerName, { what: 'the lease' });
      // All in the stream key's slot (the sink-wide instances key in the sink's own).
      const streamSlot = await slot(s.key);
      if (streamSlot >= 0) {
        for (const k of Object.values(keys)) expect(await slot(k)).toBe(streamSlot);
      }
    } finally {
      await sink.close();
      await s.destroy();
    }
  });
});
