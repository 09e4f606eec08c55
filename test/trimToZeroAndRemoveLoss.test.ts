/**
 * Outside review AK (defects 1 and 3; line numbers as of commit 41e36ff): retention and loss accounting.
 *
 * 1. A stream trimmed to 0 entries (XTRIM MAXLEN 0, an operator's purge)
 *    past events a sink had not read: `checkTrimmed` only counts a jump when
 *    the stream's first entry is after the group's last-delivered ID
 *    (`behind`), and there is no first entry, so nothing is ever counted
 *    until a producer adds again. The same trim leaving one entry is counted.
 * 2. `stream.remove()` of events a sink had not read, then `stream.destroy()`
 *    before the sink's next trim check: the removed count lives in the
 *    removed-counts hash that destroy deletes, and the obituary only counts
 *    unread + pending, so the removed events are never reported.
 * Failed before the fix: 4 of 4 (both clients, both cases).
 * Fixed: the trim check looks at an empty stream as at a read to verify (what was added past the
 * group's position went unread); `destroyStream` adds the sink's removed count to its obituary.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

async function setup(ctx: TestContext, kind: ClientKind) {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName('revAK'), c.redis, { logger: logger as Logger, maxLen: 0 });
  return { c, s, lines };
}

const describeLines = (lines: Array<{ level: string; msg: unknown }>) =>
  lines
    .filter((l) => l.level !== 'debug')
    .map((l) => `${l.level}: ${String(l.msg)}`)
    .join(' | ');

describe.concurrent.each(CLIENT_KINDS)('revAK: losses the sink never counts (%s)', (kind) => {
  // XTRIM MAXLEN 1 is counted (9 lost): checked, holds.
  for (const left of [0]) {
    it(`events trimmed (XTRIM MAXLEN ${left}) before the sink read them are counted lost`, async (ctx) => {
      const { c, s, lines } = await setup(ctx, kind);
      const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
      ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
      // No subscriber yet: the sink does not read.
      for (let i = 0; i < 10; i++) await s.add('e', `a${i}`);
      await c.cmd('XTRIM', s.key, 'MAXLEN', String(left));
      const sub = sink.subscribe();
      const got: SinkEvent[] = [];
      void (async () => {
        for await (const ev of sub) {
          got.push(ev as SinkEvent);
          await ev.ack();
        }
      })();
      await waitFor(() => sink.counters.lost + got.length === 10, {
        timeout: 8000,
        what: 'all 10 delivered or counted lost',
      }).catch((err: unknown) => {
        throw new Error(
          `${(err as Error).message}: delivered ${got.length}, counters ${JSON.stringify(sink.counters)}; log: ${describeLines(lines)}`,
        );
      });
      expect(sink.counters.lost).toBe(10 - left);
    }, 20_000);
  }

  it('events removed with stream.remove() before the sink read them, then the stream destroyed: counted lost', async (ctx) => {
    const { s, lines } = await setup(ctx, kind);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000, bufferSize: 2, maxPolled: 2 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const sub = sink.subscribe();
    const it0 = sub[Symbol.asyncIterator]();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await s.add('e', `b${i}`));
    // The subscriber takes one event and acks it; the rest backs up (2 buffered, 7 unread).
    await ((await within(it0.next(), 10_000, 'b0')).value as SinkEvent).ack();
    await waitFor(() => sub.size >= 2, { what: 'buffer full' });
    // Three events the sink has not read are removed, then the stream is destroyed.
    await s.remove(ids[7] as string, ids[8] as string, ids[9] as string);
    await s.destroy();
    // Every one of the 9 events not handled went: 6 by destroy (2 buffered, 4 unread), 3 by remove.
    await waitFor(() => sink.counters.lost === 9, { timeout: 8000, what: 'b1..b9 counted lost' }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${describeLines(lines)}`);
    });
  }, 20_000);
});
