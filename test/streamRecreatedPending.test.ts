/**
 * A stream key deleted by another program (DEL, Go's Destroy) and created again by a producer before
 * the sink notices: the events the sink held pending in the old key (nacked with a retry delay by
 * processBatch) can never be redelivered, and must be reported lost ("its stream deleted"). Found by
 * a review of restarts and deletes (session 28): they went without a word, lost 0.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

describe.concurrent.each(CLIENT_KINDS)('stream key deleted and created again under pending retries (%s)', (kind) => {
  for (const checkedFirst of [false, true]) {
    it(`the old key's pending events are counted lost (${checkedFirst ? 'after a trim check, the new key busier' : 'right after the read'})`, async (ctx) => {
      const server = await RedisServer.start({ args: AOF });
      ctx.onTestFinished(() => server.stop());
      const c = await connect(kind, server.url);
      ctx.onTestFinished(() => c.close());
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('srp'), c.redis, { logger, maxLen: 0 });
      const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
      const okd = new Set<string>();
      const seen = new Set<string>();
      const run = sink.processBatch(
        async (events: SinkEvent[]) => {
          for (const ev of events) seen.add(ev.id);
          if (events.some((ev) => ev.text().startsWith('x'))) throw new Error('old ones fail');
          for (const ev of events) okd.add(ev.id);
        },
        { maxBatch: 20, maxWaitMs: 10, retry: { delayMs: 5000, jitter: 0 } },
      );
      run.catch(() => {});
      const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => s.add('e', `x${i}`)));
      await waitFor(() => ids.every((id) => seen.has(id)), { timeout: 10_000, what: 'all seen once' });
      await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 100, { what: 'pending' });
      const last = ids[ids.length - 1] as string;
      if (checkedFirst)
        // The sink's trim check recorded the group's position past the 100 events.
        await waitFor(async () => String(await c.cmd('HGET', `{${s.key}}:positions`, 'g')).startsWith(`${last} `), {
          what: 'a trim check after the reads',
        });
      await c.cmd('DEL', s.key);
      const more = await Promise.all(Array.from({ length: checkedFirst ? 300 : 20 }, (_, i) => s.add('e', `y${i}`)));
      await waitFor(() => more.every((id) => okd.has(id)), { timeout: 10_000, what: 'new events handled' });
      await waitFor(() => sink.counters.lost >= 100, {
        timeout: 8000,
        what: 'the 100 pending events of the old key reported lost',
      }).catch((e: unknown) => {
        const log = lines
          .filter((l) => l.level === 'warn' && !/batch handler failed/.test(String(l.msg)))
          .map((l) => String(l.msg));
        throw new Error(`${(e as Error).message}: lost ${sink.counters.lost}; warn: ${log.join(' | ')}`);
      });
      await within(sink.close(), 5000, 'close');
      await within(run, 5000, 'processBatch resolves');
      expect(sink.counters.lost).toBe(100);
    }, 40_000);
  }
});
