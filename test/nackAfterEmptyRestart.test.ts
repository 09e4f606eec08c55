/**
 * A handler fails on an event while Redis restarts without persistence
 * (empty), and a producer then creates the stream again: the event is gone
 * from Redis, nothing can redeliver it, and it is counted lost. It was not:
 * its nack met NOGROUP (stopped: "the read path accounts for it"), or
 * landed on the group made anew and found the event pending for no one and
 * gone, which the sink took for an event another consumer had handled. The
 * read path reported only "events trimmed or deleted before this sink read
 * them: how many is unknown", and the stream's estimate (of the group at its
 * last check, before the event was read) counted none. Now a group found
 * missing, or a stream key gone without a destroy's exact count, makes the
 * events this instance read before count as Redis lost them when their nack
 * or dead letter finds them gone (sinkRollback.ts `goneWithKey`).
 * Both clients, process() and processBatch(), the handler failing during the
 * outage (its nack retried until Redis is back) and after it.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;

async function pendingCount(c: { cmd(...a: unknown[]): Promise<unknown> }, key: string): Promise<number> {
  return Number(((await c.cmd('XPENDING', key, 'g')) as unknown[])[0]);
}

async function run(ctx: TestContext, kind: ClientKind, batch: boolean, failDuringOutage: boolean) {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('nackEmpty'), c.redis, { logger: logger as Logger, maxLen: 0 });
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
  await s.add('e', 'b0');
  // Two at a time: n0 is handled while b0's handler waits.
  await inHandlerP;
  await server.kill();
  if (failDuringOutage) {
    release();
    await waitFor(() => lines.some((l) => /nack failed/.test(String(l.msg))), { timeout: 15_000, what: 'the nack failing' });
  }
  await server.restart(); // empty: no stream, no group
  await waitFor(() => s.add('e', 'n0').catch(() => undefined), { timeout: 10_000, what: 'add n0 after the restart' });
  await waitFor(() => seen.includes('n0'), { timeout: 10_000, what: 'n0' });
  if (!failDuringOutage) release();
  // b0 failed in its handler and Redis no longer has it: nothing can redeliver it, counted lost.
  await waitFor(() => sink.counters.lost === 1, { timeout: 4 * GRACE + 5000, what: 'b0 counted lost' }).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${lines.map((l) => String(l.msg)).join(' | ')}`,
    );
  });
  expect(seen.filter((t) => t === 'b0')).toHaveLength(1);
}

describe.concurrent.each(CLIENT_KINDS)('a handler fails on an event Redis lost in a restart without persistence (%s)', (kind) => {
  for (const during of [true, false]) {
    const when = during ? 'during the outage' : 'after it';
    it(`process(), failing ${when}: counted lost`, (ctx) => run(ctx, kind, false, during), 40_000);
    it(`processBatch(), failing ${when}: counted lost`, (ctx) => run(ctx, kind, true, during), 40_000);
  }
});
