/**
 * A stream that expires (TTL) under several instances of one sink, with both
 * clients: one of them reports what went with it, also when the instance
 * holding the stream's lease closed, crashed or reads nothing, and only one
 * when it is alive (see internal/holderWatch.ts).
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type Sink, type SinkOptions, Stream } from '../packages/pulse-streaming/src/index.js';
import { EARLY_CHECK_MS } from '../packages/pulse-streaming/src/internal/expiryLoss.js';
import { sinkKeys, sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

/**
 * The stream's time to live when two instances handle 40 events before it
 * expires: with 1500 ms a loaded CI run had not handled them all when it
 * expired (they were then lost with it, and the wait for them ran out).
 */
const TWO_TTL_MS = 3000;

describe.concurrent.each(CLIENT_KINDS)('an expiry under several instances (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /**
   * A stream with a time to live and a logger, and instances of a sink of
   * its own name on it (the liveness records of no other test's sinks mix in).
   */
  function expiring(ctx: TestContext, ttlMs: number) {
    const f = sinkFixture(ctx, c, 'exp', {});
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('exp'), c.redis, { maxLen: 0, ttlMs, logger });
    ctx.onTestFinished(() => s.destroy());
    const sink = uniqueName('exp');
    const keys = sinkKeys(s.name, sink);
    return {
      s,
      sink,
      keys,
      start: (options: SinkOptions) => f.sink(s, options, sink),
      /** Until `x` holds the stream's lease. */
      holds: (x: Sink | string) =>
        waitFor(async () => String(await c.cmd('GET', keys.lease)) === (typeof x === 'string' ? x : x.consumerName), {
          what: 'the lease held',
        }),
      /** Until a sweep of `x` ran: from then on its checks know who holds the lease. */
      swept: (x: Sink) =>
        waitFor(async () => (await c.cmd('ZSCORE', keys.consumers, x.consumerName)) !== null, { what: 'a sweep' }),
      /** Until `x` (any instance when undefined) found the stream gone. */
      gone: (x?: Sink) =>
        waitFor(
          () =>
            lines.some(
              (l) =>
                l.msg?.startsWith('stream key is gone') &&
                (x === undefined || (l.obj as { consumer?: string }).consumer === x.consumerName),
            ),
          { timeout: 10_000, what: 'the stream found gone' },
        ),
    };
  }

  /**
   * Two instances of the sink on `e`'s stream, each reading its share of 40
   * events at once, then taking 20 ms per event (the acks come long after the
   * reads): resolves once all 40 are handled, or (`complete` false) once the stream expired first
   * (a loaded run: 40 x 20 ms timers took longer than the stream's time to live).
   */
  async function handledByTwo(e: ReturnType<typeof expiring>): Promise<{ instances: Sink[]; complete: boolean }> {
    const options = { ackGracePeriodMs: 1000, bufferSize: 20, maxPolled: 20 };
    const instances = [await e.start(options), await e.start(options)];
    const handled = new Set<string>();
    for (const x of instances)
      void (async () => {
        for await (const ev of x) {
          await new Promise((r) => setTimeout(r, 20));
          await ev.ack();
          handled.add(ev.id);
        }
      })();
    await Promise.all(Array.from({ length: 40 }, (_, i) => e.s.add('e', `${i}`)));
    // 15 s: 5 was too short once in a loaded CI run (node-redis).
    let expired = false;
    await waitFor(
      async () => {
        if (handled.size === 40) return true;
        expired = Number(await c.cmd('EXISTS', e.s.key)) === 0;
        return expired;
      },
      { timeout: 15_000, what: 'all 40 handled' },
    );
    return { instances, complete: handled.size === 40 && !expired };
  }

  /**
   * `handledByTwo` on a stream of TWO_TTL_MS, done before the check ahead of
   * the expiry (`EARLY_CHECK_MS`), on a new stream when a loaded run took
   * longer (at most three): the cases test the checks before an expiry, whose
   * premise is a stream quiet by then. Once, the 40 were acked after that
   * check and 20 were counted lost, as the cases' own failure would.
   */
  async function handledInTime(ctx: TestContext) {
    for (let attempt = 1; ; attempt++) {
      const e = expiring(ctx, TWO_TTL_MS);
      const { instances, complete } = await handledByTwo(e);
      if (!complete && attempt === 3) throw new Error('the stream expired before its 40 events were handled, three times');
      if (complete && (Number(await c.cmd('PTTL', e.s.key)) > EARLY_CHECK_MS + 250 || attempt === 3)) return { e, instances };
      await Promise.all(instances.map((x) => x.close()));
    }
  }

  /** Until `x` reported at least `n` lost. */
  const reported = (x: Sink, n: number) =>
    waitFor(() => x.counters.lost >= n, { timeout: 8000, what: `${n} reported lost` }).catch((e: Error) => {
      throw new Error(`${e.message}: ${x.counters.lost} reported`);
    });

  it('after the lease holder left: another instance reports what went with it', async (ctx) => {
    // Only the instance holding the lease at its last check reported an expiry; the others, relying on
    // it, reported none. After the holder closed (or crashed), nobody reported: a silent loss.
    const e = expiring(ctx, 5000);
    // It reads nothing (no subscriber), so that the second instance reads after its sweep.
    const a = await e.start({ ackGracePeriodMs: 1000, bufferSize: 1, maxPolled: 1 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => e.s.add('e', `${i}`)));
    await e.holds(a);
    const b = await e.start({ ackGracePeriodMs: 1000, bufferSize: 2, maxPolled: 2 });
    const sub = b.subscribe();
    await waitFor(() => sub.size === 2, { what: '2 buffered by the second instance' });
    // Once b's sweep has said that a holds the lease, b takes 2: its next read's check is made
    // knowing it does not hold it, and b relies on a to report an expiry.
    await e.swept(b);
    for (const ev of await take(sub, 2)) await ev.ack();
    await waitFor(() => b.counters.delivered >= 4, { what: 'more read by the second instance' });
    await a.close();
    await e.gone(b);
    // 8 went with the stream: an estimate, which may count the 2 handled if their acks raced its check.
    await reported(b, 8);
    expect(b.counters.lost).toBeLessThanOrEqual(10);
  });

  it('while its crashed lease holder still counts as live: another instance reports it', async (ctx) => {
    // What a crashed instance leaves behind, written here: the lease, fresh liveness records, events
    // pending with it. It counts as live for 2 x grace, and the other instance, finding the stream
    // gone in that window, left the report to it: reported by nobody.
    // Expires before the crashed one's events are idle for a grace period: no claim moves them first.
    const e = expiring(ctx, 1500);
    await c.cmd('XGROUP', 'CREATE', e.s.key, e.sink, '$', 'MKSTREAM');
    await c.cmd('SET', e.keys.lease, 'ghost');
    const [sec, usec] = (await c.cmd('TIME')) as [string, string];
    const now = String(Number(sec) * 1000 + Math.floor(Number(usec) / 1000));
    await c.cmd('ZADD', sinkWideKeys(e.sink).instances, now, 'ghost');
    await c.cmd('ZADD', e.keys.consumers, now, 'ghost');
    const b = await e.start({ ackGracePeriodMs: 3000 });
    await e.swept(b);
    await Promise.all(Array.from({ length: 10 }, (_, i) => e.s.add('e', `${i}`)));
    await c.cmd('XREADGROUP', 'GROUP', e.sink, 'ghost', 'COUNT', '10', 'STREAMS', e.s.key, '>');
    b.subscribe();
    await e.gone(b);
    // b checked the stream when it first read it: 10 pending then, all with the crashed one.
    await reported(b, 10);
    expect(b.counters.lost).toBe(10);
    expect(b.counters.redelivered).toBe(0);
  });

  it('under two live instances: the lease holder reports it, the other not, even as it closes', async (ctx) => {
    // The other instance waits for the holder's mark. Closing, it reported everything it waited for in
    // the first version of the wait: a rolling restart said the loss twice.
    const e = expiring(ctx, 2000);
    const options = { ackGracePeriodMs: 4000, bufferSize: 2, maxPolled: 2 };
    const a = await e.start(options);
    const subA = a.subscribe();
    await e.s.add('e', 'first');
    await e.holds(a);
    const b = await e.start(options);
    await e.swept(b);
    const subB = b.subscribe();
    await Promise.all(Array.from({ length: 10 }, (_, i) => e.s.add('e', `${i}`)));
    await waitFor(() => subA.size > 0 && subB.size > 0, { what: 'both to buffer events' });
    await e.gone(a);
    await e.gone(b);
    await waitFor(async () => (await c.cmd('ZSCORE', sinkWideKeys(e.sink).reported, e.s.key)) !== null, {
      what: 'the holder to mark it reported',
    });
    await b.close();
    expect(b.counters.lost).toBe(0);
    expect(a.counters.lost).toBeGreaterThanOrEqual(2);
    expect(a.counters.lost).toBeLessThanOrEqual(11);
  });

  it('while its lease holder reads nothing (no subscriber): another instance reports it', async (ctx) => {
    // The holder, live but not reading, never finds the stream gone: the other one, which left the loss
    // to it while it was live, reported nothing (0 before).
    const e = expiring(ctx, 1500);
    const a = await e.start({ ackGracePeriodMs: 1000 });
    await e.s.add('e', 'first');
    await e.holds(a);
    const b = await e.start({ ackGracePeriodMs: 1000, bufferSize: 2, maxPolled: 2 });
    await e.swept(b);
    await Promise.all(Array.from({ length: 10 }, (_, i) => e.s.add('e', `${i}`)));
    const sub = b.subscribe();
    await waitFor(() => sub.size === 2, { what: '2 buffered by b' });
    await e.gone(b);
    // b's estimate: what its check saw unread and pending (all 11, or the 2 it buffered at least).
    await reported(b, 2);
    expect(b.counters.lost).toBeLessThanOrEqual(11);
    expect(a.counters.lost).toBe(0);
  });

  it('a stream handled to the end by two instances, quiet until it expires: nothing is reported lost', async (ctx) => {
    // The holder's estimate came from the check of its last read, before the other instance's acks:
    // their events counted as lost (20 of 40 here before). A check just before the expiry sees them acked.
    const { e, instances } = await handledInTime(ctx);
    for (const x of instances) await e.gone(x);
    await waitFor(async () => (await c.cmd('ZSCORE', sinkWideKeys(e.sink).reported, e.s.key)) !== null, {
      what: 'the holder to report it',
    });
    expect(instances.map((x) => x.counters.lost)).toEqual([0, 0]);
  });

  it('the same, with the process busy across the moment of the last check before the expiry: nothing is reported lost', async (ctx) => {
    // Failed now and then in loaded full runs: the one check FINAL_CHECK_MS (50 ms) before the expiry
    // ran late, after it, and the estimate of the last read's check counted the other instance's
    // acked events as lost (20 of 40). Here the event loop is held for 300 ms from 150 ms before the
    // expiry: an earlier check, when the stream had been quiet a while, gives the estimate.
    const { e, instances } = await handledInTime(ctx);
    await waitFor(async () => Number(await c.cmd('PTTL', e.s.key)) <= 150, { interval: 5, what: '150 ms before the expiry' });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // busy: no timer, no reply handled
    for (const x of instances) await e.gone(x);
    await waitFor(async () => (await c.cmd('ZSCORE', sinkWideKeys(e.sink).reported, e.s.key)) !== null, {
      what: 'the holder to report it',
    });
    expect(instances.map((x) => x.counters.lost)).toEqual([0, 0]);
  });
});
