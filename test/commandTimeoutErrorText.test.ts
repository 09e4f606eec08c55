/**
 * Errors wrapping node-redis' `TimeoutError` (its command timeout, for a
 * command that waited unwritten while the client reconnects) say why: an
 * ack's and a destroy's rejection name the timeout. Outside review M: that
 * error has an empty message, and `toPulseError` used the message alone
 * ("ack events of sink k on stream s: " and nothing after it); adds already
 * named the class (add.ts).
 */
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { PulseError, Stream } from '../packages/pulse-streaming/src/index.js';
import { take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('node-redis command timeout errors', () => {
  it('ack and destroy rejected by a command timeout say why', async () => {
    const srv = await RedisServer.start();
    const c = createClient({ url: srv.url, commandOptions: { timeout: 300 } });
    c.on('error', () => {});
    await c.connect();
    try {
      const s = new Stream(uniqueName('tmo'), c);
      const sink = await s.newSink('k', { blockMs: 100 });
      await s.add('e', 'x');
      const [ev] = await take(sink.subscribe(), 1);
      await sink.close();
      await srv.kill();
      // The client has seen the drop (else a race of its own: nodeRedisUnwrittenTimeout.test.ts).
      await waitFor(() => !c.isReady, { what: 'client not ready' });
      for (const call of [() => (ev as NonNullable<typeof ev>).ack(), () => s.destroy()]) {
        const err = (await within(call(), 8000, 'call').then(
          () => undefined,
          (e: unknown) => e,
        )) as PulseError;
        expect(err).toBeInstanceOf(PulseError);
        expect(err.cause?.constructor.name).toBe('TimeoutError');
        // Before the fix: "ack events of sink k on stream <s>: " and nothing after it.
        expect(JSON.stringify(err.message)).toMatch(/timeout|timed out/i);
      }
    } finally {
      c.destroy();
      await srv.stop();
    }
  });
});
