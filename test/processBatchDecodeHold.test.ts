/**
 * README "Batches and retries": "Events are kept in progress from the moment the batch
 * source takes them (while the batch fills, decodes or waits for a slot) until their batch
 * settles": an asynchronous codec whose decode outlasts the grace period keeps its event, and
 * the event waiting behind it, with this consumer; another live instance gets neither.
 * (processDecodeHang.test.ts covers process(); this covers processBatch().) Outside review O.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Codec, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)('processBatch async decode hold (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it(`processBatch: an async decode longer than the grace period keeps its event (and those behind) with this consumer`, async () => {
    const grace = 300;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let decoding = 0;
    const codec: Codec = {
      encode: (v) => JSON.stringify(v),
      decode: async (b) => {
        decoding++;
        if (decoding === 1) await gate;
        return JSON.parse(b.toString());
      },
    };
    const name = uniqueName();
    const { logger } = recordingLogger();
    const s = new Stream<{ e: { n: number } }>(name, c.redis, { codec, maxLen: 0, logger });
    const a = await s.newSink('s', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: grace });
    const aGot: Array<[number, number]> = [];
    const acA = new AbortController();
    const runA = a.processBatch(
      async (evs) => {
        for (const ev of evs) aGot.push([ev.data.n, ev.deliveryCount]);
      },
      { signal: acA.signal, maxBatch: 1, maxWaitMs: 0 },
    );
    await s.add('e', { n: 1 });
    await s.add('e', { n: 2 });
    await waitFor(() => decoding >= 1);
    const b = await s.newSink('s', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: grace });
    const bGot: Array<[number, number]> = [];
    const acB = new AbortController();
    const runB = b.process(
      async (ev) => {
        bGot.push([ev.data.n, ev.deliveryCount]);
      },
      { signal: acB.signal },
    );
    const t0 = Date.now();
    // Not a sleep for a result: the hold must last while decode runs 3 grace periods past B's start.
    await waitFor(() => Date.now() - t0 > 3 * grace, { timeout: 10000 });
    release();
    await waitFor(() => aGot.length + bGot.length >= 2, { timeout: 5000 });
    acA.abort();
    acB.abort();
    await runA;
    await runB;
    expect(bGot).toEqual([]);
    expect(aGot).toEqual([
      [1, 1],
      [2, 1],
    ]);
    await a.close();
    await b.close();
    await s.destroy();
  });
});
