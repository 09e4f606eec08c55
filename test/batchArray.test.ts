/**
 * A batch handler may consume its array (the `while (events.length) events.shift()` idiom,
 * or `events.splice(0)`): processBatch() keeps its own list of the batch, so the events are
 * still acked on success and nacked with the retry delay on a throw (not left pending,
 * kept in progress, and redelivered after the grace period).
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { CLIENT_KINDS, connect, type TestClient, waitFor, within } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

describe.concurrent.each(CLIENT_KINDS)('processBatch array ownership (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const pending = async (key: string): Promise<number> => Number(((await c.cmd('XPENDING', key, 'sink')) as unknown[])[0]);

  it('a handler that drains its batch with shift() succeeds: every event is acked once, none redelivered', async (ctx: TestContext) => {
    const f = sinkFixture(ctx, c, 'batch-arr', { ackGracePeriodMs: 1000 });
    const s = f.stream();
    for (let i = 0; i < 5; i++) await s.add('e', `p${i}`);
    const sink = await f.sink(s);
    const handled: Array<[string, number]> = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        for (let ev = events.shift(); ev !== undefined; ev = events.shift()) handled.push([ev.text(), ev.deliveryCount]);
      },
      { maxWaitMs: 50, signal: ac.signal },
    );
    await waitFor(() => handled.length >= 5, { timeout: 10_000, what: 'five handled' });
    // The handler returned without throwing: all five are acked, though it emptied its array.
    await waitFor(async () => (await pending(s.key)) === 0, { timeout: 5000, what: 'all acked after a successful batch' });
    ac.abort();
    await within(run, 5000, 'processBatch');
    expect(sink.counters.acked).toBe(5);
    expect(handled.filter(([, n]) => n > 1)).toEqual([]);
  });

  it('a handler that drains its batch with splice(0) and throws: the events are retried after the retry delay', async (ctx: TestContext) => {
    const f = sinkFixture(ctx, c, 'batch-arr', { ackGracePeriodMs: 1000 });
    const s = f.stream();
    for (let i = 0; i < 3; i++) await s.add('e', `p${i}`);
    const sink = await f.sink(s);
    const handled: Array<[string, number]> = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        const mine = events.splice(0);
        for (const ev of mine) handled.push([ev.text(), ev.deliveryCount]);
        if (mine.some((ev) => ev.deliveryCount === 1)) throw new Error('first try fails');
      },
      { maxWaitMs: 50, signal: ac.signal, retry: { delayMs: 200, jitter: 0 } },
    );
    await waitFor(() => handled.filter(([, n]) => n === 2).length === 3, {
      timeout: 8000,
      what: 'the three failed events redelivered after the 200 ms retry delay',
    });
    ac.abort();
    await within(run, 5000, 'processBatch');
  });
});
