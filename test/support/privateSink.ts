/**
 * A sink on a redis-server of the test's own (one it may kill, restart or
 * roll back: `SAVE`, then a restart from the snapshot), with a recording
 * logger, and an iterator over it. Everything stops when the test ends.
 */
import { expect, type TestContext } from 'vitest';
import { type Logger, type Sink, type SinkOptions, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, recordingLogger, type TestClient, take, uniqueName, within } from './clients.js';
import { RedisServer } from './redisServer.js';

export async function privateSink(ctx: TestContext, kind: ClientKind, prefix: string, options: SinkOptions = {}) {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName(prefix), c.redis, { logger: logger as Logger, maxLen: 0 });
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000, ...options });
  ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
  const iter = sink[Symbol.asyncIterator]();
  return { server, c, lines, s, sink, iter };
}

/**
 * Events b0..b2 added to `s`, read by another instance that crashes (consumer
 * `crashed`), taken over by `sink` after the grace period and nacked with a
 * minute's delay: pending for `sink`, let go of. Resolves to their IDs.
 * The sink must not be reading as they are added (see `readsStopped`).
 */
export async function claimedThenNacked(c: TestClient, s: Stream, sink: Sink): Promise<string[]> {
  const ids = [await s.add('e', 'b0'), await s.add('e', 'b1'), await s.add('e', 'b2')];
  const got = (await c.cmd('XREADGROUP', 'GROUP', 'g', 'crashed', 'COUNT', 10, 'STREAMS', s.key, '>')) as unknown[] | null;
  expect(got, 'the crashed instance read b0..b2, not this sink').not.toBeNull();
  const again = sink[Symbol.asyncIterator]();
  const claimed = await take(again, 3, 10_000);
  expect(claimed.map((e) => e.id).sort()).toEqual([...ids].sort());
  for (const ev of claimed) await ev.nack({ delayMs: 60_000 });
  await again.return?.();
  return ids;
}
