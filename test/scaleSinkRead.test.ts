/**
 * A sink over several streams (issue 19): one read splits `maxPolled` among
 * the streams instead of asking each for `maxPolled` (XREADGROUP's COUNT is
 * per stream), so the buffer keeps its hard bound `bufferSize + maxPolled`
 * and reading overlaps handling; with a backlog the next read goes out
 * before the last one's reply (read-ahead, see readAhead.test.ts) within
 * that bound; and every event of every stream is still delivered once,
 * whatever mix of busy and quiet streams.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { SinkOptions, Stream } from '../packages/pulse-streaming/src/index.js';
import { countPerStream, MIN_COUNT_PER_STREAM } from '../packages/pulse-streaming/src/internal/loops.js';
import { CLIENT_KINDS, connect, stays, type TestClient, take, waitFor } from './support/clients.js';
import { type SinkFixture, sinkFixture } from './support/sinkFixture.js';

const WAIT = { timeout: 10_000 };

async function addMany(s: Stream, n: number): Promise<string[]> {
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => s.add('e', `${s.name}:${i}`)));
  return ids as string[];
}

/** Streams of `f` with `counts[i]` events each, and one sink reading them all (created on the first). */
async function sinkOverBacklogs(f: SinkFixture, counts: readonly number[], options: SinkOptions) {
  const streams = counts.map(() => f.stream());
  const added = new Map<string, string[]>();
  for (const [i, n] of counts.entries()) {
    const s = streams[i] as Stream;
    added.set(s.name, await addMany(s, n));
  }
  const [first, ...rest] = streams as [Stream, ...Stream[]];
  const sink = await f.sink(first, options);
  for (const s of rest) await sink.addStream(s);
  return { streams, added, sink };
}

describe('countPerStream', () => {
  it('splits maxPolled among the busy streams, within [MIN_COUNT_PER_STREAM, maxPolled]', () => {
    expect(countPerStream(1000, 1, undefined)).toBe(1000);
    expect(countPerStream(1000, 6, undefined)).toBe(166);
    expect(countPerStream(1000, 6, 2)).toBe(500);
    expect(countPerStream(1000, 1000, undefined)).toBe(MIN_COUNT_PER_STREAM);
    expect(countPerStream(1000, 1000, 1)).toBe(1000);
    expect(countPerStream(10, 3, undefined)).toBe(10);
    // A sink's least is 1: a read of 100 streams stays within maxPolled.
    expect(countPerStream(1000, 100, undefined, 1)).toBe(10);
    expect(countPerStream(1000, 1000, undefined, 1)).toBe(1);
    expect(countPerStream(1000, 5000, undefined, 1)).toBe(1);
  });
});

describe.concurrent.each(CLIENT_KINDS)('sink over several streams (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const fixture = (ctx: TestContext) => sinkFixture(ctx, c, 'scale-read');

  it('one read of several backlogged streams stays within bufferSize + maxPolled', async (ctx) => {
    const f = fixture(ctx);
    const streams = [f.stream(), f.stream(), f.stream()];
    for (const s of streams) await addMany(s, 400);
    const [first, ...rest] = streams as [Stream, ...Stream[]];
    const maxPolled = 300;
    const bufferSize = 50;
    const sink = await f.sink(first, { maxPolled, bufferSize });
    for (const s of rest) await sink.addStream(s);
    // Not consumed: what the first read brings stays in the buffer, and the loop then waits for room.
    const sub = sink.subscribe();
    await waitFor(() => sub.size > 0, { ...WAIT, what: 'a first read' });
    // Each read's entries are buffered at once: asking each stream for maxPolled brought 900.
    expect(sub.size).toBeLessThanOrEqual(bufferSize + maxPolled);
    await stays(() => sub.size <= bufferSize + maxPolled, 300, 'the buffer within its hard bound');
    sink.unsubscribe(sub);
  });

  it('a backlog read ahead: every event once, in order per stream, the buffer within its bound, a small stream not kept waiting', async (ctx) => {
    const f = fixture(ctx);
    const maxPolled = 300;
    const bufferSize = 600;
    const { streams, added, sink } = await sinkOverBacklogs(f, [1500, 1500, 150], { maxPolled, bufferSize });
    const sub = sink.subscribe();
    const got = new Map<string, string[]>(streams.map((s) => [s.name, []]));
    const small = (streams[2] as Stream).name;
    let fullest = 0;
    let n = 0;
    let smallDoneAt = 0;
    for await (const ev of sub) {
      // What the buffer still holds once this event was taken, plus it: what was in hand.
      fullest = Math.max(fullest, sub.size + 1);
      got.get(ev.streamName)?.push(ev.id);
      void ev.ack();
      n++;
      if (ev.streamName === small && got.get(small)?.length === 150) smallDoneAt = n;
      // Mostly faster than the reads (the buffer empties: the next read goes
      // out ahead), now and then letting the loop run while events wait.
      if (n % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (n === 3150) break;
    }
    for (const s of streams) expect(got.get(s.name)).toEqual(added.get(s.name));
    expect(fullest).toBeLessThanOrEqual(bufferSize + maxPolled);
    // Each read asks each stream for a third of maxPolled: the small one is
    // done within its first two reads, not after the others' backlogs.
    expect(smallDoneAt).toBeLessThanOrEqual(2 * maxPolled);
    expect(sink.counters.lost).toBe(0);
    await waitFor(async () => {
      for (const s of streams) if (Number(((await c.cmd('XPENDING', s.key, 'sink')) as unknown[])[0]) !== 0) return false;
      return true;
    }, WAIT);
  });

  it('a backlog over 100 streams: read within the bound, every event once and first-hand, none waiting for a claim', async (ctx) => {
    const f = fixture(ctx);
    // 100 per stream used to be the least COUNT: one read brought 10,000 events against a bound of
    // 200, gave them back, took back what it remembered, and the rest waited a grace period (here a
    // minute) for a claim.
    const { streams, added, sink } = await sinkOverBacklogs(f, Array<number>(100).fill(120), {
      maxPolled: 100,
      bufferSize: 100,
      ackGracePeriodMs: 60_000,
    });
    const sub = sink.subscribe();
    const got = new Map<string, string[]>(streams.map((s) => [s.name, []]));
    const counts = new Set<number>();
    for (const ev of await take(sub, 12_000, 20_000)) {
      got.get(ev.streamName)?.push(ev.id);
      counts.add(ev.deliveryCount);
      void ev.ack();
    }
    for (const s of streams) expect(got.get(s.name)).toEqual(added.get(s.name));
    expect([...counts]).toEqual([1]);
    expect(sink.counters.redelivered).toBe(0);
  }, 40_000);

  it('busy and quiet streams: every event is delivered once', async (ctx) => {
    const f = fixture(ctx);
    const { streams, added, sink } = await sinkOverBacklogs(f, [700, 5, 250], { maxPolled: 200, bufferSize: 100 });
    // One subscription throughout: events read while a sink has none wait a grace period for redelivery.
    const sub = sink.subscribe();
    const got = new Map<string, string[]>(streams.map((s) => [s.name, []]));
    for (const ev of await take(sub, 955, 10_000)) {
      got.get(ev.streamName)?.push(ev.id);
      void ev.ack();
    }
    for (const s of streams) expect(got.get(s.name)).toEqual(added.get(s.name));
    // Events added after the backlog drained still arrive (the blocking read takes over).
    const late = await addMany(streams[1] as Stream, 3);
    const more = await take(sub, 3, 10_000);
    for (const ev of more) void ev.ack();
    expect(more.map((ev) => ev.id)).toEqual(late);
    await waitFor(
      async () => Number(((await c.cmd('XPENDING', (streams[0] as Stream).key, 'sink')) as unknown[])[0]) === 0,
      WAIT,
    );
  });
});
