import type { TestContext } from 'vitest';
import { type Sink, type SinkOptions, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, recordingLogger, type TestClient, uniqueName } from './clients.js';

/**
 * Instances of one sink over one stream, each with its own `Stream` handle
 * and logger, for tests of instances that differ in options (a rolling
 * deploy): a sink name of their own (the sink-wide liveness record is per
 * name), closed and the stream destroyed when the test ends.
 */
export async function sinkInstances(ctx: TestContext, kind: ClientKind, prefix: string, defaults: SinkOptions = {}) {
  const c: TestClient = await connect(kind);
  const name = uniqueName(prefix);
  const sinkName = uniqueName('sink');
  const sinks: Sink[] = [];
  const streams: Stream[] = [];
  ctx.onTestFinished(async () => {
    await Promise.all(sinks.map((s) => s.close()));
    await streams[0]?.destroy().catch(() => {});
    await c.close();
  });
  const instance = async (options: SinkOptions) => {
    const rec = recordingLogger();
    const s = new Stream(name, c.redis, { maxLen: 0, logger: rec.logger });
    streams.push(s);
    const sink = await s.newSink(sinkName, { startAt: 'oldest', blockMs: 100, ...defaults, ...options });
    sinks.push(sink);
    return { s, sink, rec };
  };
  return { c, name, sinkName, instance };
}
