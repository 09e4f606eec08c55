/**
 * Graceful shutdown while Redis is frozen (SIGSTOP): abort process()/processBatch() and
 * close() the sink. close() is bounded ("A command stuck on a stopped Redis must not hang
 * close()"); process() settles too once the sink is closed, its last acks waited for no longer
 * than a step of close(), not until Redis returns, and the unsettled acks are logged.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('shutdown during a Redis freeze (%s)', (kind) => {
  for (const mode of ['process', 'processBatch'] as const) {
    it(`${mode}: abort + close() while Redis is stopped: both settle within 10 s`, async (ctx: TestContext) => {
      const server = await RedisServer.start();
      ctx.onTestFinished(() => server.stop());
      const c = await connect(kind, server.url);
      ctx.onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('frozen'), c.redis, { logger: logger as Logger });
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 1000 });
      const ac = new AbortController();
      let handled = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const run =
        mode === 'process'
          ? sink.process(
              async () => {
                handled++;
                await gate;
              },
              { signal: ac.signal },
            )
          : sink.processBatch(
              async () => {
                handled++;
                await gate;
              },
              { signal: ac.signal },
            );
      const settled = run.then(
        () => 'resolved',
        (e: unknown) => `rejected ${String(e)}`,
      );
      await s.add('e', 'x');
      await waitFor(() => handled === 1, { timeout: 5000, what: 'handling' });
      server.pause();
      ctx.onTestFinished(() => server.resume());
      release(); // the handler returns: its ack goes to the frozen Redis
      await new Promise((r) => setTimeout(r, 100));
      ac.abort();
      await within(sink.close(), 10_000, 'close');
      const outcome = await within(settled, 10_000, `${mode} after abort and close`);
      expect(outcome).toMatch(/resolved|rejected/);
      // The ack that never settled is said, with what becomes of its event.
      expect(lines.some((l) => l.level === 'warn' && /acks unsettled|ack failed/.test(String(l.msg)))).toBe(true);
    }, 30_000);
  }
});
