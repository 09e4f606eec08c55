import type { TestContext } from 'vitest';
import { type Sink, type SinkOptions, Stream, type StreamOptions } from '../../packages/pulse-streaming/src/index.js';
import { type TestClient, uniqueName } from './clients.js';

/**
 * Streams and sinks of one test, on `c`: sinks start at the oldest entry and
 * block 100 ms unless told otherwise; all are closed and destroyed (with
 * their dead-letter streams) when the test ends.
 */
export function sinkFixture(ctx: TestContext, c: TestClient, prefix: string, sinkDefaults: SinkOptions = {}) {
  const sinks: Sink[] = [];
  const streams: Stream[] = [];
  ctx.onTestFinished(async () => {
    await Promise.all(sinks.map((s) => s.close()));
    await Promise.all(streams.map((s) => s.destroy().catch(() => {})));
    for (const s of streams) await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
  });
  return {
    stream(options: StreamOptions = { maxLen: 0 }): Stream {
      const s = new Stream(uniqueName(prefix), c.redis as never, options);
      streams.push(s);
      return s;
    },
    async sink(s: Stream, options: SinkOptions = {}, name = 'sink'): Promise<Sink> {
      const sink = await s.newSink(name, { startAt: 'oldest', blockMs: 100, ...sinkDefaults, ...options });
      sinks.push(sink);
      return sink;
    },
  };
}

/** What `sinkFixture` returns: streams and sinks of a test, cleaned up when it ends. */
export type SinkFixture = ReturnType<typeof sinkFixture>;
