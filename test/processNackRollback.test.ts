/**
 * Outside review R: a failed handler's nack while Redis is down longer than
 * the grace period, then Redis restarts from an older snapshot.
 *
 * `HandlerRun.#nack` (internal/process.ts) retried a failed nack for
 * max(delay, grace period) only, then logged "nack
 * failed: the events are redelivered after the grace period" and returns. Its
 * own comment (process.ts:278-280) says only a nack that lands can find an event
 * Redis lost in a rollback (and count it: `lostOnNack`). When Redis is down for
 * longer than the grace period and comes back from a snapshot taken before the
 * event was added, the event is neither in the stream nor pending: nothing
 * redelivers it, the nack that would have found it was dropped, and
 * `counters.lost` stays 0, although README "Retention and losses" (and the
 * sinkRollback test with Redis up) count such an event lost. The user sees
 * "nack failed: the events are redelivered after the grace period" (false)
 * and the rollback warning "events added after those this sink read may be
 * lost": b0 was read, so not even that covers it. The "nack not answered
 * after close" line (process.ts:292) makes the same promise. The same
 * mechanism the give-back in giveBack.ts `#send` had (fixed by retrying until
 * Redis answers or the sink closes). Both clients; also processBatch().
 *
 * Then the same with Redis restarted without persistence (empty) and the
 * stream created again by a producer, the handler failing during the outage
 * or after it: the nack met NOGROUP (stopped: "the read path accounts for
 * it"), or landed on the group made anew and found the event pending for no
 * one and gone, taken for an event another consumer had handled; the read
 * path said only "how many is unknown", and the stream's estimate (from a
 * check before b0 was read) counted none. Now what this instance read
 * before a group found missing after a reconnect counts as Redis lost it
 * when its nack finds it gone (sinkRollback.ts `goneWithKey`).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;

async function pendingCount(c: { cmd(...a: unknown[]): Promise<unknown> }, key: string): Promise<number> {
  return Number(((await c.cmd('XPENDING', key, 'g')) as unknown[])[0]);
}

/** How Redis comes back: from a snapshot taken before b0, or empty (the handler failing during the outage or after it). */
type Restart = 'snapshot' | 'empty, failing during' | 'empty, failing after';

async function run(ctx: TestContext, kind: ClientKind, batch: boolean, restart: Restart = 'snapshot') {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('revRnack'), c.redis, { logger: logger as Logger, maxLen: 0 });
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
  const seen: string[] = [];
  let inHandler!: () => void;
  const inHandlerP = new Promise<void>((r) => {
    inHandler = r;
  });
  let release!: () => void;
  const releaseP = new Promise<void>((r) => {
    release = r;
  });
  const handle = async (ev: SinkEvent) => {
    seen.push(ev.text());
    if (ev.text() === 'b0') {
      inHandler();
      await releaseP;
      throw new Error('downstream failed');
    }
  };
  const retry = { delayMs: 100, factor: 1, maxDelayMs: 100, jitter: 0 };
  const done = (
    batch
      ? sink.processBatch(
          async (evs) => {
            for (const ev of evs) await handle(ev);
          },
          // Two at a time: n0 is handled while b0's handler waits.
          { retry, maxBatch: 1, concurrency: 2 },
        )
      : sink.process(handle, { retry, concurrency: 2 })
  ).catch(() => {});
  ctx.onTestFinished(async () => {
    await within(sink.close(), 10_000, 'close');
    await done;
  });
  await s.add('e', 'a0');
  await waitFor(async () => seen.includes('a0') && (await pendingCount(c, s.key)) === 0, { what: 'a0 acked' });
  if (restart === 'snapshot') await c.cmd('SAVE'); // the snapshot: a0, acked
  await s.add('e', 'b0');
  await inHandlerP;
  // Redis goes down under the handler and stays down past where the nack used to give up (a grace period).
  await server.kill();
  const killedAt = Date.now();
  if (restart !== 'empty, failing after') {
    release();
    const failed = () => lines.some((l) => /nack failed/.test(String(l.msg)));
    await waitFor(() => failed() && (restart !== 'snapshot' || Date.now() - killedAt > 2 * GRACE), {
      timeout: 15_000,
      what: 'the nack failing past a grace period',
    });
  }
  // From the snapshot, or empty: b0 is neither in the stream nor pending.
  await server.restart();
  await waitFor(() => s.add('e', 'n0').catch(() => undefined), { timeout: 10_000, what: 'add n0 after the restart' });
  await waitFor(() => seen.includes('n0'), { timeout: 10_000, what: 'n0' });
  if (restart === 'empty, failing after') release();
  // b0 failed in its handler and nothing can redeliver it: counted lost, as when Redis is up.
  await waitFor(() => sink.counters.lost === 1, { timeout: 4 * GRACE + 5000, what: 'b0 counted lost' }).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${lines.map((l) => String(l.msg)).join(' | ')}`,
    );
  });
  expect(seen.filter((t) => t === 'b0')).toHaveLength(1);
}

describe.concurrent.each(CLIENT_KINDS)('nack given up while Redis is down, then a rollback (%s)', (kind) => {
  it('process(): the failed event Redis lost is counted lost', (ctx) => run(ctx, kind, false), 40_000);
  it('processBatch(): the failed event Redis lost is counted lost', (ctx) => run(ctx, kind, true), 40_000);
});

describe.concurrent.each(CLIENT_KINDS)('a handler fails on an event Redis lost in a restart without persistence (%s)', (kind) => {
  for (const restart of ['empty, failing during', 'empty, failing after'] as const) {
    it(`process(), ${restart} the outage: counted lost`, (ctx) => run(ctx, kind, false, restart), 40_000);
    it(`processBatch(), ${restart} the outage: counted lost`, (ctx) => run(ctx, kind, true, restart), 40_000);
  }
});
