/**
 * A handler that fails on its last allowed delivery (`maxDeliveries`) while Redis is stopped: the
 * run's dead letter goes on the user's client, which close() leaves open. process() and
 * processBatch() (no signal) settle within a close() step after close(), as with a nack (README:
 * "wait for their last acks at most 2 s (Redis may be stopped)"), instead of waiting for Redis
 * (found by the review of cba1238: 20 s, the whole freeze). Once Redis is back, the move lands:
 * nothing is lost by giving up the wait.
 *
 * Failed before the fix (both clients, both ways): not settled 10 s after close().
 */
import { describe, it, type TestContext } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('a dead letter at max deliveries during a Redis freeze (%s)', (kind) => {
  for (const mode of ['process', 'processBatch'] as const) {
    it(`${mode}: settles within 4 s of close(), and the move lands once Redis is back`, {
      timeout: 30_000,
    }, async (ctx: TestContext) => {
      const server = await RedisServer.start();
      ctx.onTestFinished(() => server.stop());
      const c = await connect(kind, server.url);
      ctx.onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('dead-close'), c.redis, { logger: logger as Logger });
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 2000, maxDeliveries: 1 });
      let handled = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const h = async () => {
        handled++;
        await gate;
        throw new Error('fails');
      };
      const run = mode === 'process' ? sink.process(h) : sink.processBatch(h);
      const settled = run.then(
        () => 'resolved',
        (e: unknown) => `rejected ${String(e)}`,
      );
      await s.add('e', 'x');
      await waitFor(() => handled === 1, { what: 'handling' });
      server.pause();
      ctx.onTestFinished(() => server.resume());
      release();
      await new Promise((r) => setTimeout(r, 100));
      // Measured from the call: close() itself waits its own steps on the stopped Redis.
      const t0 = Date.now();
      const closing = sink.close();
      await within(settled, 10_000, `${mode} after close`);
      ctx.expect(Date.now() - t0, 'ms from close() to the run settled').toBeLessThan(4000);
      server.resume();
      await within(closing, 10_000, 'close');
      await waitFor(async () => Number(await c.cmd('XLEN', `${s.key}:dead`)) === 1, {
        timeout: 10_000,
        what: `the dead letter once Redis is back (${JSON.stringify(lines.map((l) => l.msg))})`,
      });
      ctx.expect(Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0])).toBe(0);
    });
  }
});
