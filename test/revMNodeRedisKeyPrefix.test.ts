/**
 * Outside review M (client configurations): node-redis 6's `keyPrefix`
 * ("ioredis-compatible", documented for isolating keyspaces). The library
 * refuses ioredis' `keyPrefix` with an InvalidArgumentError, but a node-redis
 * client with one is accepted and its prefix silently ignored: every key is
 * written unprefixed (`sendCommand` does not prefix), so two apps isolated by
 * prefix share `pulse:stream:<name>` and one tenant's sink receives the other
 * tenant's events, while the app's own typed commands look under the prefix
 * and find nothing. Either refusal (like ioredis) or prefixed keys passes.
 */
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { nextWithin, sharedUrl, uniqueName } from './support/clients.js';

type Client = { destroy(): void; xLen(key: string): Promise<number>; del(key: string): Promise<number> };

describe('node-redis keyPrefix', () => {
  const clients: Client[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });
  async function client(keyPrefix: string) {
    const c = createClient({ url: sharedUrl(), keyPrefix });
    c.on('error', () => {});
    await c.connect();
    clients.push(c);
    return c;
  }

  it('a client with keyPrefix is refused, or its keys live under the prefix (no cross-tenant delivery)', async () => {
    const a = await client('tenantA:');
    const b = await client('tenantB:');
    const plain = await client('');
    const name = uniqueName('kp');
    let sa: Stream;
    let sb: Stream;
    try {
      sa = new Stream(name, a);
      sb = new Stream(name, b);
    } catch (err) {
      // The fix that mirrors ioredis: refused before any Redis call.
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(String(err)).toMatch(/keyPrefix/);
      return;
    }
    const sinkB = await sb.newSink('billing', { startAt: 'oldest', blockMs: 100 });
    try {
      await sa.add('invoice', 'tenant A secret');
      // Tenant B's sink must not see tenant A's event: now it receives it at once.
      const got = await nextWithin(sinkB.subscribe(), 1000);
      expect(got === 'timeout' ? 'nothing' : `tenant B received ${(got.value as { text(): string }).text()}`).toBe('nothing');
      // And the app's own (prefixed) view of the stream sees the event; now it is 0 and the key is unprefixed.
      expect(await a.xLen(`pulse:stream:${name}`)).toBe(1);
    } finally {
      await sinkB.close();
      await sa.destroy();
      await sb.destroy();
      await plain.del(`pulse:stream:${name}`);
    }
  });
});
