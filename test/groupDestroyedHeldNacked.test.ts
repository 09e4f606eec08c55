/**
 * A group destroyed and the stream trimmed while a handler holds events: nacked after the group is
 * made again, they are counted lost (they were dropped without a word: review of the NOGROUP
 * accounting, session 28).
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

describe.concurrent.each(CLIENT_KINDS)('group destroyed and trimmed while a handler holds events (%s)', (kind) => {
  for (const checked of [true, false]) {
    it(`nacked after the group is made again: counted lost (${checked ? 'read before the last check' : 'read after it'})`, async (ctx) => {
      const server = await RedisServer.start({ args: AOF });
      ctx.onTestFinished(() => server.stop());
      const c = await connect(kind, server.url);
      ctx.onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('nad'), c.redis, { logger, maxLen: 10 });
      const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
      ctx.onTestFinished(() => sink.close());
      const sub = sink.subscribe();
      const held = await Promise.all(Array.from({ length: 5 }, (_, i) => s.add('e', `held${i}`)));
      const evs = (await take(sub, 5)) as SinkEvent[];
      const last = held[held.length - 1] as string;
      if (checked)
        await waitFor(async () => String(await c.cmd('HGET', `{${s.key}}:positions`, 'g')).startsWith(`${last} `), {
          what: 'a trim check after the reads',
        });
      await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
      const more = await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `m${i}`)));
      const got = new Set<string>();
      void (async () => {
        for await (const ev of sub) {
          got.add(ev.id);
          await ev.ack();
        }
      })();
      const xlen = Number(await c.cmd('XLEN', s.key));
      const delivered = (): number => more.filter((id) => got.has(id)).length;
      await waitFor(() => delivered() === xlen, { timeout: 8000, what: 'what is left delivered' });
      // The held events are out of the stream now; their handler fails.
      expect(Number(await c.cmd('XLEN', s.key))).toBe(xlen);
      for (const ev of evs) await ev.nack();
      await waitFor(() => delivered() + sink.counters.lost >= 305, {
        timeout: 8000,
        what: 'every event delivered or counted lost',
      }).catch((err: unknown) => {
        const log = lines
          .filter((l) => l.level === 'warn')
          .map((l) => `${l.msg} ${JSON.stringify(l.obj)}`)
          .join(' | ');
        throw new Error(
          `${(err as Error).message}: delivered ${delivered()}, lost ${sink.counters.lost} (want ${305 - xlen}); warn: ${log}`,
        );
      });
      expect(sink.counters.lost).toBe(305 - xlen);
    }, 30_000);
  }
});
