/**
 * A node-redis 6.3 `keyPrefix` (client or cluster) is refused with an
 * InvalidArgumentError at `new Stream`, before any Redis call, as ioredis'
 * is (ioredisOptions.test.ts). Outside review M: it was accepted and
 * ignored (the library sends raw commands, which node-redis never
 * prefixes), so two tenants isolated by prefix shared `pulse:stream:<name>`
 * and one tenant's sink received the other's events. An empty prefix is no
 * prefix: accepted.
 */
import { createClient, createCluster } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName } from './support/clients.js';

describe('node-redis keyPrefix', () => {
  const clients: Array<{ destroy(): void }> = [];
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

  it('a client with a keyPrefix (and its proxies) is refused with InvalidArgumentError', async () => {
    const a = await client('tenantA:');
    for (const c of [a, a.withTypeMapping({}), a.withCommandOptions({ timeout: 1000 })]) {
      expect(() => new Stream(uniqueName('kp'), c)).toThrow(InvalidArgumentError);
      expect(() => new Stream(uniqueName('kp'), c)).toThrow(/keyPrefix is not supported/);
    }
    // Before any Redis call: a client never connected is refused the same way.
    expect(() => new Stream('x', createClient({ keyPrefix: Buffer.from('b:') }))).toThrow(InvalidArgumentError);
  });

  it('a cluster with a keyPrefix is refused too', () => {
    const cluster = createCluster({ rootNodes: [{ url: sharedUrl() }], keyPrefix: 'app:' });
    expect(() => new Stream('orders', cluster)).toThrow(/keyPrefix is not supported/);
  });

  it('an empty keyPrefix is no prefix: accepted, keys are pulse:stream:<name>', async () => {
    const c = await client('');
    const s = new Stream(uniqueName('kp'), c);
    try {
      await s.add('e', 'x');
      expect(await c.xLen(`pulse:stream:${s.name}`)).toBe(1);
    } finally {
      await s.destroy();
    }
  });
});
