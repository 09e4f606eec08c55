/**
 * A sink on a redis-server of the test's own (one it may kill, restart or
 * roll back: `SAVE`, then a restart from the snapshot), with a recording
 * logger, and an iterator over it. Everything stops when the test ends.
 */
import type { TestContext } from 'vitest';
import { type Logger, type SinkOptions, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, recordingLogger, uniqueName, within } from './clients.js';
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
