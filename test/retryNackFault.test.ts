/**
 * process()'s retry nack when the connection drops under it (a Redis restart, AOF kept): "What a
 * retry can outlive (dropped connections, restarts, ...) is retried with backoff" (README), and
 * "delivery d that threw is redelivered after min(maxDelayMs, ...)". The nack is retried until
 * it lands, so the event comes back after its retry delay, not after the grace period.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1500;
const DELAY = 5000;
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

describe.concurrent.each(CLIENT_KINDS)('retry nack during a Redis restart (%s)', (kind) => {
  it(`a handler that throws as Redis restarts: redelivered after its ${DELAY} ms retry delay, not after the ${GRACE} ms grace period`, async (ctx: TestContext) => {
    const server = await RedisServer.start({ args: AOF });
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('retry-nack'), c.redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const calls: Array<{ count: number; at: number }> = [];
    let restarting: Promise<void> | undefined;
    let added: Promise<string> | undefined;
    const ac = new AbortController();
    const run = sink.process(
      async (ev: SinkEvent) => {
        calls.push({ count: ev.deliveryCount, at: Date.now() });
        if (ev.deliveryCount === 1) {
          // Not before the add's reply is in: a restart between the XADD and its reply leaves the
          // add's outcome unknown (the read can deliver the event first on a loaded machine).
          await added;
          restarting = server.restart();
          throw new Error('first try fails');
        }
      },
      { signal: ac.signal, retry: { delayMs: DELAY, jitter: 0 } },
    );
    added = s.add('e', 'x');
    await added;
    await waitFor(() => calls.length >= 2, { timeout: DELAY + 8000, what: 'the redelivery' });
    await restarting;
    ac.abort();
    await within(run, 8000, 'process');
    const gap = (calls[1]?.at as number) - (calls[0]?.at as number);
    expect(calls[1]?.count).toBe(2);
    expect(gap).toBeGreaterThanOrEqual(DELAY - 50);
    // The nack was retried, and said so.
    expect(lines.some((l) => l.msg === 'nack failed, retrying')).toBe(true);
  }, 25_000);
});
