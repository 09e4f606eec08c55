/**
 * Outside review AB (line numbers of its report as of commit d7e4151). A sink over 100 streams whose last read found ONE busy stream
 * (busy = 1) asks every stream for maxPolled on its next read. If the other
 * streams got a backlog meanwhile, that read brings up to 100 x maxPolled
 * against a bound of bufferSize + maxPolled: most is given back, past what is
 * remembered for taking back, and waits a grace period for a claim.
 *
 * Failed before the fix: 3 of 3 for the reviewer (11,802 of 21,500 events within 25 s), 1 of 1 here.
 * Fixed: a read asks each stream for no more than the subscribers' room divided among the streams
 * (sinkRead.ts `nextRead`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, take, waitFor } from './support/clients.js';
import { sinkFixture } from './support/sinkFixture.js';

async function addMany(s: Stream, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => s.add('e', `${s.name}:${i}`)));
}

describe('sink over 100 streams, one busy then all', () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c.close());

  it('events of the other streams arrive first-hand, not after a grace period', async (ctx) => {
    const f = sinkFixture(ctx, c, 'revab-busy');
    const streams = Array.from({ length: 100 }, () => f.stream());
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    await addMany(first, 2000);
    const sink = await f.sink(first, { maxPolled: 200, bufferSize: 100, ackGracePeriodMs: 60_000 });
    for (const s of rest) await sink.addStream(s);
    const sub = sink.subscribe();
    const counts = new Set<number>();
    // Reads of the busy stream only: the sink learns busy = 1.
    for (const ev of await take(sub, 300, 20_000)) {
      counts.add(ev.deliveryCount);
      void ev.ack();
    }
    await waitFor(() => sub.size >= 100, { timeout: 10_000, what: 'the buffer full again' });
    // Meanwhile every other stream gets a backlog of 200.
    for (const s of rest) await addMany(s, 200);
    const total = 1700 + 99 * 200;
    for (const ev of await take(sub, total, 25_000)) {
      counts.add(ev.deliveryCount);
      void ev.ack();
    }
    expect([...counts]).toEqual([1]);
    expect(sink.counters.redelivered).toBe(0);
  }, 60_000);
});
