/**
 * A client `socketTimeout` shorter than `blockMs` (ioredis' `socketTimeout`,
 * node-redis' `socket.socketTimeout`) does not tear down the idle blocking
 * reads of a sink and a reader: the library's own connections drop it, as
 * they drop `commandTimeout` and `blockingTimeout`. Outside review M: they
 * kept it, so every idle XREAD / XREADGROUP BLOCK longer than it destroyed
 * the connection, and an idle sink logged "read failed, retrying" at warn
 * and reconnected every blockMs, delivering late after a backoff. A
 * socketTimeout of 3 s beside the default blockMs of 5 s is a normal setting
 * for the app's own commands.
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type RedisClient, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { collect, recordingLogger, sharedUrl, stays, uniqueName, waitFor } from './support/clients.js';

describe('client socketTimeout', () => {
  const clients: Redis[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  async function idleReads(redis: RedisClient): Promise<void> {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('socktmo'), redis, { logger });
    const sink = await s.newSink('k', { blockMs: 1000, ackGracePeriodMs: 2000 });
    const reader = await s.newReader({ blockMs: 1000 });
    const got: SinkEvent[] = [];
    const seen: unknown[] = [];
    void collect(sink.subscribe(), got, true);
    void (async () => {
      for await (const e of reader.subscribe()) seen.push(e);
    })();
    try {
      // Idle for longer than socketTimeout: the reads are blocked, which is normal.
      const failures = () => lines.filter((l) => l.level === 'warn' && /read failed/.test(l.msg ?? ''));
      const dropped = () => lines.filter((l) => /[Ss]ocket timeout/.test(JSON.stringify(l.obj)));
      await stays(() => failures().length === 0 && dropped().length === 0, 1500, 'no read failure while idle');
      await s.add('e', 'x');
      await waitFor(() => got.length === 1 && seen.length === 1, { what: 'delivered' });
    } finally {
      await Promise.all([sink.close(), reader.close()]);
      await s.destroy();
    }
    expect(got[0]?.deliveryCount).toBe(1);
  }

  it('ioredis: idle blocking reads of a sink and a reader are not torn down by the client socketTimeout', async () => {
    const redis = new Redis(sharedUrl(), { socketTimeout: 300 });
    redis.on('error', () => {});
    clients.push(redis);
    await idleReads(redis);
  });

  it('node-redis (socket.socketTimeout with pingInterval keeping the app client alive): same', async () => {
    // 600 ms, still under blockMs: a loaded full run starved the pings of a 300 ms one, and the
    // client's own socket timed out (the test's destroy() then found it closed).
    const redis = createClient({ url: sharedUrl(), pingInterval: 100, socket: { socketTimeout: 600 } });
    redis.on('error', () => {});
    await redis.connect();
    try {
      await idleReads(redis);
    } finally {
      redis.destroy();
    }
  });
});
