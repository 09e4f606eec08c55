/**
 * Outside review T (the session's own changes): on a stream without a time to live, a sink's
 * delays set now never expires, and an entry nothing removes stays for good.
 *
 * Mechanism: 26c0ab2 made `EXPIRE_DELAYS` (src/internal/scripts.ts:66-73)
 * PERSIST the delays set whenever the stream has no TTL (PTTL -1), where it
 * used to PEXPIREAT the set's last due time. Due entries are removed only by
 * the `claim` script (ZREMRANGEBYSCORE, scripts.ts:141), which runs only when
 * a sweep finds idle pending events on the stream. An entry whose event is
 * then acked is not removed by the ack (a plain XACK, acks.ts:130), so on a
 * healthy stream (no idle events, no claim) it is never removed. One such
 * entry: the in-progress touch of `process()` (`touch` with keepGoneMs,
 * scripts.ts:270-277) or of `inProgress()` (`keepOwned`, ownership.ts:40-44)
 * of an event deleted while its handler runs (`stream.remove()`, a MAXLEN
 * trim of a busy stream while a slow handler runs) adds it for a grace
 * period; the handler then acks. Before, the set expired a grace period
 * later; now the key is persistent and each such event adds a member that
 * no one removes: a key per (stream, sink) that grows without bound.
 * (The README says "Claims remove due entries, Redis deletes the set once
 * empty": no claim runs here.)
 *
 * What the user sees: `{stream}:sink:<name>:delays` keys with no TTL,
 * growing, on streams without a TTL, memory never given back.
 */
import { describe, expect, it } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 600;

describe.concurrent.each(CLIENT_KINDS)('delays set of a stream without a TTL (%s)', (kind) => {
  it('the hold of an event deleted while its handler ran does not stay in the delays set for good after the ack', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger } = recordingLogger();
    const s = new Stream(uniqueName('revTdelays'), c.redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const delays = `${s.key.startsWith('{') ? s.key : `{${s.key}}`}:sink:g:delays`;
    let inHandler: SinkEvent | undefined;
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const handledDone: string[] = [];
    const run = sink.process(async (ev) => {
      inHandler = ev;
      await released;
      handledDone.push(ev.id);
    });
    run.catch(() => {});
    const id = await s.add('e', 'slow');
    await waitFor(() => inHandler, { what: 'the handler running' });
    // Deleted while its handler works on it (as a MAXLEN trim of a busy stream does).
    await s.remove(id);
    // The in-progress touch (every grace period / 3) keeps it in the delays set, so no claim reports it lost.
    await waitFor(async () => (await c.cmd('ZSCORE', delays, id)) !== null, {
      timeout: 5000,
      what: 'the hold in the delays set',
    });
    release();
    await waitFor(() => handledDone.includes(id), { what: 'the handler done (acked)' });
    // Nothing is pending, nothing delayed: the set goes once its last due time passed (before the
    // change it expired at its last due time, a grace period after the last touch).
    await waitFor(async () => Number(await c.cmd('EXISTS', delays)) === 0, {
      timeout: 6 * GRACE,
      what: 'the delays set gone',
    }).catch(async (err: unknown) => {
      const pttl = await c.cmd('PTTL', delays);
      const members = await c.cmd('ZRANGE', delays, 0, -1, 'WITHSCORES');
      throw new Error(`${(err as Error).message}: PTTL ${String(pttl)}, members ${JSON.stringify(members)}`);
    });
    expect(Number(await c.cmd('XLEN', s.key))).toBe(0);
  }, 30_000);

  it('the same with inProgress() in a for await loop', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const s = new Stream(uniqueName('revTdelays'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'close'));
    const delays = `{${s.key}}:sink:g:delays`;
    const id = await s.add('e', 'slow');
    const next = await sink.subscribe().next();
    const ev = next.value as SinkEvent;
    await s.remove(id);
    await ev.inProgress(); // kept in the delays set: gone from the stream, still handled here
    expect(await c.cmd('ZSCORE', delays, id)).not.toBeNull();
    await ev.ack();
    await waitFor(async () => Number(await c.cmd('EXISTS', delays)) === 0, { timeout: 6 * GRACE, what: 'the delays set gone' });
  }, 30_000);
});
