/**
 * Events a subscriber left unseen (a `break` out of its loop) are given back
 * while Redis is down; Redis restarts without persistence (empty): it no
 * longer has them, nothing can redeliver them, and they are counted lost.
 * They were not when read after the group's last check: the give-back,
 * retried until Redis answered, met NOGROUP and ran the stream's check,
 * which counts what is still buffered and the group's estimate at that
 * check (none of them), then logged "events never handed out went with
 * their group" at debug level: a silent loss. Read before it, they are in
 * the estimate and must not be counted twice. Both clients.
 */
import { describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.concurrent.each(CLIENT_KINDS)('events given back as Redis restarts empty (%s)', (kind) => {
  it('are counted lost', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('giveEmpty'), c.redis, { logger: logger as Logger, maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    for (let i = 0; i < 5; i++) await s.add('e', `e${i}`);
    const sub = sink.subscribe();
    const first = await sub.next();
    if (first.done) throw new Error('no event');
    await first.value.ack();
    // The other four are read with it and wait in the subscription's buffer.
    await waitFor(() => sub.size === 4, { what: 'four events buffered' });
    await server.kill();
    await sub.return(); // given back, retried while Redis is down
    await server.restart(); // empty: no stream, no group, none of the five
    // Once the give-back met the group gone and the read path found the key gone: each of the four
    // counted once, by the estimate of the group at its last check or, read after it, by the give-back.
    const said = (re: RegExp) => lines.some((l) => re.test(String(l.msg)));
    await waitFor(() => said(/events never handed out went with their group/) && said(/stream key is gone/), {
      timeout: 10_000,
      what: 'the give-back and the read path done',
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: log: ${lines.map((l) => String(l.msg)).join(' | ')}`);
    });
    expect(sink.counters.lost, lines.map((l) => String(l.msg)).join(' | ')).toBe(4);
  }, 30_000);
});
