/**
 * Outside review AA (defect 4; line numbers as of commit 1b263da). A noAck sink taking over a gone instance's pending events
 * while it also reads new ones, no fault at all: claims size their take by
 * the room left under bufferSize + maxPolled without the read loop's first
 * read out (claimRoom counts only reads sent ahead), and since fbc960a a
 * claim waiting for room goes at the very moment a buffer drains below
 * full, which is also when that read goes out. Both land: what passes the
 * bound is dropped by the fanout, and for a noAck sink (its fanout has an
 * onDropped since 13ca417) dropped means lost (acked as read or as
 * claimed): counted in counters.lost, never handed out.
 *
 * Failed before the fix: 5 of 5 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: a noAck sink's buffers keep what passes the bound rather than dropping it (Fanout `keepOverLimit`): it was acked as read, and dropped it was counted lost.
 */
import { describe, expect, it } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 1000;
const ORPHANS = 1000;
const UNREAD = 1000;

describe.each(CLIENT_KINDS)('noAck sink: claims and reads at once (%s)', (kind) => {
  it('no event is lost without a fault', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('claimread-nabound'), c.redis, { logger: logger as Logger, maxLen: 0 });
    for (let i = 0; i < ORPHANS + UNREAD; i += 500)
      await Promise.all(Array.from({ length: 500 }, (_, j) => s.add('e', `p${i + j}`)));
    // A gone instance read the first ORPHANS (pending, idle); the rest is unread.
    await c.cmd('XGROUP', 'CREATE', s.key, 'g', '0');
    if (ORPHANS > 0) {
      await c.cmd('XREADGROUP', 'GROUP', 'g', 'dead', 'COUNT', ORPHANS, 'STREAMS', s.key, '>');
      const pending = (await c.cmd('XPENDING', s.key, 'g', '-', '+', ORPHANS)) as unknown[][];
      await c.cmd('XCLAIM', s.key, 'g', 'dead', 0, ...pending.map((p) => String(p[0])), 'IDLE', 60_000, 'JUSTID');
    }
    const sink = await s.newSink('g', { noAck: true, ackGracePeriodMs: GRACE, blockMs: 100, bufferSize: 10, maxPolled: 10 });
    const got: SinkEvent[] = [];
    const done = (async () => {
      for await (const ev of sink.subscribe()) {
        got.push(ev);
        // A handler of about a millisecond.
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    try {
      await waitFor(() => got.length + sink.counters.lost >= ORPHANS + UNREAD, {
        timeout: 60_000,
        what: 'every event delivered or counted lost',
      });
      const said = lines.filter((l) => l.level === 'warn').map((l) => l.msg);
      expect({ delivered: got.length, lost: sink.counters.lost }, JSON.stringify([...new Set(said)])).toEqual({
        delivered: ORPHANS + UNREAD,
        lost: 0,
      });
    } finally {
      await within(sink.close(), 10_000, 'close');
      await done.catch(() => {});
    }
  }, 90_000);
});
