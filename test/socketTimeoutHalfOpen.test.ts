/**
 * Outside review P: the library's own connections now drop the client's
 * socketTimeout (35dcc5f). It was the user's only detection of a connection
 * that stays open but carries nothing (a stuck proxy / load balancer, a
 * half-open TCP link after a failover: keepalive takes minutes or, behind a
 * proxy that answers TCP, never). With socketTimeout (3 s) longer than
 * blockMs (1 s), nothing idle was torn down before, and a dead read
 * connection was replaced after 3 s. Now a sink's blocking read on such a
 * connection waits for ever: events added afterwards are never delivered
 * (a hang), although the user's client itself recovered in 3 s.
 */
import { createServer, type Server, Socket } from 'node:net';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { describe, expect, it, type TestContext } from 'vitest';
import type { RedisClient } from '../packages/pulse-streaming/src/index.js';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';

/** A TCP proxy to Redis whose existing connections can be made to carry nothing (without closing). */
async function blackholeProxy(): Promise<{ port: number; blackholeExisting(): void; close(): void }> {
  const target = new URL(sharedUrl());
  const pairs: Array<{ a: Socket; b: Socket; dead: boolean }> = [];
  const server: Server = createServer((a) => {
    const b = new Socket();
    const pair = { a, b, dead: false };
    pairs.push(pair);
    b.connect(Number(target.port || 6379), target.hostname);
    a.on('data', (d) => {
      if (!pair.dead) b.write(d);
    });
    b.on('data', (d) => {
      if (!pair.dead) a.write(d);
    });
    const end = () => {
      a.destroy();
      b.destroy();
    };
    a.on('error', end).on('close', end);
    b.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    blackholeExisting: () => {
      for (const p of pairs) p.dead = true;
    },
    close: () => {
      server.close();
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
    },
  };
}

// The two clients' cases run at once: each has its own proxy, streams and clients (cleaned up by its
// own context), and most of each is waiting out the client's socketTimeout; one after the other the
// file kept a worker ~9 s.
describe.concurrent('socketTimeout and a connection that carries nothing', () => {
  async function silentReadRecovers(
    cleanups: { push(f: () => void): void },
    proxy: Awaited<ReturnType<typeof blackholeProxy>>,
    redis: RedisClient,
    ping: () => Promise<unknown>,
  ) {
    const direct = new Redis(sharedUrl());
    cleanups.push(() => direct.disconnect());
    const name = uniqueName('revPhalfopen');
    const s = new Stream(name, redis);
    const publisher = new Stream(name, direct);
    const sink = await s.newSink('k', { blockMs: 1000, ackGracePeriodMs: 60_000 });
    const got: SinkEvent[] = [];
    let ackedHere = 0;
    void (async () => {
      for await (const ev of sink.subscribe()) {
        got.push(ev);
        await ev.ack().catch(() => {});
        ackedHere++;
      }
    })();
    await publisher.add('e', '1');
    await waitFor(() => got.length === 1, { what: 'first event' });
    // Acked, its reply in, before the silence: an ack still in flight then waits on the silent
    // connections (the sink's own ones for up to its grace period, 60 s), and the collecting loop
    // with it. Twice in loaded clean-clone CI runs event 2 was so never taken in time (node-redis),
    // and once more (ioredis) while the test waited for XPENDING to say 0: Redis had run the XACK,
    // but its reply, forwarded by this process's proxy, had not reached the client yet.
    await waitFor(() => ackedHere === 1, { what: 'first event acked, its reply in' });

    // Every connection open now (the user's and the library's) goes silent.
    proxy.blackholeExisting();
    // The user's client notices within its socketTimeout and reconnects.
    await waitFor(async () => (await ping().catch(() => '')) === 'PONG', { timeout: 10_000, what: 'the client back' });

    await publisher.add('e', '2');
    // Expected: delivered once the sink's read connection is found dead (socketTimeout) and replaced.
    // Before the fix: never (the blocking read waits on the silent connection for ever).
    // The read connection is found dead after socketTimeout + blockMs (4 s), then replaced.
    await waitFor(() => got.length === 2, { timeout: 15_000, what: 'the event added after the silence, delivered' });
    expect(got.map((e) => e.deliveryCount)).toEqual([1, 1]);
    proxy.close();
    await sink.close().catch(() => {});
    await publisher.destroy();
  }

  /** Cleanups of the test `ctx`, run when it finishes (not afterEach: the tests run at once). */
  const cleanupsOf = (ctx: TestContext) => ({ push: (f: () => void) => ctx.onTestFinished(f) });

  it('ioredis: a sink whose read connection went silent recovers within the client socketTimeout', async (ctx) => {
    const cleanups = cleanupsOf(ctx);
    const proxy = await blackholeProxy();
    cleanups.push(proxy.close);
    // socketTimeout longer than blockMs: never fires on a healthy idle sink.
    const redis = new Redis({ host: '127.0.0.1', port: proxy.port, socketTimeout: 3000, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    cleanups.push(() => redis.disconnect());
    await silentReadRecovers(cleanups, proxy, redis, () => redis.ping());
  }, 40_000);

  it('node-redis: same (socket.socketTimeout, pingInterval keeping the idle app client alive)', async (ctx) => {
    const cleanups = cleanupsOf(ctx);
    const proxy = await blackholeProxy();
    cleanups.push(proxy.close);
    const redis = createClient({
      socket: { host: '127.0.0.1', port: proxy.port, socketTimeout: 3000, reconnectStrategy: () => 100 },
      pingInterval: 500,
    });
    redis.on('error', () => {});
    await redis.connect();
    cleanups.push(() => redis.destroy());
    await silentReadRecovers(cleanups, proxy, redis, () => redis.ping());
  }, 40_000);
});
