/**
 * `sink.processBatch()` (issue 17) with both clients: batch size and wait,
 * partial settlement by the handler, a throwing handler, batches longer than
 * the grace period, concurrency, shutdown and bad options.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { InvalidArgumentError, type SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, stays, type TestClient, waitFor, within } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const WAIT = { timeout: 10_000 };

describe.concurrent.each(CLIENT_KINDS)('processBatch (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'batch');
  const pending = async (key: string): Promise<number> => Number(((await c.cmd('XPENDING', key, 'sink')) as unknown[])[0]);

  it('hands waiting events over in batches of maxBatch, in order, and acks them', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push(await s.add('e', `p${i}`));
    const sink = await f.sink(s);
    const batches: string[][] = [];
    const ac = new AbortController();
    const run = sink.processBatch((events) => void batches.push(events.map((e) => e.id)), {
      maxBatch: 10,
      maxWaitMs: 50,
      signal: ac.signal,
    });
    await waitFor(() => batches.flat().length === 25, WAIT);
    await waitFor(async () => (await pending(s.key)) === 0, WAIT);
    ac.abort();
    await within(run, 5000, 'processBatch after abort');
    expect(batches.flat()).toEqual(ids);
    expect(batches.map((b) => b.length)).toEqual([10, 10, 5]);
    expect(sink.counters.acked).toBe(25);
    expect(sink.counters.staleAcks).toBe(0);
  });

  it('waits at most maxWaitMs after the first event of a batch for more', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s);
    const wait = 800;
    const batches: Array<{ ids: string[]; at: number }> = [];
    const ac = new AbortController();
    const run = sink.processBatch((events) => void batches.push({ ids: events.map((e) => e.id), at: Date.now() }), {
      maxWaitMs: wait,
      signal: ac.signal,
    });
    const before = Date.now();
    const first = await s.add('e', 'a');
    await waitFor(() => sink.counters.delivered === 1, WAIT);
    // Read after the first was taken, it still joins its batch: the batch waited for more.
    const second = await s.add('e', 'b');
    await waitFor(() => batches.length === 1, WAIT);
    expect(batches[0]?.ids).toEqual([first, second]);
    const waited = (batches[0]?.at ?? 0) - before;
    // Timers run on libuv's loop time, cached at the start of a loop turn: on a busy loop a timer set
    // late in a turn fires a little before its delay by Date.now() (CI saw 799 for 800).
    expect(waited).toBeGreaterThanOrEqual(wait - 50);
    // And not for a full batch: about the wait (generous: the machine is shared).
    expect(waited).toBeLessThan(wait + 2000);
    // maxWaitMs 0: what is buffered goes at once.
    ac.abort();
    await run;
    const ac2 = new AbortController();
    const run2 = sink.processBatch((events) => void batches.push({ ids: events.map((e) => e.id), at: Date.now() }), {
      maxWaitMs: 0,
      signal: ac2.signal,
    });
    const t = Date.now();
    const third = await s.add('e', 'c');
    await waitFor(() => batches.length === 2, WAIT);
    expect(batches[1]?.ids).toEqual([third]);
    expect((batches[1]?.at ?? 0) - t).toBeLessThan(wait);
    ac2.abort();
    await run2;
  });

  it('partial settlement: what the handler acks or nacks itself is its own; the rest is acked on success', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await s.add('e', `p${i}`));
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const calls: Array<Array<{ id: string; count: number }>> = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        calls.push(events.map((e) => ({ id: e.id, count: e.deliveryCount })));
        if (calls.length === 1) {
          await events[0]?.ack();
          await sink.ack(...events.slice(1, 3));
          // Given back: redelivered at once, in a later batch.
          await events[3]?.nack({ delayMs: 0 });
        }
      },
      { signal: ac.signal },
    );
    await waitFor(() => calls.flat().length === 7, WAIT);
    await waitFor(async () => (await pending(s.key)) === 0, WAIT);
    ac.abort();
    await run;
    expect(calls[0]?.map((e) => e.id)).toEqual(ids);
    expect(calls.slice(1).flat()).toEqual([{ id: ids[3], count: 2 }]);
    // Each event acked once: none by both the handler and processBatch.
    expect(sink.counters.staleAcks).toBe(0);
    expect(sink.counters.acked).toBe(6);
  });

  it('a throwing handler: the events it did not settle come back (nacked with the retry delay), those it acked do not', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await s.add('e', `p${i}`));
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    const calls: Array<Array<{ id: string; count: number }>> = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        calls.push(events.map((e) => ({ id: e.id, count: e.deliveryCount })));
        if (calls.length === 1) {
          await events[0]?.ack();
          throw new Error('boom');
        }
      },
      { signal: ac.signal, retry: { delayMs: 100, jitter: 0 } },
    );
    await waitFor(() => calls.length === 2, WAIT);
    await waitFor(async () => (await pending(s.key)) === 0, WAIT);
    await stays(() => calls.length === 2, 300, 'no further batch');
    ac.abort();
    await run;
    expect(calls[1]).toEqual(ids.slice(1).map((id) => ({ id, count: 2 })));
    expect(sink.counters.staleAcks).toBe(0);
  });

  it('a batch slower than the grace period keeps its events, and those waiting behind it, with this consumer', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    // Long enough for a loaded machine (the suite runs files in parallel on two cores) to keep up its holds.
    const grace = 600;
    const sink = await f.sink(s, { ackGracePeriodMs: grace });
    const calls: Array<Array<{ id: string; count: number }>> = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        calls.push(events.map((e) => ({ id: e.id, count: e.deliveryCount })));
        // Four grace periods: several reclaim rounds.
        if (calls.length === 1) await new Promise((r) => setTimeout(r, 4 * grace));
      },
      { maxBatch: 3, maxWaitMs: 0, signal: ac.signal },
    );
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await s.add('e', `p${i}`));
    await waitFor(() => calls.length === 1, WAIT);
    // These wait in the buffer behind the slow batch.
    for (let i = 3; i < 8; i++) ids.push(await s.add('e', `p${i}`));
    await waitFor(() => calls.flat().length >= 8, WAIT);
    await waitFor(async () => (await pending(s.key)) === 0, WAIT);
    await stays(() => calls.flat().length === 8, 3 * grace, 'no redelivery');
    ac.abort();
    await run;
    expect(calls.flat().map((e) => e.id)).toEqual(ids);
    expect(calls.flat().every((e) => e.count === 1)).toBe(true);
    expect(sink.counters.redelivered).toBe(0);
  });

  it('runs at most `concurrency` batches at once', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    let active = 0;
    let maxActive = 0;
    const gates: Array<() => void> = [];
    const handled: SinkEvent[] = [];
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => gates.push(r));
        handled.push(...events);
        active--;
      },
      { maxBatch: 2, maxWaitMs: 0, concurrency: 2, signal: ac.signal },
    );
    for (let i = 0; i < 10; i++) await s.add('e', `p${i}`);
    await waitFor(() => active === 2, WAIT);
    await stays(() => active === 2, 200, 'no third batch while two run');
    while (handled.length < 10) {
      await waitFor(() => gates.length > 0, WAIT);
      for (const g of gates.splice(0)) g();
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(async () => (await pending(s.key)) === 0, WAIT);
    ac.abort();
    await run;
    expect(maxActive).toBe(2);
  });

  it('an abort resolves only after the batch in flight finished, and its events are acked; close() resolves it too', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: 5000 });
    let release: () => void = () => {};
    let started = false;
    let resolved = false;
    const ac = new AbortController();
    const run = sink
      .processBatch(
        async () => {
          started = true;
          await new Promise<void>((r) => (release = r));
        },
        { signal: ac.signal },
      )
      .then(() => {
        resolved = true;
      });
    await s.add('e', 'x');
    await waitFor(() => started, WAIT);
    ac.abort();
    await stays(() => !resolved, 200, 'processBatch waits for the batch in flight');
    release();
    await within(run, 5000, 'processBatch after the batch finished');
    expect(await pending(s.key)).toBe(0);
    const closing = sink.processBatch(() => {});
    await sink.close();
    await within(closing, 5000, 'processBatch after close');
  });

  it('bad options and handlers are refused with InvalidArgumentError', async (ctx) => {
    const f = fixture(ctx);
    const sink = await f.sink(f.stream());
    const bad = [{ maxBatch: 0 }, { maxBatch: 1.5 }, { maxWaitMs: -1 }, { concurrency: 0 }, { retry: 'fast' }];
    for (const options of bad) {
      await expect(sink.processBatch(() => {}, options as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(sink.processBatch('handler' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
