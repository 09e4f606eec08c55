/**
 * Outside review S (Redis under memory pressure): nack and retry delays are lost to
 * eviction under a `volatile-*` maxmemory policy, on a stream that has no
 * time to live.
 *
 * `volatile-lru` is the default policy of the big managed Redis services
 * (ElastiCache, Azure Cache): only keys with a time to live are evicted, so a
 * user who keeps streams without `ttlMs` beside an application cache expects
 * the streams and their sinks to be safe. The stream key, the group and the
 * pending entries are. But a delay longer than the grace period (a
 * `nack({ delayMs })`, and every `retry` backoff of `process()` /
 * `processBatch()`) lives only in the sink's delays set
 * (`{pulse:stream:<name>}:sink:<sink>:delays`, keys.ts `sinkKeys`), and the
 * library gives that set a time to live of its own whatever the stream's:
 * `expireDelays` (internal/scripts.ts:61-63) sets `PEXPIREAT <last due
 * time>`, called from the `touch` script (scripts.ts:281) that nacks, and
 * from the claim script (scripts.ts:134). That makes it a volatile key, and
 * the one nearest to its expiry: the first to go under `volatile-ttl`, and an
 * LRU candidate under `volatile-lru`. The nack itself sets the event's idle
 * time to NACKED_IDLE_MS (= MAX_GRACE_MS, sinkDue.ts:16): with its due time
 * gone from the set, the claim step (scripts.ts:158, `ZSCORE` of the set)
 * finds it idle and due at once, and redelivers it at the next claim.
 *
 * Seen (both clients): a handler that always throws, with
 * `retry: { delayMs: 4000, factor: 1, jitter: 0 }` and a 500 ms grace
 * period, was called again every ~250 ms while the application wrote to its
 * cache (23 calls in 6 s instead of 2); a `nack({ delayMs: 4000 })` came back
 * within ~250 ms. Nothing is logged about the delay. What the user sees: the
 * retry backoff that was meant to spare a failing downstream (a database
 * that is down) turns into a retry every reclaim interval per failing event,
 * and with `maxDeliveries` events are dead-lettered after a fraction of the
 * time the backoff promised. README "Batches and retries": "delivery d that
 * threw is redelivered after min(maxDelayMs, delayMs * factor^(d-1))", and
 * "nack({ delayMs }) redelivers not before delayMs".
 *
 * The README states its guarantees for `maxmemory-policy noeviction`, and says
 * nothing of the others; but here the library itself makes its state volatile
 * on a stream the user kept non-volatile. Expected once fixed: the delays set
 * of a stream without a time to live has none either (the claim step already
 * removes due members; delete the set when it empties), so `volatile-*`
 * policies never evict it (it follows the stream's TTL when there is one).
 *
 * Eviction is provoked deterministically: `volatile-ttl`, cache keys with a
 * one-hour TTL, `maxmemory` set to the memory in use, then cache writes
 * every 50 ms (each evicts the volatile keys nearest their expiry).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  type ClientKind,
  connect,
  nextWithin,
  recordingLogger,
  stays,
  uniqueName,
  waitFor,
  within,
} from './support/clients.js';
import { cacheTraffic, evictedKeys } from './support/memoryPressure.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 500;
const DELAY = 4000;

async function setup(ctx: TestContext, kind: ClientKind) {
  const server = await RedisServer.start({ args: ['--maxmemory-policy', 'volatile-ttl'] });
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const app = await connect(kind, server.url); // the application's cache traffic
  ctx.onTestFinished(() => app.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('revS'), c.redis, { logger: logger as Logger }); // no ttlMs: not volatile
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
  ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
  const delaysKey = `{${s.key}}:sink:g:delays`;
  /** Memory at its limit, and the application writing to its cache until the test ends. */
  const pressure = await cacheTraffic(ctx, app);
  const evicted = () => evictedKeys(app);
  return { c, s, sink, lines, delaysKey, pressure, evicted };
}

describe.concurrent.each(CLIENT_KINDS)('nack delays under a volatile-* maxmemory policy (%s)', (kind) => {
  it('a process() retry delay is kept while Redis evicts volatile keys: no redelivery before it', async (ctx) => {
    const { c, s, sink, delaysKey, pressure, evicted } = await setup(ctx, kind);
    const calls: number[] = [];
    const run = sink.process(
      async () => {
        calls.push(performance.now());
        throw new Error('downstream unavailable');
      },
      { retry: { delayMs: DELAY, factor: 1, jitter: 0 } },
    );
    run.catch(() => {});
    const id = await s.add('e', 'order-1');
    await waitFor(() => calls.length === 1, { what: 'first delivery' });
    await waitFor(async () => (await c.cmd('ZSCORE', delaysKey, id)) !== null, { what: 'the retry delay recorded' });
    await pressure();
    await waitFor(async () => (await evicted()) > 0, { what: 'evictions' });
    // The retry is due DELAY ms after the failure: nothing comes before (margin for timers).
    await stays(
      () => calls.length === 1,
      DELAY - 1000 - (performance.now() - (calls[0] as number)),
      'one delivery before the retry delay',
    );
    expect(calls.length).toBe(1);
  }, 30_000);

  it('nack({ delayMs }) is kept while Redis evicts volatile keys: no redelivery before it', async (ctx) => {
    const { c, s, sink, delaysKey, pressure, evicted } = await setup(ctx, kind);
    const it0 = sink.subscribe()[Symbol.asyncIterator]();
    const id = await s.add('e', 'order-1');
    const first = await nextWithin(it0, 5000);
    if (first === 'timeout' || first.done) throw new Error('no first delivery');
    const nackedAt = performance.now();
    await (first.value as SinkEvent).nack({ delayMs: DELAY });
    expect(await c.cmd('ZSCORE', delaysKey, id)).not.toBeNull();
    await pressure();
    await waitFor(async () => (await evicted()) > 0, { what: 'evictions' });
    const again = await nextWithin(it0, DELAY - 1000 - (performance.now() - nackedAt));
    expect(
      again === 'timeout'
        ? 'not redelivered before the delay'
        : `redelivered after ${Math.round(performance.now() - nackedAt)} ms`,
    ).toBe('not redelivered before the delay');
  }, 30_000);
});
