/**
 * README "Delivery guarantees", under a memory limit: with an `allkeys-*`
 * maxmemory policy Redis may evict a stream itself, and a live sink reports
 * what went with it as it does for a deleted or expired stream, never in
 * silence (outside review S checked it by hand; this keeps it checked).
 */
import { describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('a stream evicted under allkeys-random (%s)', (kind) => {
  it('a live sink reports the events that went with it', async (ctx) => {
    const server = await RedisServer.start({ args: ['--maxmemory-policy', 'allkeys-random'] });
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('evict'), c.redis, { logger: logger as Logger, maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const sub = sink.subscribe();
    for (let i = 0; i < 10; i++) await s.add('e', `e${i}`);
    await waitFor(() => sink.counters.delivered === 10, { what: '10 delivered, none acked' });
    await waitFor(() => sub.size === 10, { what: '10 buffered' });
    // Memory at its limit; cache writes evict random keys until the stream is one of them.
    const used = Number(/used_memory:(\d+)/.exec(String(await c.cmd('INFO', 'memory')))?.[1]);
    await c.cmd('CONFIG', 'SET', 'maxmemory', String(used));
    const big = 'c'.repeat(5000);
    let n = 0;
    await waitFor(
      async () => {
        await c.cmd('SET', `cache:${n++}`, big).catch(() => {});
        return Number(await c.cmd('EXISTS', s.key)) === 0;
      },
      { timeout: 20_000, interval: 1, what: 'the stream evicted' },
    );
    await c.cmd('CONFIG', 'SET', 'maxmemory', '0');
    await waitFor(() => sink.counters.lost >= 10, { timeout: 10_000, what: 'the 10 events reported lost' });
    expect(sink.counters.lost).toBe(10);
    expect(lines.some((l) => l.level === 'warn' && /stream key is gone/.test(String(l.msg)))).toBe(true);
  }, 40_000);
});
