/**
 * ioredis-compatible clients (README "Redis clients"): iovalkey, the Valkey
 * project's fork of ioredis, runs the library unchanged: publishing (merged
 * adds and lone ones), a sink with acks and redelivery, a reader.
 */
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RedisClient, Stream } from '../packages/pulse-streaming/src/index.js';
import { uniqueName, waitFor } from './support/clients.js';

describe('iovalkey', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(inject('redisUrl'), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(() => redis.disconnect());

  it('is a RedisClient, and publishes, shares work through a sink and fans out through a reader', async () => {
    const client: RedisClient = redis; // compiles: the type accepts ioredis-compatible clients
    const s = new Stream(uniqueName('valkey'), client, { maxLen: 0 });
    const reader = await s.newReader({ startAt: 'oldest' });
    const sink = await s.newSink('g', { ackGracePeriodMs: 300, blockMs: 100 });
    const payloads = Array.from({ length: 300 }, (_, i) => Buffer.from([i % 256, 0, 255]));
    const ids = await Promise.all(payloads.map((p, i) => s.add(`e${i}`, p))); // merged adds
    ids.push(await s.add('last', 'x')); // a lone add
    const got: string[] = [];
    let failedOnce = false;
    const done = sink.process(
      async (ev) => {
        if (ev.eventName === 'e7' && !failedOnce) {
          failedOnce = true;
          throw new Error('redeliver me');
        }
        got.push(ev.id);
      },
      { signal: AbortSignal.timeout(10_000) },
    );
    await waitFor(() => new Set(got).size === ids.length, { timeout: 10_000, what: 'every event handled' });
    const read = [];
    for await (const ev of reader.subscribe()) {
      read.push(ev);
      if (read.length === ids.length) break;
    }
    expect(read.map((e) => e.id)).toEqual(ids);
    expect(read.slice(0, 300).map((e) => e.payload)).toEqual(payloads);
    expect(sink.counters.redelivered).toBeGreaterThanOrEqual(1);
    await sink.close();
    await done.catch(() => undefined);
    await reader.close();
    await s.destroy();
  });
});
