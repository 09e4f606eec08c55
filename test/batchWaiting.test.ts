/**
 * SEMANTICS.md section 9 / README "Batches and retries": "a batch longer than the grace
 * period is not redelivered elsewhere, and neither are the events waiting behind it". That
 * includes events processBatch() took off the subscription but has not handed to a handler yet:
 * the one a timed-out wait (maxWaitMs) took later, those of a batch still being gathered, and
 * those waiting for an asynchronous schema. Each is kept in progress from the moment it is
 * taken, so it is never claimed again (deliveryCount 2) nor dead-lettered while also handed
 * to the handler.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { readDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor, within } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const GRACE = 1000;

describe.concurrent.each(CLIENT_KINDS)('processBatch waiting events (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  // The two 4-second tests first: the file's eight tests run five at a time (vitest's maxConcurrency).
  it('an event read while a batch longer than the grace period runs is handled once, never redelivered', async (ctx: TestContext) => {
    const f = sinkFixture(ctx, c, 'batch-wait', { ackGracePeriodMs: GRACE });
    const s = f.stream();
    const a = await f.sink(s);
    const handled: Array<[string, number]> = [];
    let slowDone = false;
    const ac = new AbortController();
    const run = a.processBatch(
      async (evs) => {
        for (const ev of evs) handled.push([ev.text(), ev.deliveryCount]);
        if (evs.some((ev) => ev.text() === 'slow')) {
          await new Promise((r) => setTimeout(r, 4 * GRACE));
          slowDone = true;
        }
      },
      { maxBatch: 10, maxWaitMs: 30, signal: ac.signal },
    );
    await s.add('e', 'slow');
    await waitFor(() => handled.length === 1, { timeout: 5000, what: 'the slow batch started' });
    await s.add('e', 'behind');
    await waitFor(() => slowDone && handled.some(([p]) => p === 'behind'), { timeout: 10_000, what: 'both handled' });
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) === 0, {
      timeout: 8000,
      what: 'all acked',
    });
    ac.abort();
    await within(run, 8000, 'processBatch');
    expect({ handled, redelivered: a.counters.redelivered, staleAcks: a.counters.staleAcks }).toEqual({
      handled: [
        ['slow', 1],
        ['behind', 1],
      ],
      redelivered: 0,
      staleAcks: 0,
    });
  });

  it('with maxDeliveries 1, the event waiting behind a slow batch is not both dead-lettered and handed to the handler', async (ctx: TestContext) => {
    const f = sinkFixture(ctx, c, 'batch-wait', { ackGracePeriodMs: GRACE, maxDeliveries: 1 });
    const s = f.stream();
    const a = await f.sink(s);
    const handled: string[] = [];
    let slowDone = false;
    const ac = new AbortController();
    const run = a.processBatch(
      async (evs) => {
        for (const ev of evs) handled.push(ev.text());
        if (evs.some((ev) => ev.text() === 'slow')) {
          await new Promise((r) => setTimeout(r, 4 * GRACE));
          slowDone = true;
        }
      },
      { maxBatch: 10, maxWaitMs: 30, signal: ac.signal },
    );
    await s.add('e', 'slow');
    await waitFor(() => handled.length === 1, { timeout: 5000, what: 'the slow batch started' });
    await s.add('e', 'behind');
    await waitFor(() => slowDone, { timeout: 10_000, what: 'slow batch done' });
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) === 0, {
      timeout: 8000,
      what: 'nothing pending',
    });
    ac.abort();
    await within(run, 8000, 'processBatch');
    const dead = (await readDeadLetters(s)).map((d) => Buffer.from(d.payload).toString());
    expect({ handled, dead }).toEqual({ handled: ['slow', 'behind'], dead: [] });
  });

  it('maxWaitMs longer than the grace period: the events of the batch being gathered are handled once, never redelivered', async (ctx: TestContext) => {
    const f = sinkFixture(ctx, c, 'batch-wait', { ackGracePeriodMs: GRACE });
    const s = f.stream();
    const a = await f.sink(s);
    const handled: Array<[string, number]> = [];
    const ac = new AbortController();
    const run = a.processBatch(
      async (evs) => {
        for (const ev of evs) handled.push([ev.text(), ev.deliveryCount]);
      },
      { maxBatch: 10, maxWaitMs: 3 * GRACE, signal: ac.signal },
    );
    await s.add('e', 'first');
    await waitFor(() => handled.length >= 1, { timeout: 10_000, what: 'the batch handled' });
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) === 0, {
      timeout: 8000,
      what: 'all acked',
    });
    ac.abort();
    await within(run, 8000, 'processBatch');
    expect({ handled, redelivered: a.counters.redelivered, staleAcks: a.counters.staleAcks }).toEqual({
      handled: [['first', 1]],
      redelivered: 0,
      staleAcks: 0,
    });
  });

  it('an asynchronous schema (30 ms per event) over a batch of 60: no event of the batch is redelivered while the batch is decoded', async (ctx: TestContext) => {
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) => {
          await new Promise((r) => setTimeout(r, 30));
          return { value };
        },
      },
    };
    const s = new Stream(uniqueName('batch-wait'), c.redis as never, { maxLen: 0, schemas: { e: schema } });
    ctx.onTestFinished(() => s.destroy().catch(() => {}));
    for (let i = 0; i < 60; i++) await s.add('e', { i });
    const a = await s.newSink('sink', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
    ctx.onTestFinished(() => a.close());
    const handled: Array<[number, number]> = [];
    const ac = new AbortController();
    const run = a.processBatch(
      async (evs) => {
        for (const ev of evs) handled.push([(ev.data as { i: number }).i, ev.deliveryCount]);
      },
      { maxBatch: 100, maxWaitMs: 50, signal: ac.signal },
    );
    await waitFor(() => handled.length >= 60, { timeout: 15_000, what: 'all handled' });
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) === 0, {
      timeout: 10_000,
      what: 'all acked',
    });
    ac.abort();
    await within(run, 8000, 'processBatch');
    expect({
      again: handled.filter(([, n]) => n > 1).length,
      total: handled.length,
      redelivered: a.counters.redelivered,
    }).toEqual({
      again: 0,
      total: 60,
      redelivered: 0,
    });
  });
});
