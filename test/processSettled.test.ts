/**
 * `process()` leaves alone an event its handler settled itself, as
 * `processBatch()` does: a `nack({ delayMs })` in the handler is honoured
 * (before, process() acked the event right after, so it was never
 * redelivered, silently), and an `ack()` in the handler is not sent twice
 * (before, the second ack counted a stale ack and warned of a double handling).
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const WAIT = { timeout: 8000 };

describe.concurrent.each(CLIENT_KINDS)('process() and a handler that settles its event (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'settled', { ackGracePeriodMs: 5000 });

  it('a nack({ delayMs }) in the handler redelivers the event after that delay', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const calls: Array<{ count: number; at: number }> = [];
    const stop = new AbortController();
    const run = sink.process(
      async (ev) => {
        calls.push({ count: ev.deliveryCount, at: Date.now() });
        if (ev.deliveryCount === 1) await ev.nack({ delayMs: 300 });
      },
      { signal: stop.signal },
    );
    await s.add('e', 'x');
    await waitFor(() => calls.length === 2, { ...WAIT, what: 'redelivered after the nack' });
    expect(calls.map((x) => x.count)).toEqual([1, 2]);
    expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(290);
    await waitFor(() => sink.counters.acked === 1, { ...WAIT, what: 'acked once, after the redelivery' });
    stop.abort();
    await run;
    expect(sink.counters.staleAcks).toBe(0);
  });

  it('an ack() in the handler is not sent again', async (ctx) => {
    const { logger, lines } = recordingLogger();
    const f = fixture(ctx);
    const s = f.stream({ maxLen: 0, logger });
    const sink = await f.sink(s);
    const stop = new AbortController();
    let handled = 0;
    const run = sink.process(
      async (ev) => {
        await ev.ack();
        handled++;
      },
      { signal: stop.signal },
    );
    for (let i = 0; i < 5; i++) await s.add('e', `${i}`);
    await waitFor(() => handled === 5 && sink.counters.acked === 5, { ...WAIT, what: 'handled and acked' });
    stop.abort();
    await run;
    expect(sink.counters.staleAcks).toBe(0);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('a handler that nacks with a delay and then throws: its own nack stands, not a second one', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const calls: number[] = [];
    const stop = new AbortController();
    const run = sink.process(
      async (ev) => {
        calls.push(ev.deliveryCount);
        if (ev.deliveryCount === 1) {
          await ev.nack({ delayMs: 200 });
          throw new Error('after its own nack');
        }
      },
      // The retry backoff would wait a minute: the handler's own 200 ms nack must be the one that counts.
      { signal: stop.signal, retry: { delayMs: 60_000 } },
    );
    await s.add('e', 'x');
    await waitFor(() => calls.length === 2, { ...WAIT, what: 'redelivered after the handler nack' });
    expect(calls).toEqual([1, 2]);
    stop.abort();
    await run;
  });

  it("a handler's own nack is not undone by an in-progress touch that was still on its way", async (ctx) => {
    const grace = 900;
    const f = sinkFixture(ctx, c, 'settled', { ackGracePeriodMs: grace });
    const s = f.stream();
    const sink = await f.sink(s);
    const calls: number[] = [];
    let nackedAt = 0;
    const stop = new AbortController();
    const run = sink.process(
      async (ev) => {
        calls.push(Date.now());
        if (ev.deliveryCount > 1) return;
        // Hold the user's connection (where in-progress touches go) for 700 ms; a touch (every grace / 3)
        // queues behind it, and this nack (on the sink's own connection) would land before it.
        void c.cmd('BLPOP', `${s.key}:nothing`, '0.7').catch(() => {});
        await new Promise((r) => setTimeout(r, 2 * (grace / 3) + 50));
        nackedAt = Date.now();
        await ev.nack({ delayMs: 50 });
      },
      { signal: stop.signal },
    );
    await s.add('e', 'x');
    await waitFor(() => calls.length === 2, { ...WAIT, what: 'redelivered after the nack' });
    // After the touch (the BLPOP ends ~0.7 s after it began) and 50 ms; undone, it would wait a grace period more.
    expect((calls[1] ?? 0) - nackedAt).toBeLessThan(grace / 2 + 400);
    stop.abort();
    await run;
  });
});
