/**
 * ioredis client options that change what a command is: the library works
 * with `enableAutoPipelining` (before, every command failed: ioredis 6 drops
 * the command name of an auto-pipelined `callBuffer`, e.g. "ERR unknown
 * command 'pulse:stream:x'"), and refuses `keyPrefix` up front (before, adds
 * were stored under the prefixed key, reads of it were dropped as replies of
 * an unknown stream, and sinks and readers delivered nothing, silently).
 */
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, readDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { collect, sharedUrl, take, uniqueName, waitFor } from './support/clients.js';

const WAIT = { timeout: 8000 };

describe('ioredis options', () => {
  const clients: Redis[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  it('enableAutoPipelining: add (bytes), dedup, sink, reader, dead letters, remove and destroy work', async () => {
    const redis = new Redis(sharedUrl(), { enableAutoPipelining: true });
    clients.push(redis);
    const s = new Stream(uniqueName('autopipe'), redis, { maxLen: 0 });
    const bytes = Buffer.from([0, 255, 1, 128, 10, 13]);
    const sink = await s.newSink('sink', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 300, maxDeliveries: 1 });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    const first = await s.add('e', bytes, { dedupId: 'one' });
    expect(await s.add('e', bytes, { dedupId: 'one' })).toBe(first);
    const second = (await s.add('e', 'not acked')) as string;
    const [fromReader] = await take(reader.subscribe(), 2, WAIT.timeout);
    expect(fromReader?.payload.equals(bytes)).toBe(true);
    const got: SinkEvent[] = [];
    void collect(sink.subscribe(), got, false);
    await waitFor(() => got.length === 2, { ...WAIT, what: 'both delivered' });
    expect(got[0]?.payload.equals(bytes)).toBe(true);
    await got[0]?.ack();
    // The second is never acked: dead-lettered after its one delivery.
    await waitFor(async () => (await readDeadLetters(s)).length === 1, { ...WAIT, what: 'dead-lettered' });
    expect(sink.counters.acked).toBe(1);
    await s.remove(second);
    await Promise.all([sink.close(), reader.close()]);
    await s.destroy();
    expect(await redis.exists(s.key)).toBe(0);
    await redis.del(`${s.key}:dead`);
  });

  it('keyPrefix is refused with InvalidArgumentError before any command', () => {
    const redis = new Redis(sharedUrl(), { keyPrefix: 'app:', lazyConnect: true });
    clients.push(redis);
    expect(() => new Stream('orders', redis)).toThrow(InvalidArgumentError);
    expect(() => new Stream('orders', redis)).toThrow(/keyPrefix/);
    expect(redis.status).toBe('wait');
  });

  it("keyPrefix on a Cluster (its own or its nodes') is refused too", () => {
    for (const options of [{ keyPrefix: 'app:' }, { redisOptions: { keyPrefix: 'app:' } }]) {
      const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, ...options });
      expect(() => new Stream('orders', cluster)).toThrow(/keyPrefix/);
      cluster.disconnect();
    }
  });
});
