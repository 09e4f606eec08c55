/**
 * As frozenShutdown.test.ts, but the handler throws (a retry nack) instead of
 * returning (an ack), with an in-progress touch stuck on the frozen Redis:
 * failed() waits for it (up to the grace period), then sends the nack on the
 * user client (the sink is closed by then), which never answers. Once the
 * sink is closed, process() should settle within
 * a close() step too, not wait for the grace period or for Redis to return.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 9000;
// With a touch in flight as Redis stops (the case that hung).
const WAIT_TOUCH = true;

describe.concurrent.each(CLIENT_KINDS)('nack during a Redis freeze (%s)', (kind) => {
  for (const mode of ['process', 'processBatch'] as const) {
    it(`${mode}: a handler throws while Redis is stopped; abort + close(): process settles within 4 s of close`, async (ctx: TestContext) => {
      const server = await RedisServer.start();
      ctx.onTestFinished(() => server.stop());
      const c = await connect(kind, server.url);
      ctx.onTestFinished(() => c.close());
      const { logger } = recordingLogger();
      const s = new Stream(uniqueName('frozen-nack'), c.redis, { logger: logger as Logger });
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
      const ac = new AbortController();
      let handled = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const h = async () => {
        handled++;
        await gate;
        throw new Error('fails');
      };
      const run = mode === 'process' ? sink.process(h, { signal: ac.signal }) : sink.processBatch(h, { signal: ac.signal });
      const settled = run.then(
        () => 'resolved',
        (e: unknown) => `rejected ${String(e)}`,
      );
      await s.add('e', 'x');
      await waitFor(() => handled === 1, { timeout: 5000, what: 'handling' });
      server.pause();
      ctx.onTestFinished(() => server.resume());
      // An in-progress touch goes out (every grace/3) and is stuck.
      await new Promise((r) => setTimeout(r, WAIT_TOUCH ? GRACE / 3 + 500 : 100));
      release();
      await new Promise((r) => setTimeout(r, 100));
      ac.abort();
      await within(sink.close(), 10_000, 'close');
      const t0 = Date.now();
      const outcome = await within(settled, 10_000, `${mode} after abort and close`);
      expect({ outcome, afterCloseMs: Date.now() - t0 < 4000 ? 'bounded' : Date.now() - t0 }).toEqual({
        outcome: expect.stringMatching(/resolved|rejected/),
        afterCloseMs: 'bounded',
      });
    }, 29_000);
  }
});
