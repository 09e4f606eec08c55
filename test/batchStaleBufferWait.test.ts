/**
 * processBatch() hands a batch to the handler once it is full or `maxWaitMs`
 * after its first event, even when the events buffered behind that first
 * one are no longer the sink's (review D). A synchronous handler stretch
 * longer than half the grace period makes the buffer stale; the batch
 * source then takes through the subscription's ownership check, which drops
 * the events another consumer took (or `stream.remove` deleted) and, with
 * nothing left, waits for a new event. That take was unbounded: the batch's
 * first event, already taken and kept in progress, reached no handler and
 * was never redelivered until something new was added.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

// Sequential: each test blocks the event loop on purpose, which would skew a concurrent neighbour's timing.
describe.each(CLIENT_KINDS)('processBatch with a stale buffer (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const how of ['taken and acked by another consumer', 'deleted with stream.remove'] as const)
    it(`a batch whose buffered followers were ${how} reaches the handler within maxWaitMs`, async ({ onTestFinished }) => {
      const name = uniqueName('batchStale');
      const key = `pulse:stream:${name}`;
      const s = new Stream(name, c.redis, { maxLen: 0 });
      onTestFinished(() => s.destroy());
      // Grace 400 ms: the buffer is stale once its hold is older than 200 ms.
      const sink = await s.newSink('sink', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 400 });
      onTestFinished(() => sink.close());
      const batches: string[][] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let followers: string[] = [];
      const ac = new AbortController();
      onTestFinished(() => ac.abort());
      const run = sink.processBatch(
        async (evs) => {
          batches.push(evs.map((e) => e.id));
          if (batches.length !== 1) return;
          await gate;
          // Done before the stretch, so that the ownership check after it finds them gone.
          if (how === 'deleted with stream.remove') await s.remove(...followers);
          else {
            await c.cmd('XCLAIM', key, 'sink', 'other', 0, ...followers, 'JUSTID');
            await c.cmd('XACK', key, 'sink', ...followers);
          }
          // A synchronous stretch longer than half the grace period: the buffer's hold goes stale.
          const until = performance.now() + 300;
          while (performance.now() < until) {
            /* CPU-bound work */
          }
        },
        { maxBatch: 10, maxWaitMs: 30, signal: ac.signal },
      );
      await s.add('e', '0');
      await waitFor(() => batches.length === 1, { timeout: 5000 });
      // Behind the running batch: e1 opens the next batch (taken by the batch source), the rest are buffered.
      const e1 = await s.add('e', '1');
      const rest: string[] = [];
      for (let i = 2; i < 6; i++) rest.push(await s.add('e', String(i)));
      await waitFor(() => sink.counters.delivered === 6, { timeout: 5000 });
      followers = rest;
      release();
      // Several grace periods, nothing added meanwhile: only a bounded wait hands e1 over.
      await waitFor(() => batches.length >= 2, { timeout: 2000 });
      expect(batches[1]).toEqual([e1]);
      await waitFor(() => sink.counters.acked === 2, { timeout: 2000 });
      ac.abort();
      await run;
      expect(await c.cmd('XPENDING', key, 'sink')).toEqual([0, null, null, null]);
    });
});
