/**
 * A closed sink can be garbage-collected. On a stream with a TTL, a sink arms a timer for
 * a last trim check just before the stream expires (expiryLoss.ts `Rechecks.expiring`):
 * left armed by close(), it held the closed sink, its streams and buffered events in memory
 * until the expiry (an hour here, days for long TTLs), one per closed sink.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { spawnChild } from './support/spawnChild.js';

describe.concurrent.each(CLIENT_KINDS)('closed sinks are collectable (%s)', (kind) => {
  it('stream with ttlMs: 5 sinks used and closed, at least 4 garbage-collected', async (ctx: TestContext) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const child = spawnChild('sinkRetentionChild.mjs', [server.url, kind], {}, ['--expose-gc']);
    ctx.onTestFinished(() => void child.proc.kill('SIGKILL'));
    const line = await child.waitLine('COLLECTED', 30_000);
    expect(await child.exited(10_000)).toBe(0);
    // One may still be referenced by what the last close left for a turn of the event loop.
    expect(Number(line.split(' ')[1])).toBeGreaterThanOrEqual(4);
  });
});
