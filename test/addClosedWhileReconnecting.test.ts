/**
 * An add on an ioredis client the user disconnected while it waited to
 * reconnect (Redis down) is a ClosedError, not stored: ioredis leaves such a
 * client in 'reconnecting' for good and emits no 'end', so the library
 * knew it closed only by 'end' and the add failed as 'outcome unknown' once
 * the publish connection gave up, or waited in the user's offline queue.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ClosedError, Stream } from '../packages/pulse-streaming/src/index.js';
import { uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('add on an ioredis client disconnected while reconnecting', () => {
  it('is a ClosedError, refused before anything is sent', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const redis = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    ctx.onTestFinished(() => void redis.disconnect());
    const s = new Stream(uniqueName('closedrc'), redis, { maxLen: 0 });
    await s.add('e', 'first');
    await server.stop();
    await waitFor(() => redis.status === 'reconnecting', { what: 'the client waiting to reconnect' });
    redis.disconnect();
    expect(redis.status).toBe('reconnecting');
    await expect(s.add('e', 'second')).rejects.toBeInstanceOf(ClosedError);
  });
});
