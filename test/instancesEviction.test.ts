/**
 * Outside review S (Redis under memory pressure): under a `volatile-*` maxmemory
 * policy, a short-grace sink instance takes an event a long-grace instance
 * is still handling.
 *
 * README "Instances with different options" (a rolling deploy that changes
 * `ackGracePeriodMs`): "An event is redelivered only once idle for the longest
 * grace period of the live instances holding events on its stream, so a
 * short-grace instance never takes what a long-grace one still handles". A
 * short-grace instance learns the other's grace period only from the
 * sink-wide record `{pulse:sink:<sink>}:instances` / `:options`
 * (sinkLiveness.ts `liveness`, read each beat into `longerGraces`), and the
 * claim waits that long only for the instances it finds there (sinkClaims.ts:120-123).
 * The library gives both keys a time to live of its own, whatever the
 * stream's: `PEXPIRE <20 grace periods>` (sinkLiveness.ts:56-59, :84). They
 * are therefore volatile keys, evicted under `volatile-ttl` (their expiry is
 * nearer than an hour-long cache entry's) and LRU candidates under
 * `volatile-lru` (the default policy of ElastiCache and Azure Cache), on a
 * stream that has no time to live at all. Once the record is evicted, the
 * short-grace instance's beat reads it empty ("the record of live sink
 * instances was lost: sweeping every stream"), forgets the long-grace
 * instance's grace period, and claims the event it holds once idle for its
 * own short grace period.
 *
 * Seen (both clients): instance B (grace 10 s) handles an event in
 * `process()`; instance A (grace 500 ms) joins; while the application writes
 * to its cache with memory at `maxmemory`, A's handler got the same event
 * (deliveryCount 2) within about a second, B's handler still running; B's
 * ack then counted as stale. Without the memory pressure, A never takes it
 * (checked: 5 s, one delivery). What the user sees: the event handled twice,
 * concurrently, during a deploy, exactly what the README says the grace
 * bookkeeping prevents. (The same eviction also made A remove B's consumer
 * from the group as stale, "removed stale consumers", while B was live.)
 *
 * Fixed: an instance remembers the options of the others for good and, when
 * the record was lost, their last beats until they beat again or are
 * forgotten. (The earlier expectation: an instance keeps the grace periods (and liveness) it
 * learnt of other instances for the forget period when the record vanishes
 * (it already detects that: `Beat.reset`), and/or the sink-wide keys carry no
 * time to live (tidy already drops forgotten members; delete the keys when
 * they empty), so that `volatile-*` policies never evict them.)
 *
 * Eviction is provoked deterministically: `volatile-ttl`, cache keys with a
 * one-hour TTL, `maxmemory` set to the memory in use, then cache writes every
 * 50 ms (each evicts the volatile keys nearest their expiry).
 */
import { describe, it } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, stays, uniqueName, waitFor, within } from './support/clients.js';
import { cacheTraffic, evictedKeys } from './support/memoryPressure.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)(
  'sink instances with different grace periods under a volatile-* maxmemory policy (%s)',
  (kind) => {
    it('a short-grace instance does not take the event a long-grace instance is handling while Redis evicts volatile keys', async (ctx) => {
      const server = await RedisServer.start({ args: ['--maxmemory-policy', 'volatile-ttl'] });
      ctx.onTestFinished(() => server.stop());
      const c = await connect(kind, server.url);
      ctx.onTestFinished(() => c.close());
      const app = await connect(kind, server.url); // the application's cache traffic
      ctx.onTestFinished(() => app.close());
      const { logger } = recordingLogger();
      const s = new Stream(uniqueName('revS'), c.redis, { logger: logger as Logger }); // no ttlMs: not volatile
      const calls: string[] = [];
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      ctx.onTestFinished(() => release());
      const handler = (who: string) => async (ev: SinkEvent) => {
        calls.push(`${who}:${ev.deliveryCount}`);
        await released;
      };
      // B: the old deployment, grace 10 s, handling an event that takes long.
      const b = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 10_000 });
      ctx.onTestFinished(() => within(b.close(), 10_000, 'close b'));
      const runB = b.process(handler('b'));
      runB.catch(() => {});
      await s.add('e', 'order-1');
      await waitFor(() => calls.length === 1, { what: 'B handling the event' });
      // A: the new deployment, grace 500 ms.
      const a = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 500 });
      ctx.onTestFinished(() => within(a.close(), 10_000, 'close a'));
      const runA = a.process(handler('a'));
      runA.catch(() => {});
      // The application's cache, and memory at its limit.
      await (await cacheTraffic(ctx, app))();
      await waitFor(async () => (await evictedKeys(app)) > 0, { what: 'evictions' });
      // B's handler runs on (well within its 10 s grace period): nobody else gets its event.
      await stays(() => calls.length === 1, 4000, 'only B handles the event').catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; calls: ${calls.join(', ')}`);
      });
    }, 30_000);
  },
);
