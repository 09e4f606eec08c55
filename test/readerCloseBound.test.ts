/**
 * A reader's close() resolves within about a second while Redis does not answer (SIGSTOP) with a
 * loss check due (README "Retention and losses": close() waits for its reads to stop and the
 * checks in flight, at most a second in all). With ioredis it took about 3 s (an outside review):
 * stopping the read loop waited for the blocked read's reply on the closed connection, which
 * ioredis rejects only when the socket closes (its disconnectTimeout, 2 s), and the 1 s bound on
 * the checks started after that.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, take, uniqueName, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('reader close() with Redis stopped (%s)', (kind) => {
  it('close() resolves within about a second while Redis does not answer', async (ctx: TestContext) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('close-bound'), c.redis, { maxLen: 0 });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    const sub = reader.subscribe();
    for (let i = 0; i < 5; i++) await s.add('e', `${i}`);
    await take(sub, 5);
    server.pause();
    ctx.onTestFinished(() => server.resume());
    const t0 = Date.now();
    await within(reader.close(), 10_000, 'close()');
    expect(Date.now() - t0).toBeLessThanOrEqual(1_500);
    expect(reader.counters.delivered).toBe(5);
  }, 30_000);
});
