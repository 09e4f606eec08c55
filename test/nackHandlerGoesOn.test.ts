/**
 * A handler of process() or processBatch() that nacks its event (or some of
 * its batch) and goes on working: the nacked event must come back after its
 * delay, not a grace period later (TSDoc of nack: the instance that nacked
 * redelivers on time). Before, the run held its events until they left its
 * set at the next keep-alive round or the handler's end, settled or not: the
 * claim that came when the nack was due kept the event here, and reset its
 * idle time, so nothing took it for another grace period (about 4.1 s of a
 * 4 s grace here, both clients; a review of retries and nacks). Server-side
 * times (TIME), generous bounds.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, waitFor, within } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

const GRACE = 4000;
const WAIT = { timeout: 15_000 };

describe.concurrent.each(CLIENT_KINDS)('a nacked event whose handler goes on (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());
  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'nack-goes-on');
  async function serverMs(): Promise<number> {
    const [s, us] = (await c.cmd('TIME')) as [string, string];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  it('process(): nack({ delayMs: 100 }) then 1.5 s more work: back within about a second, not after the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: GRACE });
    let nackedAt = 0;
    let againAt = 0;
    const ac = new AbortController();
    const done = sink.process(
      async (ev: SinkEvent) => {
        if (ev.deliveryCount > 1) {
          againAt = await serverMs();
          return;
        }
        await ev.nack({ delayMs: 100 });
        nackedAt = await serverMs();
        await new Promise((r) => setTimeout(r, 1500)); // e.g. cleanup, logging, the rest of the work
      },
      { signal: ac.signal, concurrency: 2 },
    );
    await s.add('e', 'x');
    await waitFor(() => againAt > 0, WAIT);
    ac.abort();
    await within(done, 5000, 'process after abort');
    // Redelivered after its delay, while the first handler still ran: well under the 4 s grace period.
    expect(againAt - nackedAt).toBeLessThan(1000);
  });

  it('processBatch(): events nacked at the start of a long batch come back after their delay, not after the grace period', async (ctx) => {
    const f = fixture(ctx);
    const s = f.stream();
    const sink = await f.sink(s, { ackGracePeriodMs: GRACE });
    let nackedAt = 0;
    let againAt = 0;
    const ac = new AbortController();
    const done = sink.processBatch(
      async (evs: SinkEvent[]) => {
        if (evs.some((ev) => ev.deliveryCount > 1)) {
          againAt = await serverMs();
          return;
        }
        // As the README's example: the invalid ones nacked first, then the batch's work.
        await evs[0]?.nack({ delayMs: 100 });
        nackedAt = await serverMs();
        await new Promise((r) => setTimeout(r, 1500));
      },
      { signal: ac.signal, concurrency: 2, maxWaitMs: 50 },
    );
    await s.add('e', 'bad');
    await s.add('e', 'good');
    await waitFor(() => againAt > 0, WAIT);
    ac.abort();
    await within(done, 5000, 'processBatch after abort');
    expect(againAt - nackedAt).toBeLessThan(1000);
  });
});
