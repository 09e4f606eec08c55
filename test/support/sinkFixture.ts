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
    /** A sink over `streams`: created on the first, the others added from `options.startAt` (default the oldest entry). */
    async sinkOver(streams: readonly Stream[], options: SinkOptions = {}, name = 'sink'): Promise<Sink> {
      const [first, ...rest] = streams as [Stream, ...Stream[]];
      const sink = await this.sink(first, options, name);
      for (const s of rest) await sink.addStream(s, { startAt: options.startAt ?? 'oldest' });
      return sink;
    },
  };
}

/** Adds `n` events named `name`, payloads `<prefix>0`, `<prefix>1`..., 500 in flight at a time. */
export async function fill(s: Stream, n: number, name = 'bulk', prefix = 'b'): Promise<void> {
  for (let i = 0; i < n; i += 500)
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => s.add(name, `${prefix}${i + j}`)));
}

/** What `sinkFixture` returns: streams and sinks of a test, cleaned up when it ends. */
export type SinkFixture = ReturnType<typeof sinkFixture>;
