/**
 * ioredis: an add that the client's `commandTimeout` rejects while it waits
 * in the offline queue of the connection adds use was reported ADD_NOT_SENT
 * ("not stored"), but ioredis does not take a timed-out command out of its
 * offline queue: it writes it once the connection is ready, and the event is
 * stored; a user retrying on "not stored" stored it twice (outside review F
 * of this session's add-error fix). Such an add's outcome is unknown now
 * (ADD_OUTCOME_UNKNOWN). ioredis only: node-redis' timeout only runs while a
 * command waits to be written, and takes it out of its queue.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('ioredis commandTimeout and ADD_NOT_SENT', () => {
  it('an add timed out in the offline queue is not reported "not stored" when it is then written', async (ctx) => {
    const srv = await RedisServer.start();
    ctx.onTestFinished(() => srv.stop());
    const redis = new Redis(srv.url, { lazyConnect: true, retryStrategy: () => 400, commandTimeout: 300 });
    redis.on('error', () => {});
    await redis.connect();
    ctx.onTestFinished(() => redis.disconnect());
    const s = new Stream(uniqueName('addTimedOut'), redis);
    await s.add('warm', 'w');
    // The connection adds use is cut; Redis is frozen before it can reconnect and say ready.
    await srv.killClients('TYPE normal');
    // Both connections (the client's, the one adds use) see the close together; then Redis freezes.
    await waitFor(() => redis.status === 'reconnecting', { what: 'the client saw the kill' });
    await new Promise((r) => setTimeout(r, 20));
    srv.pause();
    ctx.onTestFinished(() => srv.resume());
    const err = (await within(
      s.add('k', 'once').catch((e: unknown) => e),
      10_000,
      'the add',
    )) as PulseError;
    srv.resume();
    expect(err).toBeInstanceOf(PulseError);
    // ioredis writes it once the connection is ready (it usually is stored): never "not stored".
    expect(err.code).toBe('ADD_OUTCOME_UNKNOWN');
  });
});
