/**
 * Audit: README "With maxDeliveries, an event that keeps failing still ends in the dead-letter stream after
 * that many deliveries" (process() and processBatch() with retry delays, shorter and longer than the grace period).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, stays, type TestClient, uniqueName, waitFor } from './support/clients.js';

const GRACE = 300;

describe.concurrent.each(CLIENT_KINDS)('audit: failing handlers end in the dead-letter stream (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  for (const mode of ['process', 'processBatch'] as const) {
    for (const delayMs of [50, 2 * GRACE]) {
      it(`${mode}(), retry delay ${delayMs} ms, maxDeliveries 3: handled 3 times, then dead-lettered once`, async () => {
        const s = new Stream(uniqueName('rd'), c.redis, { maxLen: 0 });
        const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE, maxDeliveries: 3, startAt: 'oldest' });
        const id = await s.add('e', 'poison');
        const good = await s.add('e', 'fine');
        const counts: number[] = [];
        const ac = new AbortController();
        const retry = { delayMs, factor: 1, jitter: 0 };
        const fail = (ev: { id: string; deliveryCount: number }) => {
          if (ev.id === id) {
            counts.push(ev.deliveryCount);
            throw new Error('boom');
          }
        };
        const run =
          mode === 'process'
            ? sink.process((ev) => fail(ev), { signal: ac.signal, retry })
            : sink.processBatch(
                (evs) => {
                  for (const ev of evs) if (ev.id === good) void ev.ack();
                  for (const ev of evs) fail(ev);
                },
                { signal: ac.signal, retry, maxWaitMs: 0 },
              );
        try {
          await waitFor(async () => (await readDeadLetters(s)).length === 1, { timeout: 15_000, what: 'a dead letter' });
          const [dead] = await readDeadLetters(s);
          expect(dead?.sourceId).toBe(id);
          expect(dead?.deliveries).toBe(3);
          expect(counts).toEqual([1, 2, 3]);
          await stays(async () => counts.length === 3 && (await readDeadLetters(s)).length === 1, 3 * GRACE, 'no 4th delivery');
          expect(Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0])).toBe(0);
          expect(sink.counters.deadLettered).toBe(1);
        } finally {
          ac.abort();
          await run;
          await sink.close();
          await s.destroy();
          await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
        }
      });
    }
  }
});
