/**
 * Outside review T (the session's own changes): a nack that meets NOGROUP is retried for the
 * sink's life, holding its `process()` handler slot.
 *
 * Mechanism: f679bcd made `HandlerRun.#nack` (src/internal/process.ts:299-337)
 * retry "until the sink closes or Redis refuses for good"; it stops only on
 * `closed.aborted || !isRetryable(err)`. `isRetryable` counts NOGROUP as
 * retryable (src/internal/redisErrors.ts:79). The `touch` script a nack runs
 * calls XPENDING on the stream (src/internal/scripts.ts:266), which answers
 * NOGROUP once the stream's key is gone: destroyed (`stream.destroy()`, from
 * any service), deleted, or expired (a stream with a TTL). So a handler that
 * throws on an event of a stream destroyed meanwhile has its nack retried
 * every 5 s for ever (said once at warn), and `runProcess`'s `one()` awaits
 * it (`await nacking`, process.ts:388) in the slot. With `concurrency: 1`
 * the sink's `process()` handles nothing more, from any of its streams,
 * until that stream is created again or the sink closes; `process()` with
 * its signal aborted does not resolve either. Before the change the nack was
 * given up after max(retry delay, grace period) (1-2 s here).
 *
 * The decode dead letter retried since the same commit (`#deadLetterIfFailed`,
 * process.ts:196-236) has the same flaw: its script's XPENDING answers
 * NOGROUP for an event of a stream gone meanwhile (settle.ts:65), retried for
 * ever in the slot (second test). Before: said once, the slot freed.
 *
 * What the user sees: a consumer that stops handling events of its other
 * streams after one stream was destroyed (or expired) under a failing
 * handler, with one "nack failed, retrying" warning.
 */
import { describe, expect, it } from 'vitest';
import { type Codec, type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

/** Until b0 (of the sink's other stream) is handled; then the run is aborted and b0 was the only event handled. */
async function b0HandledThenStop(r: {
  handled: string[];
  lines: ReturnType<typeof recordingLogger>['lines'];
  ac: AbortController;
  run: Promise<void>;
}): Promise<void> {
  await waitFor(() => r.handled.includes('b0'), { timeout: 10_000, what: 'b0 handled' }).catch((err: unknown) => {
    const log = r.lines.map((l) => `${l.level}: ${String(l.msg)}`).join(' | ');
    throw new Error(`${(err as Error).message}; log: ${log}`);
  });
  r.ac.abort();
  await within(r.run, 5000, 'process() resolved after its signal aborted');
  expect(r.handled).toEqual(['b0']);
}

describe.concurrent.each(CLIENT_KINDS)('nack of an event whose stream is gone (%s)', (kind) => {
  it("a handler failing on an event of a destroyed stream does not stop process() for the sink's other streams", async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const a = new Stream(uniqueName('revTa'), c.redis, { logger: logger as Logger });
    const b = new Stream(uniqueName('revTb'), c.redis, { logger: logger as Logger });
    const sink = await a.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    await sink.addStream(b);
    const handled: string[] = [];
    const ac = new AbortController();
    const run = sink.process(
      async (ev: SinkEvent) => {
        if (ev.streamName === a.name) {
          // Another service destroys stream a while this handler works on its event, which then fails.
          await a.destroy();
          throw new Error('handler failed');
        }
        handled.push(ev.text());
      },
      { concurrency: 1, signal: ac.signal },
    );
    run.catch(() => {});
    await a.add('e', 'a0');
    await waitFor(() => lines.some((l) => /handler failed: event nacked/.test(String(l.msg))), {
      what: 'the handler of a0 failed',
    });
    await b.add('e', 'b0');
    // Before the change the nack was given up after its delay and a grace period (~1-2 s): b0 then handled.
    await b0HandledThenStop({ handled, lines, ac, run });
  }, 30_000);

  it("a decode dead letter of an event of a stream destroyed meanwhile does not stop process() for the sink's other streams", async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    let decoding = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // Decodes everything but 'bad', which it refuses once the test let it (an asynchronous schema).
    const codec: Codec = {
      encode: (v) => JSON.stringify(v),
      decode: async (buf: Buffer) => {
        const v = JSON.parse(buf.toString('utf8')) as { t: string };
        if (v.t !== 'bad') return v;
        decoding = true;
        await gate;
        throw new Error('does not decode');
      },
    };
    type Events = { e: { t: string } };
    const a = new Stream<Events>(uniqueName('revTa'), c.redis, { logger: logger as Logger, codec });
    const b = new Stream<Events>(uniqueName('revTb'), c.redis, { logger: logger as Logger, codec });
    const sink = await a.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    await sink.addStream(b);
    const handled: string[] = [];
    const ac = new AbortController();
    const run = sink.process(
      async (ev) => {
        handled.push((ev.data as { t: string }).t);
      },
      { concurrency: 1, signal: ac.signal },
    );
    run.catch(() => {});
    await a.add('e', { t: 'bad' });
    await waitFor(() => decoding, { what: 'the bad event decoding' });
    await a.destroy();
    release();
    await waitFor(() => lines.some((l) => /does not decode (failed|found its consumer group gone)/.test(String(l.msg))), {
      what: 'the dead letter failed',
    });
    await b.add('e', { t: 'b0' });
    await b0HandledThenStop({ handled, lines, ac, run });
  }, 30_000);
});
