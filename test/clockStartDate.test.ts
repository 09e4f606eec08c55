/**
 * Clocks: a `startAt` date is compared with entry IDs, that is with Redis's
 * clock (API.md: "the first entry added on or after a time"). With this
 * host's clock ahead of Redis's, `startAt: new Date()` starts in Redis's
 * future and what is added until Redis's clock gets there is skipped: that is
 * said (a warning naming the difference), never silent, for sinks and
 * readers, with a logger and without one.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, nextWithin, recordingLogger, uniqueName, waitFor } from './support/clients.js';
import { SkewedRedis, skewShim, skewSkipReason } from './support/clockSkew.js';

const ok = skewShim() !== undefined;
if (!ok) console.warn(skewSkipReason);

describe.skipIf(!ok).concurrent.each(CLIENT_KINDS)('startAt Date and Redis clock (%s)', (kind) => {
  async function setup(ctx: TestContext, skewMs: number) {
    const srv = await SkewedRedis.start(skewMs);
    ctx.onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    ctx.onTestFinished(() => c.close());
    return c;
  }

  it('a sink and a reader started at new Date() with Redis 2 minutes behind say what they skip', async (ctx) => {
    const c = await setup(ctx, -120_000);
    const rec = recordingLogger();
    const stream = new Stream(uniqueName('sd'), c.redis, { maxLen: 0, logger: rec.logger });
    await stream.add('e', 'before');
    const sink = await stream.newSink('sink', { startAt: new Date(), ackGracePeriodMs: 500, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    const reader = await stream.newReader({ startAt: new Date(), blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    await stream.add('e', 'after');
    // As asked: the event is before the date on Redis's clock.
    expect(await nextWithin(sink[Symbol.asyncIterator](), 500)).toBe('timeout');
    const said = rec.lines.filter((l) => l.level === 'warn' && /ahead of Redis's clock/.test(l.msg ?? ''));
    expect(said.map((l) => (l.msg ?? '').split(' starts')[0])).toEqual([
      `stream ${stream.name}: sink sink`,
      `stream ${stream.name}: reader`,
    ]);
    for (const l of said) {
      const ahead = (l.obj as { aheadMs: number }).aheadMs;
      expect(ahead).toBeGreaterThan(110_000);
      expect(ahead).toBeLessThan(130_000);
    }
  }, 30_000);

  it('without a logger, the skip is a PulseWarning', async (ctx) => {
    const c = await setup(ctx, -120_000);
    const stream = new Stream(uniqueName('sdw'), c.redis, { maxLen: 0 });
    const seen: Array<Error & { code?: string }> = [];
    const listener = (w: Error): void => {
      if (w.name === 'PulseWarning' && w.message.includes(`stream ${stream.name}:`)) seen.push(w);
    };
    process.on('warning', listener);
    ctx.onTestFinished(() => void process.off('warning', listener));
    const sink = await stream.newSink('sink', { startAt: new Date(), blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    await waitFor(() => seen.length === 1, { what: 'the warning' });
    expect(seen[0]?.code).toBe('PULSE_START_AHEAD_OF_REDIS');
  }, 30_000);

  it('with the clocks together, new Date() says nothing and gets what is added next', async (ctx) => {
    const c = await setup(ctx, 0);
    const rec = recordingLogger();
    const stream = new Stream(uniqueName('sd0'), c.redis, { maxLen: 0, logger: rec.logger });
    const before = await stream.add('e', 'before');
    // A date starts at the entries of its millisecond: one well after the last entry's.
    await waitFor(() => Date.now() > Number(before.split('-')[0]) + 50, { what: 'the clock past the first add' });
    const sink = await stream.newSink('sink', { startAt: new Date(), ackGracePeriodMs: 500, blockMs: 100 });
    ctx.onTestFinished(() => sink.close());
    const id = await stream.add('e', 'after');
    const r = await nextWithin(sink[Symbol.asyncIterator](), 5000);
    expect(r !== 'timeout' && !r.done ? r.value.id : r).toBe(id);
    expect(rec.lines.filter((l) => l.level === 'warn')).toEqual([]);
  }, 30_000);
});
