/**
 * Audit: README "Slow for await loops. Buffered events are kept from redelivery while the loop keeps
 * taking events." A loop that takes one event every third of a grace period, with a backlog that takes
 * many grace periods to drain, while another instance of the sink is reading.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, collect, connect, type TestClient, uniqueName } from './support/clients.js';

const GRACE = 400;

describe.concurrent.each(CLIENT_KINDS)('audit: a slow for await loop keeps its buffer (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('none of its buffered events goes to the other instance, none is handled twice', async () => {
    const s = new Stream(uniqueName('slow'), c.redis, { maxLen: 0 });
    const opts = { blockMs: 100, ackGracePeriodMs: GRACE, startAt: 'oldest' as const };
    const slow = await s.newSink('g', opts);
    const slowSub = slow.subscribe();
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push(await s.add('e', `${i}`));
    // The slow instance reads them all first (one read of up to maxPolled), then the other starts.
    const first = await slowSub.next();
    const other = await s.newSink('g', opts);
    const stolen: SinkEvent[] = [];
    const otherRun = collect(other.subscribe(), stolen, true);
    try {
      const handled: string[] = [(first.value as SinkEvent).id];
      await (first.value as SinkEvent).ack();
      while (handled.length < 15) {
        await new Promise((r) => setTimeout(r, GRACE / 3)); // work on the previous one, then take the next
        const r = await slowSub.next();
        if (r.done) break;
        handled.push(r.value.id);
        await r.value.ack();
      }
      // 15 events x GRACE/3 = 5 grace periods.
      expect(stolen.map((e) => e.id)).toEqual([]);
      expect(handled).toEqual(ids);
      expect(slow.counters.staleAcks).toBe(0);
      expect(slow.counters.redelivered + other.counters.redelivered).toBe(0);
    } finally {
      await other.close();
      await otherRun;
      await slow.close();
      await s.destroy();
    }
  });
});
