/**
 * Outside review AD (defect 2; line numbers as of commit 4b06d2a).
 * processBatch() on a sink over two streams (addStream), whose batch holds
 * events of both, fails after one of the streams was destroyed.
 *
 * API.md "Batches and retries": on a throw the unsettled events of the batch "are
 * nacked (with the retry delay)". The events of the stream that still exists are
 * still this consumer's and must be nacked with their delay. settle.ts
 * `nackEvents` nacked stream by stream and threw at the first stream that
 * answered NOGROUP; `untilAnswered` stopped there (why 'nogroup') and the events
 * of the other stream, already marked settled, were never nacked: they lost
 * their retry delay and came back only after the grace period (and the warning
 * said their group was gone).
 *
 * Failed before the fix: 5 of 5 runs for the reviewer, both clients; 2 of 2 here.
 * Fixed: `HandlerRun.#nack` nacks each stream's events on their own (process.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys } from '../packages/pulse-streaming/src/keys.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

describe.each(CLIENT_KINDS)('processBatch over two streams, one destroyed under the batch (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('the events of the stream still there are nacked with the retry delay', async (ctx) => {
    const f = sinkFixture(ctx, c, 'batchNackGone');
    const a = f.stream();
    const b = f.stream();
    const sink = await f.sink(a, { ackGracePeriodMs: 20_000 });
    await sink.addStream(b);
    await a.add('e', 'a1');
    const bId = (await b.add('e', 'b1')) as string;
    const ac = new AbortController();
    let order: string[] = [];
    const done = sink.processBatch(
      async (evs: SinkEvent[]) => {
        order = evs.map((e) => e.streamName);
        ac.abort();
        await a.destroy();
        throw new Error('boom');
      },
      { signal: ac.signal, maxWaitMs: 1000, maxBatch: 2, retry: { delayMs: 3000, jitter: 0 } },
    );
    await done;
    // One batch with the destroyed stream's event first (with b's first, its nack landed before).
    expect(order).toEqual([a.name, b.name]);
    const delays = sinkKeys(b.name, 'sink').delays;
    let nacked = false;
    try {
      await waitFor(async () => (await c.cmd('ZSCORE', delays, bId)) !== null, { timeout: 3000, what: "b's nack" });
      nacked = true;
    } catch {}
    const p = (await c.cmd('XPENDING', b.key, 'sink', bId, bId, 1)) as unknown[];
    // Expected: b's event has its retry due time in the delays set. Observed: it is pending,
    // never nacked (idle since its last in-progress touch): redelivered after the grace period.
    expect(nacked, `b's event not nacked; its pending entry: ${JSON.stringify(p)}`).toBe(true);
  });
});
